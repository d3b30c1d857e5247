// Wiring: the pod service seen as metrics/'s sources. Container and pod numbers come from the stats
// sampler (pod/stats/), the same reads the CRI stats rpcs make; counts by state come from the
// in-memory records. Only running containers and ready pods are sampled: as with cAdvisor, a
// container without a cgroup has no series.
import type { PodService } from '../pod/service.js';
import type { CgroupSample } from '../pod/stats/cgroup-stats.js';
import type { SandboxSample } from '../pod/stats/sampler.js';
import type { CgroupUsage, ContainerSample, PodSample, Sample, SampleSource, StateSource } from '../metrics/source.js';

const NS_PER_S = 1e9;

function usage(s: CgroupSample | undefined): CgroupUsage {
  const out: CgroupUsage = {};
  if (s?.cpu) {
    out.cpuUsageSeconds = Number(s.cpu.usageNs) / NS_PER_S;
    out.cpuUserSeconds = Number(s.cpu.userNs) / NS_PER_S;
    out.cpuSystemSeconds = Number(s.cpu.systemNs) / NS_PER_S;
    out.cpuPeriods = s.cpu.periods;
    out.cpuThrottledPeriods = s.cpu.throttledPeriods;
    out.cpuThrottledSeconds = Number(s.cpu.throttledNs) / NS_PER_S;
  }
  if (s?.memory) {
    const m = s.memory;
    Object.assign(out, {
      memoryUsageBytes: m.usage,
      memoryWorkingSetBytes: m.workingSet,
      memoryRssBytes: m.rss,
      memoryCacheBytes: m.cache,
      pageFaults: m.pgfault,
      majorPageFaults: m.pgmajfault,
      ...(m.limit !== undefined ? { memoryLimitBytes: m.limit } : {}),
    });
  }
  if (s?.pids !== undefined) out.processes = s.pids;
  return out;
}

/** Ready pods and their running containers, as metrics/ wants them; `startedAt` is a container's CRI start time (ns). */
export function toSample(sandboxes: SandboxSample[], startedAt: (containerId: string) => string | undefined): Sample {
  const out: Sample = { containers: [], pods: [] };
  for (const sb of sandboxes) {
    const pod: PodSample = { labels: sb.labels, ...usage(sb.cgroup), interfaces: sb.network ?? [] };
    out.pods.push(pod);
    for (const c of sb.containers) {
      if (!c.running || !c.cgroup) continue;
      const started = startedAt(c.id);
      const sample: ContainerSample = {
        labels: c.labels,
        ...usage(c.cgroup),
        fsUsageBytes: c.writableLayer.bytes,
        fsDevice: c.stats.writable_layer?.fs_id?.mountpoint ?? '',
        ...(started ? { startTimeSeconds: Number(BigInt(started) / 1_000_000n) / 1000 } : {}),
      };
      out.containers.push(sample);
    }
  }
  return out;
}

/** `pods()` is undefined until the pod service is open (the registry is made before it). */
export function podSampleSource(pods: () => PodService | undefined): SampleSource {
  return {
    async sample() {
      const p = pods();
      return p ? toSample(await p.stats.listSandboxes(), (id) => p.ctx.containers.get(id)?.startedAt) : { containers: [], pods: [] };
    },
  };
}

export function podStateSource(pods: () => PodService | undefined): StateSource {
  return {
    sandboxStates: () => pods()?.sandboxes.list().map((s) => s.phase) ?? [],
    containerStates: () => pods()?.containers.list().map((c) => c.phase) ?? [],
  };
}
