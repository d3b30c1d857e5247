// The files every container of a pod shares: /etc/hostname, /etc/hosts and /etc/resolv.conf,
// written once per pod under its state dir and bind-mounted into each container (containerd's
// sandbox files). Content builders are pure; writeSandboxFiles does the I/O.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { writeFileAtomic } from '../common/atomic.js';
import { SkiffError } from '../common/errors.js';

export const DEFAULT_HOSTS = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
`;

/** resolv.conf(5) from the pod's DNSConfig; undefined means "use the node's". */
export function resolvConf(dns: v1.DNSConfig__Output | null | undefined): string | undefined {
  if (!dns || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0)) return undefined;
  for (const s of dns.servers) {
    if (!/^[0-9a-fA-F:.]+(%\w+)?$/.test(s)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `dns_config.servers: "${s}" is not an IP address`);
  }
  const lines: string[] = [];
  if (dns.searches.length) lines.push(`search ${dns.searches.join(' ')}`);
  for (const s of dns.servers) lines.push(`nameserver ${s}`);
  if (dns.options.length) lines.push(`options ${dns.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** RFC 1123 hostname, as kubelet sends it (lowercase labels, at most 63 each, 253 in all). */
export function validHostname(h: string): boolean {
  // sethostname(2) takes at most 64 bytes (HOST_NAME_MAX), far below DNS's 253.
  return h.length > 0 && h.length <= 64 && h.split('.').every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(l));
}

export interface SandboxFiles {
  hostname: string;
  hosts: string;
  resolvConf: string;
}

/** Writes the pod's files into `dir`; `nodeFiles` are the node's own (for host networking / no DNSConfig). */
export async function writeSandboxFiles(
  dir: string,
  opts: { hostname: string; hostNetwork: boolean; dns: v1.DNSConfig__Output | null | undefined },
  nodeFiles = { hosts: '/etc/hosts', resolvConf: '/etc/resolv.conf' },
): Promise<SandboxFiles> {
  const files: SandboxFiles = { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
  const resolv = resolvConf(opts.dns) ?? (await readFile(nodeFiles.resolvConf, 'utf8').catch(() => ''));
  const hosts = opts.hostNetwork ? await readFile(nodeFiles.hosts, 'utf8').catch(() => DEFAULT_HOSTS) : DEFAULT_HOSTS;
  await writeFileAtomic(files.hostname, opts.hostname + '\n');
  await writeFileAtomic(files.hosts, hosts);
  await writeFileAtomic(files.resolvConf, resolv);
  return files;
}
