// What the metrics collectors read: plain numbers about each running container and pod, with the
// names Prometheus labels them by. metrics/ knows nothing of pod/, images/ or CRI messages; the
// daemon adapts its pod service (and the stats sampler) to these interfaces.

/** cAdvisor's label set, as kubelet's /metrics/cadvisor fills it. */
export interface CadvisorLabels {
  /** The cgroup path (cAdvisor's container name), e.g. /kubepods/burstable/pod<uid>/<container id>. */
  id: string;
  /** The container's name in its pod (metadata.name); "" for pod-level series. */
  container: string;
  pod: string;
  namespace: string;
  /** The image as the container config named it; "" for pod-level series. */
  image: string;
  /** The runtime's name for it: the container id; "" for pod-level series. */
  name: string;
}

/** What a cgroup's counters say; an absent number is one the sampler could not read: no series for it. */
export interface CgroupUsage {
  cpuUsageSeconds?: number;
  cpuUserSeconds?: number;
  cpuSystemSeconds?: number;
  /** CFS bandwidth: elapsed enforcement periods, those throttled, and the time throttled. */
  cpuPeriods?: number;
  cpuThrottledPeriods?: number;
  cpuThrottledSeconds?: number;
  memoryUsageBytes?: number;
  memoryWorkingSetBytes?: number;
  memoryRssBytes?: number;
  memoryCacheBytes?: number;
  /** Absent when unlimited. */
  memoryLimitBytes?: number;
  pageFaults?: number;
  majorPageFaults?: number;
  processes?: number;
}

/** One running container. */
export interface ContainerSample extends CgroupUsage {
  labels: CadvisorLabels;
  /** Seconds since the epoch the container started. */
  startTimeSeconds?: number;
  /** The writable layer: bytes used, and the filesystem (mountpoint) it lives on. */
  fsUsageBytes?: number;
  fsDevice?: string;
}

export interface InterfaceSample {
  name: string;
  rxBytes: number;
  rxPackets?: number;
  rxErrors?: number;
  rxDropped?: number;
  txBytes: number;
  txPackets?: number;
  txErrors?: number;
  txDropped?: number;
}

/**
 * One pod: its own cgroup (the cgroup parent kubelet gave it, holding its containers' usage) as
 * cAdvisor reports a pod cgroup, with container "" — and its network, which lives in the pod's
 * namespace and so is reported once, for the pod.
 */
export interface PodSample extends CgroupUsage {
  labels: CadvisorLabels;
  interfaces: InterfaceSample[];
}

export interface Sample {
  containers: ContainerSample[];
  pods: PodSample[];
}

/** Reads a fresh sample of every running container and pod. May be slow; callers cache. */
export interface SampleSource {
  sample(signal: AbortSignal): Promise<Sample>;
}

/** Counts by state, read at scrape time from the runtime's in-memory records (cheap, synchronous). */
export interface StateSource {
  /** Pod sandboxes by state ("ready", "notready"). */
  sandboxStates(): Iterable<string>;
  /** Containers by state ("created", "running", "exited", "unknown"). */
  containerStates(): Iterable<string>;
}
