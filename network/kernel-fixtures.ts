// What the kernel tests of network/ share: temp dirs, pinned test namespaces (skiff-ns netns-pin),
// commands run to their end, names and subnets of their own. Test support only: the daemon never
// imports it. Every helper that makes something has its undo, for the tests' finally blocks.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBinary } from '../native/native.js';

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, collecting its output (no shell). */
export function run(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs and insists on exit 0. */
export async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-net-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A new network namespace (lo up) pinned at `path`. */
export async function pinNetns(path: string): Promise<void> {
  await ok(nativeBinary('skiff-ns'), ['netns-pin', path]);
}

export async function unpinNetns(path: string): Promise<void> {
  await run(nativeBinary('skiff-ns'), ['netns-unpin', path]);
}

/** Namespaces pinned under `dir` for the length of `fn`, unpinned whatever happens. */
export async function withNetns<T>(dir: string, names: string[], fn: (paths: string[]) => Promise<T>): Promise<T> {
  const paths = names.map((n) => join(dir, n));
  try {
    for (const p of paths) await pinNetns(p);
    return await fn(paths);
  } finally {
    for (const p of paths) await unpinNetns(p);
  }
}

/** `prefix` + 6 random hex digits: a link name no one else uses (prefix ≤ 9 characters). */
export function uniqueName(prefix: string): string {
  return prefix + randomBytes(3).toString('hex');
}

interface IpLink {
  ifname: string;
  ifindex: number;
  master?: string;
  mtu?: number;
  address?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_slave_kind?: string; info_slave_data?: { hairpin?: boolean } };
  addr_info?: { local: string; prefixlen: number; family: string }[];
}

/** `ip -d -j addr` (optionally inside a namespace): every link with its details and addresses. */
export async function ipLinks(netns?: string): Promise<IpLink[]> {
  const args = ['-d', '-j', 'addr'];
  const out = netns ? await ok('nsenter', [`--net=${netns}`, 'ip', ...args]) : await ok('ip', args);
  return JSON.parse(out) as IpLink[];
}

export async function ipRoutes(netns: string, family: 4 | 6): Promise<{ dst: string; gateway?: string; dev?: string }[]> {
  return JSON.parse(await ok('nsenter', [`--net=${netns}`, 'ip', '-j', `-${family}`, 'route'])) as { dst: string; gateway?: string; dev?: string }[];
}

/** Deletes a host link if it exists (a test's finally). */
export async function deleteHostLink(name: string): Promise<void> {
  await run('ip', ['link', 'del', name]);
}

export interface TestSubnet {
  /** 10.233.N.host */
  v4(host: number): string;
  /** fd33:0:0:N::host */
  v6(host: number): string;
}

/**
 * A /24 in 10.233.0.0/16 and a /64 in fd33::/48 that nothing on the host uses (each test file
 * picks its own, at random, so that files running in parallel do not meet).
 */
export async function freeTestSubnet(): Promise<TestSubnet> {
  const used = JSON.stringify(await ipLinks());
  for (;;) {
    const n = 1 + (randomBytes(1)[0] % 254);
    const hex = n.toString(16);
    if (used.includes(`"10.233.${n}.`) || used.includes(`"fd33:0:0:${hex}:`) || used.includes(`"fd33::${hex}:`)) continue;
    return { v4: (h) => `10.233.${n}.${h}`, v6: (h) => `fd33:0:0:${hex}::${h.toString(16)}` };
  }
}

/** One ping from inside `netns` (busybox: no ping binary on the test machines). */
export async function ping(netns: string, address: string): Promise<Result> {
  return run('nsenter', [`--net=${netns}`, 'busybox', 'ping', '-c1', '-W1', address]);
}

/**
 * ping, tried a few times: a bridge's first port brings its carrier up through the kernel's
 * linkwatch, which may take up to a second after the port is attached.
 */
export async function pingSoon(netns: string, address: string, tries = 4): Promise<Result> {
  let r = await ping(netns, address);
  for (let i = 1; i < tries && r.code !== 0; i++) r = await ping(netns, address);
  return r;
}
