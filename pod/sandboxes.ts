// Pod sandboxes: the pause process holding a pod's ipc/uts/pid namespaces, its pinned network
// namespace, its shared files and /dev/shm. Every step of RunPodSandbox registers its undo, the
// record is written first (phase "creating") so a crash mid-way is rolled back at the next start.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { SkiffError } from '../common/errors.js';
import { failpoint } from '../common/failpoint.js';
import { logger } from '../common/log.js';
import { MS_NODEV, MS_NOEXEC, MS_NOSUID, mount, unmount } from '../native/sys.js';
import { Cleanup } from './cleanup.js';
import { cgroupPathIn, podParentPath, type CgroupDriver } from './cgroups/naming.js';
import type { PodContext } from './context.js';
import { createCgroup, isSameProcess, processStartTime, removeCgroup, runHelper, unpinNamespace, waitGone } from './host.js';
import { SANDBOX_RECORD_VERSION, nowNanos, type SandboxRecord } from './records.js';
import { validHostname, writeSandboxFiles } from './sandbox-files.js';
import { compileSeccompBpf } from './seccomp-compiler.js';
import type { LinuxSeccomp } from './spec/oci-spec.js';
import { sandboxSecurity } from './spec/seccomp/sandbox.js';
import { hostSecurity } from './spec/security-host.js';
import { sysctlProblem } from './spec/namespaces.js';
import { podUserNamespace } from './spec/userns.js';
import { kernelFeatures } from './runtime/features.js';
import { fingerprint } from './store/names.js';
import type { PortMapping } from '../network/service.js';

const log = logger('sandbox');

/** Size of a pod's /dev/shm, as Docker and containerd default it. */
const SHM_SIZE = 64 << 20;
const NAME_MAX = 253;

export interface SandboxView extends SandboxRecord {
  /** READY only while the record says ready and the pause process is alive. */
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
}

/** The reservation key of a pod: name_namespace_uid_attempt (containerd's makeSandboxName). */
export function sandboxName(m: v1.PodSandboxMetadata__Output): string {
  return `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
}

export function validateSandboxConfig(config: v1.PodSandboxConfig__Output | null, driver: CgroupDriver = 'cgroupfs'): asserts config is v1.PodSandboxConfig__Output {
  const m = config?.metadata;
  if (!config || !m) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'RunPodSandbox: config.metadata is required');
  for (const [field, v] of [
    ['name', m.name],
    ['namespace', m.namespace],
    ['uid', m.uid],
  ] as const) {
    if (!v) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: metadata.${field} must not be empty`);
    if (v.length > NAME_MAX) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: metadata.${field} is ${v.length} characters, over ${NAME_MAX}`);
    if (/[\0/]/.test(v)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: metadata.${field} "${v}" contains "/" or NUL`);
  }
  if (config.hostname && !validHostname(config.hostname)) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: hostname "${config.hostname}" is not a valid RFC 1123 hostname`);
  }
  // Paths built from the request must stay where they belong.
  const parent = config.linux?.cgroup_parent ?? '';
  if (parent) {
    try {
      podParentPath(driver, parent);
    } catch (err) {
      throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: ${(err as Error).message}`, { cause: err });
    }
  }
  if (config.log_directory && !config.log_directory.startsWith('/')) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: log_directory "${config.log_directory}" must be absolute`);
  }
  for (const p of config.port_mappings ?? []) {
    const where = `RunPodSandbox: port_mappings entry ${JSON.stringify({ protocol: p.protocol, container_port: p.container_port, host_port: p.host_port, host_ip: p.host_ip })}`;
    if (!(p.container_port >= 1 && p.container_port <= 65535)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${where}: container_port must be 1-65535`);
    if (!(p.host_port >= 0 && p.host_port <= 65535)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${where}: host_port must be 0-65535`);
    if (p.host_ip && !isIP(p.host_ip)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${where}: host_ip is not an IP address`);
  }
  bandwidthCapability(config); // a malformed bandwidth annotation fails before anything is made
  for (const field of ['searches', 'options'] as const) {
    for (const v of config.dns_config?.[field] ?? []) {
      if (/[\s]/.test(v) || v === '') throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: dns_config.${field} entry ${JSON.stringify(v)} is empty or contains whitespace`);
    }
  }
  // Pod sysctls are refused here, not first at CreateContainer: pause does not go through the OCI
  // runtime (containerd's sandbox spec would have been refused by runc at this point).
  const ns = nsOptions(config);
  for (const key of Object.keys(config.linux?.sysctls ?? {})) {
    const problem = sysctlProblem(key, { hostNetwork: ns.network === 'NODE', hostIPC: ns.ipc === 'NODE' });
    if (problem) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: ${problem}`);
  }
  podUserNamespace(config); // containerd's userns_options rules, before anything is made
}

/** The pod's hostname: its own, else its name (which must then be a valid hostname, 63 at most). */
export function podHostname(config: v1.PodSandboxConfig__Output): string {
  const h = config.hostname || config.metadata!.name;
  if (!validHostname(h) || h.length > 64) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: "${h}" cannot be the pod's hostname (RFC 1123, at most 64 characters): set hostname`);
  }
  return h;
}

/** The namespace pins a pod holds: network, ipc and uts (each absent when the pod uses the host's). */
export function sandboxPins(rec: Pick<SandboxRecord, 'netnsPath' | 'ipcPath' | 'utsPath' | 'userns'>): string[] {
  return [rec.netnsPath, rec.ipcPath, rec.utsPath, rec.userns?.path].filter((p): p is string => !!p);
}

function nsOptions(config: v1.PodSandboxConfig__Output): { network: string; pid: string; ipc: string } {
  const o = config.linux?.security_context?.namespace_options;
  return { network: String(o?.network ?? 'POD'), pid: String(o?.pid ?? 'POD'), ipc: String(o?.ipc ?? 'POD') };
}

/**
 * The sandbox's seccomp profile as the BPF program skiff-ns loads into pause. A profile skiff cannot
 * compile exactly as a runtime would (a notify listener, an action or flag crun does not know) is
 * refused rather than dropped: pause has no runtime to hand it to.
 */
function pauseSeccompFilter(seccomp: LinuxSeccomp): Buffer {
  const bpf = compileSeccompBpf(seccomp);
  if (!bpf) throw new SkiffError('SKIFF_FAILED_PRECONDITION', 'RunPodSandbox: the sandbox seccomp profile cannot be compiled for skiff-pause (libseccomp missing, or a listener, flag or action only an OCI runtime applies)');
  return bpf;
}

export class Sandboxes {
  constructor(private readonly ctx: PodContext) {}

  /** RunPodSandbox: returns the sandbox id; a retry of the same request returns the same id. */
  async run(config: v1.PodSandboxConfig__Output, handler: string): Promise<string> {
    validateSandboxConfig(config, this.ctx.cgroupDriver);
    // seccomp/AppArmor/SELinux asked for the sandbox: refused here when they cannot be honoured.
    const { pauseSeccomp } = sandboxSecurity(config, hostSecurity());
    const pauseFilter = pauseSeccomp ? pauseSeccompFilter(pauseSeccomp) : undefined;
    const runtime = this.ctx.runtime(handler); // an unknown handler fails before anything is made
    const name = sandboxName(config.metadata!);
    const fp = fingerprint({ config, handler: runtime.handler.name });
    const { id } = await this.ctx.sandboxNames.reserve(name, fp, () => this.create(name, fp, config, runtime.handler.name, pauseFilter));
    return id;
  }

  private async create(name: string, fp: string, config: v1.PodSandboxConfig__Output, handler: string, pauseFilter?: Buffer): Promise<string> {
    const id = randomBytes(32).toString('hex');
    const ns = nsOptions(config);
    const hostNetwork = ns.network === 'NODE';
    const dir = this.ctx.sandboxDir(id);
    const hostname = hostNetwork ? (await readFile('/proc/sys/kernel/hostname', 'utf8')).trim() : podHostname(config);
    const cgroupParent = config.linux?.cgroup_parent ?? '';
    const userns = podUserNamespace(config);
    if (userns && !kernelFeatures().idmappedOverlayLayers) {
      throw new SkiffError('SKIFF_FAILED_PRECONDITION', 'RunPodSandbox: a pod user namespace needs idmapped overlayfs layers (Linux 5.19 or later)');
    }
    const rec: SandboxRecord = {
      version: SANDBOX_RECORD_VERSION,
      id,
      name,
      fingerprint: fp,
      config,
      runtimeHandler: handler,
      phase: 'creating',
      createdAt: nowNanos(),
      dir,
      hostname,
      ips: [],
      ...(hostNetwork ? {} : { netnsPath: this.ctx.netnsPath(id), utsPath: join(dir, 'uts.ns') }),
      ...(ns.ipc === 'NODE' ? {} : { shmPath: join(dir, 'shm'), ipcPath: join(dir, 'ipc.ns') }),
      ...(userns ? { userns: { path: join(dir, 'user.ns'), ...userns } } : {}),
      ...(cgroupParent ? { cgroupPath: cgroupPathIn(this.ctx.cgroupDriver, podParentPath(this.ctx.cgroupDriver, cgroupParent), id) } : {}),
    };
    const cleanup = new Cleanup();
    try {
      await this.ctx.sandboxes.create(rec);
      cleanup.add('delete record', () => this.ctx.sandboxes.delete(id));
      await this.setUp(rec, ns, cleanup, pauseFilter);
      await failpoint('sandbox-before-ready');
      // pid first known here: a crash before this write finds it in pause.pid (killPause).
      const ready = await this.ctx.sandboxes.update(id, (r) => {
        r.phase = 'ready';
        r.pid = rec.pid;
        r.pidStartTime = rec.pidStartTime;
        r.ips = rec.ips;
        if (rec.networkMode) r.networkMode = rec.networkMode;
      });
      cleanup.done();
      // kubelet's evented PLEG hears of sandboxes as of containers, keyed by the sandbox id.
      for (const type of ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT'] as const) {
        this.ctx.emit({ type, containerId: id, sandboxId: id, createdAt: nowNanos() });
      }
      log.info({ sandbox: id, name, pid: ready.pid }, 'sandbox ready');
      return id;
    } catch (err) {
      await cleanup.run({ sandbox: id });
      throw err;
    }
  }

  /**
   * Everything a pod holds on the host; each step registers its undo in `cleanup`. One skiff-ns
   * run makes the namespaces, pins them and starts pause in them (joining the pod cgroup), while
   * the pod's files and /dev/shm are made here at the same time.
   */
  private async setUp(rec: SandboxRecord, ns: { network: string; pid: string; ipc: string }, cleanup: Cleanup, pauseFilter?: Buffer): Promise<void> {
    const { ctx } = this;
    await mkdir(rec.dir, { recursive: true, mode: 0o711 });
    cleanup.add('remove sandbox dir', () => rm(rec.dir, { recursive: true, force: true }));
    if (rec.netnsPath) await mkdir(join(ctx.stateDir, 'netns'), { recursive: true, mode: 0o711 });
    const procs: string[] = [];
    if (rec.cgroupPath) {
      cleanup.add('remove pause cgroup', () => removeCgroup(ctx.cgroups, rec.cgroupPath!));
      procs.push(...(await createCgroup(ctx.cgroups, rec.cgroupPath)));
    }
    const pins = sandboxPins(rec);
    cleanup.add('unpin namespaces', () => pins.forEach(unpinNamespace));
    const pidFile = join(rec.dir, 'pause.pid');
    cleanup.add('kill pause', () => this.killPause(rec));
    // The sandbox's seccomp filter, compiled; skiff-ns loads it (with no_new_privs) into pause.
    const filterFile = join(rec.dir, 'pause-seccomp.bpf');
    if (pauseFilter) await writeFile(filterFile, pauseFilter, { mode: 0o600 });
    const args = [
      'sandbox',
      ...(rec.netnsPath ? ['--new-netns', rec.netnsPath] : ['--host-net']),
      ...(ns.ipc === 'NODE' ? ['--host-ipc'] : ['--ipc', '--pin-ipc', rec.ipcPath!]),
      ns.pid === 'NODE' ? '--host-pid' : '--pid',
      // A pod on the node's network keeps the node's UTS namespace and hostname, as in kubelet.
      ...(rec.utsPath ? ['--uts', '--hostname', rec.hostname, '--pin-uts', rec.utsPath] : ['--host-uts']),
      ...procs.flatMap((p) => ['--cgroup-procs', p]),
      ...(rec.userns ? ['--userns', '--uid-map', idMap(rec.userns.uid), '--gid-map', idMap(rec.userns.gid), '--pin-user', rec.userns.path] : []),
      '--pidfile',
      pidFile,
      '--pause',
      ctx.native.pause,
      // pause joins the cgroup itself, without RunPodSandbox waiting; why it could not goes here.
      '--pause-log',
      join(rec.dir, 'pause.log'),
      ...(pauseFilter ? ['--seccomp-bpf', filterFile] : []),
    ];
    const results = await Promise.allSettled([
      runHelper(ctx.native.ns, args, `sandbox ${rec.id}: start pause`),
      writeSandboxFiles(rec.dir, { hostname: rec.hostname, hostNetwork: !rec.netnsPath, dns: rec.config.dns_config }),
      this.mountShm(rec, cleanup),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    const start = await processStartTime(pid);
    if (!pid || start === undefined) throw new SkiffError('SKIFF_RUNTIME_FAILED', `sandbox ${rec.id}: pause process ${pid} died at once`);
    rec.pid = pid;
    rec.pidStartTime = start;
    if (rec.netnsPath) await this.attachNetwork(rec, cleanup);
  }

  /** The pod's network in its pinned namespace: the built-in bridge or the node's CNI chain. */
  private async attachNetwork(rec: SandboxRecord, cleanup: Cleanup): Promise<void> {
    const m = rec.config.metadata!;
    // A crash from here on leaves the attachment to recovery's reconcile (no record names it yet).
    const result = await this.ctx.network.attach({
      sandboxId: rec.id,
      netnsPath: rec.netnsPath!,
      podName: m.name,
      podNamespace: m.namespace,
      podUid: m.uid,
      portMappings: portMappings(rec.config),
      ...dnsCapability(rec.config),
      ...bandwidthCapability(rec.config),
    });
    cleanup.add('detach network', () => this.ctx.network.detach(result.mode, rec.id, rec.netnsPath));
    rec.networkMode = result.mode;
    rec.ips = result.ips;
  }

  private async mountShm(rec: SandboxRecord, cleanup: Cleanup): Promise<void> {
    if (!rec.shmPath) return;
    await mkdir(rec.shmPath, { recursive: true, mode: 0o1777 });
    mount('shm', rec.shmPath, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${SHM_SIZE}`);
    cleanup.add('unmount shm', () => unmount(rec.shmPath!));
  }

  /** SIGKILLs the pause process; a record without its pid (a crash mid-create) has it in pause.pid. */
  private async killPause(rec: SandboxRecord): Promise<void> {
    let { pid, pidStartTime } = rec;
    if (!pid) {
      pid = Number((await readFile(join(rec.dir, 'pause.pid'), 'utf8').catch(() => '')).trim());
      if (!(pid > 0)) return;
      // Only ever written by the skiff-ns run of this pod; still, a pid is only ours while it is pause.
      if ((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() !== 'skiff-pause') return;
      pidStartTime = await processStartTime(pid);
    }
    if (!(await isSameProcess(pid, pidStartTime))) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    if (!(await waitGone(pid, pidStartTime, 5000))) log.warn({ sandbox: rec.id, pid }, 'pause did not exit after SIGKILL');
  }

  /** Releases what a stopped pod holds: pause, cgroup, shm, namespace pins. Idempotent. */
  async tearDown(rec: SandboxRecord): Promise<void> {
    // Every step runs even when one fails, so one stuck resource never keeps the others.
    const failures: string[] = [];
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    await step('kill pause', () => this.killPause(rec));
    if (rec.cgroupPath) await step('remove cgroup', () => removeCgroup(this.ctx.cgroups, rec.cgroupPath!));
    if (rec.shmPath) await step('unmount shm', () => unmount(rec.shmPath!));
    // Before the netns pin goes: CNI plugins want the namespace for DEL.
    if (rec.networkMode) {
      const o = { hostPorts: portMappings(rec.config).length > 0, namespaceGoes: true };
      await step('network', () => this.ctx.network.detach(rec.networkMode!, rec.id, rec.netnsPath, o));
    }
    for (const pin of sandboxPins(rec)) await step(`unpin ${pin}`, () => unpinNamespace(pin));
    if (failures.length) throw new SkiffError('SKIFF_RUNTIME_FAILED', `sandbox ${rec.id}: ${failures.join('; ')}`);
  }

  /** The sandbox record with its live state. */
  async view(rec: SandboxRecord): Promise<SandboxView> {
    const alive = rec.phase === 'ready' && (await isSameProcess(rec.pid, rec.pidStartTime));
    return { ...rec, state: alive ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY' };
  }

  get(id: string): SandboxRecord | undefined {
    return this.ctx.sandboxes.get(id);
  }

  /** Finds a sandbox by full id or unique prefix (crictl passes short ids). */
  find(idOrPrefix: string): SandboxRecord | undefined {
    return this.ctx.sandboxes.find(idOrPrefix);
  }


  list(): SandboxRecord[] {
    return this.ctx.sandboxes.list().filter((r) => r.phase !== 'creating');
  }
}

const idMap = (m: { containerID: number; hostID: number; size: number }): string => `${m.containerID}:${m.hostID}:${m.size}`;

const PROTOCOLS: Record<string, PortMapping['protocol']> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

/** The pod's hostPorts (kubelet passes every container port; those without a host port are not mapped). */
export function portMappings(config: v1.PodSandboxConfig__Output): PortMapping[] {
  return (config.port_mappings ?? [])
    .filter((p) => p.host_port > 0)
    .map((p) => ({ hostPort: p.host_port, containerPort: p.container_port, protocol: PROTOCOLS[String(p.protocol)] ?? 'tcp', hostIP: p.host_ip }));
}

function dnsCapability(config: v1.PodSandboxConfig__Output): { dns?: { servers: string[]; searches: string[]; options: string[] } } {
  const d = config.dns_config;
  if (!d || (!d.servers.length && !d.searches.length && !d.options.length)) return {};
  return { dns: { servers: d.servers, searches: d.searches, options: d.options } };
}

/**
 * kubernetes.io/ingress-bandwidth and egress-bandwidth pod annotations (quantities in bits per
 * second), for a CNI chain with the bandwidth plugin, as containerd and CRI-O read them.
 */
export function bandwidthCapability(config: v1.PodSandboxConfig__Output): { bandwidth?: { ingressRate?: number; ingressBurst?: number; egressRate?: number; egressBurst?: number } } {
  const a = config.annotations ?? {};
  const bw: { ingressRate?: number; ingressBurst?: number; egressRate?: number; egressBurst?: number } = {};
  for (const [key, rate, burst] of [
    ['kubernetes.io/ingress-bandwidth', 'ingressRate', 'ingressBurst'],
    ['kubernetes.io/egress-bandwidth', 'egressRate', 'egressBurst'],
  ] as const) {
    if (a[key] === undefined) continue;
    const bits = parseQuantity(a[key]);
    if (bits === undefined || bits <= 0) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: annotation ${key} "${a[key]}" is not a bandwidth (e.g. "10M")`);
    bw[rate] = bits;
    bw[burst] = 2 ** 31 - 1; // as kubelet's dockershim and containerd: no burst limit of their own
  }
  return Object.keys(bw).length ? { bandwidth: bw } : {};
}

const SUFFIXES: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };

/** A Kubernetes resource quantity ("100M", "1.5Gi", "2000") as a number; undefined if malformed. */
export function parseQuantity(q: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/.exec(q.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * SUFFIXES[m[2] ?? '']);
}
