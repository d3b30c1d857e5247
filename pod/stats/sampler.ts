// The stats sampler: what the CRI stats rpcs and the /metrics collector read. Each container costs
// a handful of small cgroup files (cgroup-stats.ts) and a cached writable-layer walk; each pod adds
// its cgroup parent and the pause process's /proc/<pid>/net/dev. Answers are plain objects in CRI
// field shapes (timestamps in ns as decimal strings), with the raw counters and cAdvisor's labels
// beside them for Prometheus. Layout of the answers follows containerd's container_stats_list.go
// and sandbox_stats_linux.go; where skiff differs it says so.
import type * as v1 from '../../cri/gen/v1.js';
import { SkiffError } from '../../common/errors.js';
import type { Usage } from '../../images/fs-usage.js';
import { podParentPath } from '../cgroups/naming.js';
import type { PodContext } from '../context.js';
import { isSameProcess } from '../host.js';
import { nowNanos, type ContainerRecord, type SandboxRecord } from '../records.js';
import type { CgroupLayout } from '../runtime/cgroup-layout.js';
import { cgroupDirs, cgroupName, processCgroupDirs, type CgroupDirs } from './cgroup-dirs.js';
import { availableBytes, readCgroupStats, type CgroupSample } from './cgroup-stats.js';
import { CpuRates } from './cpu-rate.js';
import { DEFAULT_INTERFACE, readNetDev, type InterfaceCounters } from './net-dev.js';
import { WritableLayers } from './writable-layer.js';

/** cAdvisor's label values for a container (kubelet's containerPrometheusLabelsFunc keys). */
export interface MetricLabels {
  /** The container's name in its pod; "" for the pod's own cgroup. */
  container: string;
  /** The cgroup path, as cAdvisor's `id`. */
  id: string;
  image: string;
  /** The runtime's name of it: the container id; "" for the pod's cgroup. */
  name: string;
  namespace: string;
  pod: string;
}

export interface ContainerSample {
  id: string;
  sandboxId: string;
  /** Only a running container has cpu, memory and process figures. */
  running: boolean;
  stats: v1.ContainerStats;
  labels: MetricLabels;
  /** Raw counters, when the container runs and its cgroup could be read. */
  cgroup?: CgroupSample;
  writableLayer: Usage;
  /** ns since the epoch, as a decimal string. */
  timestamp: string;
}

export interface SandboxSample {
  id: string;
  stats: v1.PodSandboxStats;
  labels: MetricLabels;
  /** The pod cgroup's counters (its cgroup parent); absent when it has none. */
  cgroup?: CgroupSample;
  /** Interfaces of the pod's network namespace, loopback left out; absent for host networking. */
  network?: InterfaceCounters[];
  containers: ContainerSample[];
  timestamp: string;
}

/** What the sampler reads records and files from (the pod context, or a fake tree in tests). */
export interface StatsSources {
  layout: CgroupLayout;
  containers(): ContainerRecord[];
  sandboxes(): SandboxRecord[];
  findContainer(idOrPrefix: string): ContainerRecord | undefined;
  findSandbox(idOrPrefix: string): SandboxRecord | undefined;
  /** The filesystem of the writable layers, as ImageFsInfo names it. */
  fsMountpoint: string;
  /** The image name for the `image` label. */
  imageName(rec: ContainerRecord): string;
  /** Whether the pod's pause process is alive (its pid not reused). */
  sandboxAlive(rec: SandboxRecord): Promise<boolean>;
  /** The pod's cgroup (kubelet's cgroup parent as a path); undefined when the pod names none. */
  podCgroupPath(rec: SandboxRecord): string | undefined;
  procDir?: string;
}

export function contextSources(ctx: PodContext): StatsSources {
  return {
    layout: ctx.cgroups,
    containers: () => ctx.containers.list().filter((c) => c.phase !== 'creating'),
    sandboxes: () => ctx.sandboxes.list().filter((s) => s.phase !== 'creating'),
    findContainer: (id) => ctx.containers.find(id),
    findSandbox: (id) => ctx.sandboxes.find(id),
    fsMountpoint: ctx.images.snapshots.root,
    imageName: (rec) => ctx.images.images.get(rec.imageId)?.repoTags[0] ?? rec.imageName,
    sandboxAlive: (rec) => isSameProcess(rec.pid, rec.pidStartTime),
    // Pods without a parent share skiff's default one: that is no pod's own cgroup.
    podCgroupPath: (rec) => {
      const parent = rec.config.linux?.cgroup_parent;
      try {
        return parent ? podParentPath(ctx.cgroupDriver, parent) : undefined;
      } catch {
        return undefined; // a record made under the other driver: no pod cgroup to read
      }
    },
  };
}

const u64 = (n: number | bigint): v1.UInt64Value => ({ value: String(n) });

function matchLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  return !selector || Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export class PodStats {
  private readonly rates = new CpuRates();
  private readonly layers = new WritableLayers();
  /** Cgroup dirs of containers without a recorded cgroupsPath, found once from their init pid. */
  private readonly procDirs = new Map<string, { pid: number; dirs: CgroupDirs }>();

  constructor(private readonly src: StatsSources) {}

  /** ContainerStats: NOT_FOUND for an unknown id; a container that does not run has no cpu/memory. */
  async container(idOrPrefix: string): Promise<ContainerSample> {
    const rec = this.src.findContainer(idOrPrefix);
    if (!rec || rec.phase === 'creating') throw new SkiffError('SKIFF_NOT_FOUND', `container "${idOrPrefix}" not found`);
    const sandbox = this.src.findSandbox(rec.sandboxId);
    return this.sampleContainer(rec, sandbox);
  }

  /** ListContainerStats: every container (of every state, as containerd), filtered. */
  async listContainers(filter?: v1.ContainerStatsFilter | null): Promise<ContainerSample[]> {
    const all = this.src.containers();
    this.housekeep(all);
    const sandboxes = new Map(this.src.sandboxes().map((s) => [s.id, s]));
    const recs = all
      .filter((c) => !filter?.id || c.id.startsWith(filter.id))
      .filter((c) => !filter?.pod_sandbox_id || c.sandboxId.startsWith(filter.pod_sandbox_id))
      .filter((c) => matchLabels(c.config.labels, filter?.label_selector));
    return inChunks(recs, (r) => this.sampleContainer(r, sandboxes.get(r.sandboxId)));
  }

  /** PodSandboxStats: NOT_FOUND for an unknown id, FAILED_PRECONDITION for a pod that is not ready. */
  async sandbox(idOrPrefix: string): Promise<SandboxSample> {
    const rec = this.src.findSandbox(idOrPrefix);
    if (!rec || rec.phase === 'creating') throw new SkiffError('SKIFF_NOT_FOUND', `pod sandbox "${idOrPrefix}" not found`);
    if (rec.phase !== 'ready' || !(await this.src.sandboxAlive(rec))) {
      throw new SkiffError('SKIFF_FAILED_PRECONDITION', `pod sandbox ${rec.id} is not ready: a stopped pod has no stats`);
    }
    return this.sampleSandbox(rec, this.src.containers().filter((c) => c.sandboxId === rec.id));
  }

  /** ListPodSandboxStats: ready pods only (containerd skips the others), filtered by id prefix and labels. */
  async listSandboxes(filter?: v1.PodSandboxStatsFilter | null): Promise<SandboxSample[]> {
    const containers = this.src.containers();
    this.housekeep(containers);
    const recs = this.src
      .sandboxes()
      .filter((s) => s.phase === 'ready')
      .filter((s) => !filter?.id || s.id.startsWith(filter.id))
      .filter((s) => matchLabels(s.config.labels, filter?.label_selector));
    const alive = await Promise.all(recs.map((s) => this.src.sandboxAlive(s)));
    const samples: SandboxSample[] = [];
    // One pod at a time: each one's containers are sampled in chunks (inChunks) between which other work runs.
    for (const s of recs.filter((_, i) => alive[i])) samples.push(await this.sampleSandbox(s, containers.filter((c) => c.sandboxId === s.id)));
    return samples;
  }

  private housekeep(containers: ContainerRecord[]): void {
    this.rates.prune(BigInt(nowNanos()));
    this.layers.retain(new Set(containers.map((c) => c.upperDir)));
    const ids = new Set(containers.map((c) => c.id));
    for (const id of this.procDirs.keys()) if (!ids.has(id)) this.procDirs.delete(id);
  }

  private async sampleContainer(rec: ContainerRecord, sandbox: SandboxRecord | undefined): Promise<ContainerSample> {
    const running = rec.phase === 'running';
    const dirs = running ? await this.containerDirs(rec) : undefined;
    const layer = await this.layers.usage(rec.upperDir);
    // Read and stamped together, with no await between: the rate divides by this timestamp.
    const cgroup = dirs ? readCgroupStats(dirs) : undefined;
    const timestamp = nowNanos();
    const m = sandbox?.config.metadata;
    const labels: MetricLabels = {
      container: rec.config.metadata?.name ?? '',
      id: dirs ? cgroupName(dirs, this.src.layout) : '',
      image: this.src.imageName(rec),
      name: rec.id,
      namespace: m?.namespace ?? '',
      pod: m?.name ?? '',
    };
    const stats: v1.ContainerStats = {
      attributes: { id: rec.id, metadata: rec.config.metadata, labels: rec.config.labels, annotations: rec.config.annotations },
      writable_layer: {
        timestamp: String(BigInt(layer.atMs) * 1_000_000n),
        fs_id: { mountpoint: this.src.fsMountpoint },
        used_bytes: u64(layer.usage.bytes),
        inodes_used: u64(layer.usage.inodes),
      },
    };
    if (cgroup) Object.assign(stats, this.usage(rec.id, cgroup, timestamp));
    return { id: rec.id, sandboxId: rec.sandboxId, running, stats, labels, ...(cgroup ? { cgroup } : {}), writableLayer: layer.usage, timestamp };
  }

  private async containerDirs(rec: ContainerRecord): Promise<CgroupDirs | undefined> {
    if (rec.cgroupsPath) return cgroupDirs(this.src.layout, rec.cgroupsPath);
    if (!rec.pid) return undefined;
    const known = this.procDirs.get(rec.id);
    if (known?.pid === rec.pid) return known.dirs;
    const dirs = await processCgroupDirs(this.src.layout, rec.pid, this.src.procDir);
    if (dirs) this.procDirs.set(rec.id, { pid: rec.pid, dirs });
    return dirs;
  }

  /** The cpu and memory messages of a sample (containerd cpuContainerStats/memoryContainerStats). */
  private usage(key: string, s: CgroupSample, timestamp: string): { cpu?: v1.CpuUsage; memory?: v1.MemoryUsage } {
    const out: { cpu?: v1.CpuUsage; memory?: v1.MemoryUsage } = {};
    if (s.cpu) {
      const rate = this.rates.rate(key, s.cpu.usageNs, BigInt(timestamp));
      out.cpu = { timestamp, usage_core_nano_seconds: u64(s.cpu.usageNs), ...(rate !== undefined ? { usage_nano_cores: u64(rate) } : {}) };
    }
    if (s.memory) {
      const available = availableBytes(s.memory);
      out.memory = {
        timestamp,
        working_set_bytes: u64(s.memory.workingSet),
        ...(available !== undefined ? { available_bytes: u64(available) } : {}),
        usage_bytes: u64(s.memory.usage),
        rss_bytes: u64(s.memory.rss),
        page_faults: u64(s.memory.pgfault),
        major_page_faults: u64(s.memory.pgmajfault),
      };
    }
    return out;
  }

  private async sampleSandbox(rec: SandboxRecord, containerRecs: ContainerRecord[]): Promise<SandboxSample> {
    const parent = this.src.podCgroupPath(rec);
    const parentDirs = parent ? cgroupDirs(this.src.layout, parent) : undefined;
    const containers = await inChunks(containerRecs, (c) => this.sampleContainer(c, rec));
    const own = parentDirs ? readCgroupStats(parentDirs) : undefined;
    const timestamp = nowNanos();
    const network = rec.netnsPath && rec.pid ? readNetDev(rec.pid, this.src.procDir) : undefined;
    // No pod cgroup (no cgroup parent, which kubelet always sets): the sum of its running containers.
    const cgroup = own ?? sumSamples(containers.flatMap((c) => (c.cgroup ? [c.cgroup] : [])));
    const m = rec.config.metadata;
    const linux: v1.LinuxPodSandboxStats = {
      ...(cgroup ? this.usage(rec.id, cgroup, timestamp) : {}),
      // containerd: the sum of its containers' pids.current (pause is not counted).
      process: { timestamp, process_count: u64(containers.reduce((n, c) => n + (c.cgroup?.pids ?? 0), 0)) },
      containers: containers.map((c) => c.stats),
    };
    if (network) linux.network = networkUsage(network, timestamp);
    return {
      id: rec.id,
      stats: { attributes: { id: rec.id, metadata: m, labels: rec.config.labels, annotations: rec.config.annotations }, linux },
      labels: {
        container: '',
        id: parentDirs ? cgroupName(parentDirs, this.src.layout) : '',
        image: '',
        name: '',
        namespace: m?.namespace ?? '',
        pod: m?.name ?? '',
      },
      ...(cgroup ? { cgroup } : {}),
      ...(network ? { network } : {}),
      containers,
      timestamp,
    };
  }
}

/**
 * Cgroup files are read synchronously (cgroup-stats.ts), 20–100 µs each on a busy host: a list of
 * many containers yields to the event loop every CHUNK containers so that no gRPC call or scrape
 * waits behind the whole list.
 */
const CHUNK = 16;

async function inChunks<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += CHUNK) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    out.push(...(await Promise.all(items.slice(i, i + CHUNK).map(fn))));
  }
  return out;
}

/** Default interface eth0, else the first (containerd podSandboxStats). */
function networkUsage(ifs: InterfaceCounters[], timestamp: string): v1.NetworkUsage {
  const interfaces = ifs.map((i) => ({ name: i.name, rx_bytes: u64(i.rxBytes), rx_errors: u64(i.rxErrors), tx_bytes: u64(i.txBytes), tx_errors: u64(i.txErrors) }));
  const def = interfaces.find((i) => i.name === DEFAULT_INTERFACE) ?? interfaces[0];
  return { timestamp, ...(def ? { default_interface: def } : {}), interfaces };
}

function sumSamples(samples: CgroupSample[]): CgroupSample | undefined {
  if (samples.length === 0) return undefined;
  const out: CgroupSample = {};
  for (const s of samples) {
    if (s.cpu) {
      const c = (out.cpu ??= { usageNs: 0n, userNs: 0n, systemNs: 0n, periods: 0, throttledPeriods: 0, throttledNs: 0n });
      c.usageNs += s.cpu.usageNs;
      c.userNs += s.cpu.userNs;
      c.systemNs += s.cpu.systemNs;
      c.periods += s.cpu.periods;
      c.throttledPeriods += s.cpu.throttledPeriods;
      c.throttledNs += s.cpu.throttledNs;
    }
    if (s.memory) {
      const m = (out.memory ??= { usage: 0, workingSet: 0, rss: 0, cache: 0, inactiveFile: 0, pgfault: 0, pgmajfault: 0 });
      for (const k of ['usage', 'workingSet', 'rss', 'cache', 'inactiveFile', 'pgfault', 'pgmajfault'] as const) m[k] += s.memory[k];
    }
    if (s.pids !== undefined) out.pids = (out.pids ?? 0) + s.pids;
  }
  return out;
}
