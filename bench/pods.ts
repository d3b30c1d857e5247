// Benchmark, pods part: latency of each pod and container rpc over sequential pods, the time from
// RunPodSandbox to a running container, ExecSync, and the memory (PSS) a pod costs with all of
// them alive — for skiff with crun and runc, and for Debian's containerd 1.6 + runc over the same
// CRI client when it is installed.
//
// Each run creates its pods one after another (RunPodSandbox, CreateContainer, StartContainer,
// ExecSync), measures PSS while they are all alive, then tears them down one after another
// (StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox). One untimed warm-up pod
// goes through the whole lifecycle first.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { CriClient } from '../cri/client/client.js';
import type * as v1 from '../cri/gen/v1.js';
import { TestDaemon } from '../e2e/harness/daemon.js';
import { busyboxLayer } from '../e2e/harness/layer.js';
import { pushImage } from '../e2e/harness/push.js';
import { startRegistry, type TestRegistry } from '../e2e/harness/registry.js';
import { withContainerd } from './containerd-cri.js';
import { percentile, table } from './stats.js';

const PODS = Number(process.env.SKIFF_BENCH_PODS ?? 50);
const EXECS_PER_POD = Number(process.env.SKIFF_BENCH_EXECS ?? 5);
// `sleep` is not PID 1 in a pod sharing its pid namespace, so SIGTERM ends it well within this.
const STOP_TIMEOUT_S = '2';
const EXEC_TIMEOUT_S = '10';

// Issue 10's goals on this 2-core machine.
const GOAL = { podToRunningMs: 50, execSyncMs: 10, pssMiB: 0.6 };

const RPCS = [
  'RunPodSandbox',
  'CreateContainer',
  'StartContainer',
  'ExecSync',
  'StopContainer',
  'RemoveContainer',
  'StopPodSandbox',
  'RemovePodSandbox',
] as const;
type Rpc = (typeof RPCS)[number];
/** ExecSyncSpaced: ExecSync 150 ms after the previous one, as kubelet's probes come (see cgroupAttach). */
type Samples = Record<Rpc | 'podToRunning' | 'ExecSyncSpaced', number[]>;
const SPACED_EXECS = 20;
const SPACING_MS = 150;

export interface Target {
  label: string;
  client: CriClient;
  /** RuntimeClass handler; empty for the runtime's default. */
  handler: string;
  hostNetwork: boolean;
  /** `comm` of the per-pod processes that supervise pause and containers: the monitor or the shim. */
  supervisor: string;
}

export interface World {
  image: string;
  logDir: string;
  cgroupParent: string;
}

interface LivePod {
  podId: string;
  containerId: string;
  pausePid: number;
  containerPid: number;
}

interface Memory {
  pauseKiB: number;
  supervisorKiB: number;
  supervisors: number;
}

interface Result {
  target: Target;
  samples: Samples;
  memory: Memory;
  seconds: number;
}

/** Times one rpc into `samples` (none for the warm-up pod); a failure names the rpc and the pod. */
async function timed<T>(what: string, samples: number[] | undefined, call: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    const value = await call();
    samples?.push(performance.now() - t0);
    return value;
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

// /proc/PID/stat: the command name is in parentheses and may hold spaces; state and ppid follow.
async function parentPid(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

async function comm(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
}

async function pssKiB(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const m = /^Pss:\s+(\d+) kB$/m.exec(rollup);
  if (!m) throw new Error(`/proc/${pid}/smaps_rollup has no Pss line`);
  return Number(m[1]);
}

/** The run's pod name prefix and the value of its `skiff-bench` label. */
export const slug = (t: Target): string => t.label.replace(/[^a-z0-9]+/g, '-');

export function podConfig(t: Target, w: World, name: string): v1.PodSandboxConfig {
  return {
    metadata: { name, namespace: 'skiff-bench', uid: `uid-${name}`, attempt: 0 },
    ...(t.hostNetwork ? {} : { hostname: name }),
    log_directory: w.logDir,
    labels: { 'skiff-bench': slug(t) },
    linux: {
      cgroup_parent: w.cgroupParent,
      security_context: { namespace_options: { network: t.hostNetwork ? 'NODE' : 'POD', pid: 'POD', ipc: 'POD' } },
    },
  };
}

/** RunPodSandbox through ExecSync; samples are left out for the warm-up pod. */
async function startPod(t: Target, w: World, name: string, s?: Samples): Promise<LivePod> {
  const c = t.client;
  const config = podConfig(t, w, name);
  const t0 = performance.now();
  const { pod_sandbox_id: podId } = await timed(`RunPodSandbox ${name}`, s?.RunPodSandbox, () => c.runPodSandbox({ config, runtime_handler: t.handler }));
  const { container_id: containerId } = await timed(`CreateContainer in ${name}`, s?.CreateContainer, () =>
    c.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name: 'sleep', attempt: 0 }, image: { image: w.image }, command: ['sleep', '3600'], log_path: `${name}.log` },
      sandbox_config: config,
    }),
  );
  await timed(`StartContainer in ${name}`, s?.StartContainer, () => c.startContainer({ container_id: containerId }));
  s?.podToRunning.push(performance.now() - t0);

  for (let i = 0; i < EXECS_PER_POD; i++) {
    const r = await timed(`ExecSync in ${name}`, s?.ExecSync, () => c.execSync({ container_id: containerId, cmd: ['true'], timeout: EXEC_TIMEOUT_S }));
    if (r.exit_code !== 0) throw new Error(`${t.label}: ExecSync true in ${name} exited ${r.exit_code}: ${Buffer.from(r.stderr).toString()}`);
  }
  const pod = JSON.parse((await c.podSandboxStatus({ pod_sandbox_id: podId, verbose: true })).info.info) as { pid: number };
  const ctr = JSON.parse((await c.containerStatus({ container_id: containerId, verbose: true })).info.info) as { pid: number };
  return { podId, containerId, pausePid: pod.pid, containerPid: ctr.pid };
}

async function endPod(t: Target, p: LivePod, s?: Samples): Promise<void> {
  const c = t.client;
  await timed(`StopContainer ${p.containerId.slice(0, 12)}`, s?.StopContainer, () => c.stopContainer({ container_id: p.containerId, timeout: STOP_TIMEOUT_S }));
  await timed(`RemoveContainer ${p.containerId.slice(0, 12)}`, s?.RemoveContainer, () => c.removeContainer({ container_id: p.containerId }));
  await timed(`StopPodSandbox ${p.podId.slice(0, 12)}`, s?.StopPodSandbox, () => c.stopPodSandbox({ pod_sandbox_id: p.podId }));
  await timed(`RemovePodSandbox ${p.podId.slice(0, 12)}`, s?.RemovePodSandbox, () => c.removePodSandbox({ pod_sandbox_id: p.podId }));
}

/**
 * PSS of every pod's pause plus the supervisor processes that are parents of its pause or its
 * container (skiff-monitor per container; containerd's shim per pod), each process counted once.
 */
async function measureMemory(t: Target, pods: LivePod[]): Promise<Memory> {
  const pauses = new Set<number>();
  const supervisors = new Set<number>();
  for (const p of pods) {
    pauses.add(p.pausePid);
    const parent = await parentPid(p.containerPid);
    const name = await comm(parent);
    if (name !== t.supervisor) throw new Error(`${t.label}: container pid ${p.containerPid} has parent ${parent} (${name}), not ${t.supervisor}`);
    supervisors.add(parent);
    const pauseParent = await parentPid(p.pausePid);
    if ((await comm(pauseParent)) === t.supervisor) supervisors.add(pauseParent);
  }
  let pauseKiB = 0;
  for (const pid of pauses) pauseKiB += await pssKiB(pid);
  let supervisorKiB = 0;
  for (const pid of supervisors) supervisorKiB += await pssKiB(pid);
  return { pauseKiB, supervisorKiB, supervisors: supervisors.size };
}

async function measure(t: Target, w: World): Promise<Result> {
  const started = performance.now();
  const samples = Object.fromEntries([...RPCS, 'podToRunning', 'ExecSyncSpaced'].map((k) => [k, [] as number[]])) as unknown as Samples;
  const prefix = slug(t);
  const pods: LivePod[] = [];
  try {
    await endPod(t, await startPod(t, w, `${prefix}-warmup`));
    for (let i = 0; i < PODS; i++) pods.push(await startPod(t, w, `${prefix}-${i}`, samples));
    for (let i = 0; i < SPACED_EXECS; i++) {
      await sleep(SPACING_MS);
      const p = pods[i % pods.length];
      await timed(`ExecSync in ${p.containerId.slice(0, 12)}`, samples.ExecSyncSpaced, () => t.client.execSync({ container_id: p.containerId, cmd: ['true'], timeout: EXEC_TIMEOUT_S }));
    }
    const memory = await measureMemory(t, pods);
    for (const p of pods) await endPod(t, p, samples);
    return { target: t, samples, memory, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    // Whatever this run still has: the started pods and any half-made one.
    await removePods(t, prefix).catch((cleanupErr: unknown) => {
      throw new Error(`${(err as Error).message}; removing the pods left then failed too: ${(cleanupErr as Error).message}`, { cause: err });
    });
    throw err;
  }
}

export async function removePods(t: Target, labelValue: string): Promise<void> {
  const left = await t.client.listPodSandbox({ filter: { label_selector: { 'skiff-bench': labelValue } } });
  for (const p of left.items) {
    await t.client.stopPodSandbox({ pod_sandbox_id: p.id });
    await t.client.removePodSandbox({ pod_sandbox_id: p.id });
  }
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Removes a cgroup directory and any left under it, deepest first; returns those that were left. */
async function removeCgroupTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!entries) return [];
  const left: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    left.push(join(dir, e.name), ...(await removeCgroupTree(join(dir, e.name))));
  }
  await rmdir(dir);
  return left;
}

export async function removeCgroupParent(cgroupParent: string): Promise<string[]> {
  const left: string[] = [];
  for (const controller of await readdir('/sys/fs/cgroup')) left.push(...(await removeCgroupTree(join('/sys/fs/cgroup', controller, cgroupParent))));
  return left;
}

const ms = (v: number): string => v.toFixed(1);
const p50 = (xs: number[]): number => percentile(xs, 50);
const p90 = (xs: number[]): number => percentile(xs, 90);
const pssPerPodMiB = (m: Memory): number => (m.pauseKiB + m.supervisorKiB) / 1024 / PODS;

function rpcTable(r: Result): string {
  const label = { podToRunning: 'pod to running', ExecSyncSpaced: `ExecSync ${SPACING_MS} ms apart` } as Record<string, string>;
  const rows = [...RPCS, 'podToRunning' as const, 'ExecSyncSpaced' as const].map((k) => [label[k] ?? k, ms(p50(r.samples[k])), ms(p90(r.samples[k]))]);
  const m = r.memory;
  return [
    `${r.target.label}: ${PODS} pods (+1 warm-up), ExecSync x${EXECS_PER_POD} per pod (${r.seconds.toFixed(1)} s)`,
    table(['rpc', 'p50 ms', 'p90 ms'], rows),
    `PSS with ${PODS} pods alive: ${pssPerPodMiB(m).toFixed(3)} MiB per pod = pause ${(m.pauseKiB / 1024 / PODS).toFixed(3)} + ` +
      `${r.target.supervisor} ${(m.supervisorKiB / 1024 / PODS).toFixed(3)} (${m.supervisors} ${r.target.supervisor} processes)`,
  ].join('\n');
}

function summary(results: Result[]): string {
  const skiff = (r: Result): boolean => r.target.label.startsWith('skiff');
  const cell = (r: Result, v: number, goal: number | undefined, digits: number): string =>
    v.toFixed(digits) + (goal !== undefined && skiff(r) ? (v <= goal ? ' (ok)' : ' (over)') : '');
  const metrics: [string, string, (r: Result) => string][] = [
    ['pod to running p50 ms', `<= ${GOAL.podToRunningMs}`, (r) => cell(r, p50(r.samples.podToRunning), GOAL.podToRunningMs, 1)],
    ['pod to running p90 ms', '', (r) => cell(r, p90(r.samples.podToRunning), undefined, 1)],
    ['ExecSync p50 ms', `<= ${GOAL.execSyncMs}`, (r) => cell(r, p50(r.samples.ExecSync), GOAL.execSyncMs, 1)],
    ['ExecSync p90 ms', '', (r) => cell(r, p90(r.samples.ExecSync), undefined, 1)],
    [`ExecSync ${SPACING_MS} ms apart p50 ms`, '', (r) => cell(r, p50(r.samples.ExecSyncSpaced), undefined, 1)],
    ['PSS per pod MiB', `<= ${GOAL.pssMiB}`, (r) => cell(r, pssPerPodMiB(r.memory), GOAL.pssMiB, 2)],
  ];
  return table(
    ['metric', 'goal', ...results.map((r) => r.target.label)],
    metrics.map(([name, goal, f]) => [name, goal, ...results.map(f)]),
  );
}

async function measureSkiff(w: World, registryHost: string): Promise<Result[]> {
  const d = await TestDaemon.start({ toml: `[registry]\ninsecure = ["${registryHost}"]\n` });
  try {
    await d.client.pullImage({ image: { image: w.image } });
    const skiff = { client: d.client, supervisor: 'skiff-monitor' };
    return [
      await measure({ ...skiff, label: 'skiff crun', handler: '', hostNetwork: false }, w),
      await measure({ ...skiff, label: 'skiff runc', handler: 'runc', hostNetwork: false }, w),
      await measure({ ...skiff, label: 'skiff crun hostnet', handler: '', hostNetwork: true }, w),
    ];
  } finally {
    await d.cleanup();
  }
}

/** containerd's result, or why there is none (in `notes`). */
function measureContainerd(w: World, reg: TestRegistry, notes: string[]): Promise<Result | undefined> {
  return withContainerd(reg, w.image, notes, (client) =>
    measure({ label: 'containerd runc hostnet', client, handler: '', hostNetwork: true, supervisor: 'containerd-shim' }, w),
  );
}

/**
 * What one cgroup v1 migration (a write to cgroup.procs) costs on this host when none happened in
 * the last moment: the kernel waits out an RCU grace period (cgroup_threadgroup_rwsem). Every
 * runtime pays it once per container create (the init joins its cgroups) and once per exec.
 */
async function cgroupAttach(cgroupParent: string): Promise<number[] | undefined> {
  const pids = '/sys/fs/cgroup/pids';
  if (!(await exists(join(pids, 'cgroup.procs')))) return undefined;
  const dirs = [join(pids, cgroupParent, 'attach-a'), join(pids, cgroupParent, 'attach-b')];
  for (const d of dirs) await mkdir(d, { recursive: true });
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const out: number[] = [];
  try {
    for (let i = 0; i < 12; i++) {
      await sleep(SPACING_MS);
      const t0 = performance.now();
      await writeFile(join(dirs[i % 2], 'cgroup.procs'), String(child.pid));
      out.push(performance.now() - t0);
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    for (const d of dirs) for (let i = 0; i < 50 && (await rmdir(d).then(() => false, (e: NodeJS.ErrnoException) => e.code === 'EBUSY')); i++) await sleep(20);
  }
  return out;
}

/**
 * Runs `measure` in a bench world: a registry with busybox pushed, a log dir and a cgroup parent of
 * the bench's own, all removed afterwards; cgroups the runtimes left under the parent are noted.
 * When `measure` fails the report is lost, so what cleanup noted goes to stderr.
 */
export async function inBenchWorld<T>(name: string, notes: string[], measure: (w: World, reg: TestRegistry) => Promise<T>): Promise<T> {
  const cgroupParent = `/skiff-bench-${randomBytes(4).toString('hex')}`;
  const logDir = await mkdtemp(join(tmpdir(), `skiff-bench-${name}-`));
  let failed = false;
  try {
    const reg = await startRegistry();
    try {
      const image = (await pushImage(reg, 'bench/busybox', '1', { layers: [await busyboxLayer('gzip')], format: 'docker' })).ref;
      return await measure({ image, logDir, cgroupParent }, reg);
    } finally {
      await reg.stop();
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await rm(logDir, { recursive: true, force: true });
    const left = await removeCgroupParent(cgroupParent);
    if (left.length > 0) notes.push(`removed cgroups the runtimes left behind: ${left.join(', ')}`);
    if (failed && notes.length > 0) process.stderr.write(notes.join('\n') + '\n');
  }
}

export async function benchPods(): Promise<string> {
  const notes: string[] = [];
  const results: Result[] = [];
  const load = [loadavg()[0]];
  await inBenchWorld('logs', notes, async (w, reg) => {
    results.push(...(await measureSkiff(w, reg.host)));
    const peer = await measureContainerd(w, reg, notes);
    if (peer) results.push(peer);
  });
  load.push(loadavg()[0]);
  const attachParent = `/skiff-bench-${randomBytes(4).toString('hex')}`;
  const attach = await cgroupAttach(attachParent).catch((err: unknown) => {
    notes.push(`cgroup migration cost not measured: ${(err as Error).message}`);
    return undefined;
  });
  await removeCgroupParent(attachParent);

  const out = [
    `busybox "sleep 3600" in each pod; pid namespace shared by the pod; StopContainer timeout ${STOP_TIMEOUT_S} s (sleep dies on SIGTERM).`,
    'skiff pods get their own network namespace and the built-in network (veth, address, NAT) unless marked hostnet; containerd has no CNI plugin configured here, so its ' +
      'pods use the host network (namespace_options.network = NODE). skiffd logs at debug level (e2e harness).',
    `host: ${cpus().length} CPUs, 1-min load average ${load[0].toFixed(2)} before and ${load[1].toFixed(2)} after (other work skews these figures).`,
  ];
  if (attach) {
    out.push(
      `host: one cgroup v1 migration (cgroup.procs write, ${SPACING_MS} ms after the last) costs p50 ${ms(p50(attach))} / p90 ${ms(p90(attach))} ms here: ` +
        'the kernel waits for an RCU grace period. Every runtime pays it in each container create and each exec (crun, runc, containerd alike); ' +
        'back-to-back calls share one, probes spaced like kubelet\'s do not.',
    );
  }
  if (results.some((r) => r.target.supervisor === 'containerd-shim')) {
    out.push(
      'containerd runs with restrict_oom_score_adj = true: root here lacks CAP_SYS_RESOURCE, so runc cannot give pause ' +
        'the oom_score_adj -998 containerd asks for otherwise.',
    );
  }
  for (const r of results) out.push('', rpcTable(r));
  out.push('', summary(results), ...notes);
  return out.join('\n');
}
