// The samples as cAdvisor-named metrics, for ListMetricDescriptors/ListPodSandboxMetrics (kubelet's
// CRI metrics collector re-exports them as /metrics/cadvisor) and for skiff's own /metrics. Names,
// help and label keys follow cAdvisor's metrics/prometheus.go as kubelet labels them (container,
// id, image, name, namespace, pod), as CRI-O's internal/lib/stats/descriptors.go does. CRI values
// are uint64: seconds counters are whole seconds (CRI-O truncates the same way).
import type * as v1 from '../../cri/gen/v1.js';
import { CADVISOR as C, CADVISOR_LABELS } from '../../common/cadvisor.js';
import type { CgroupSample } from './cgroup-stats.js';
import type { InterfaceCounters } from './net-dev.js';
import type { ContainerSample, MetricLabels, SandboxSample } from './sampler.js';

export const BASE_LABEL_KEYS = CADVISOR_LABELS;

type Kind = 'COUNTER' | 'GAUGE';

interface Def {
  name: string;
  help: string;
  kind: Kind;
  /** Label keys after the base ones. */
  extra?: readonly string[];
}

const D = {
  cpuUsage: { ...C.cpuUsage, kind: 'COUNTER', extra: ['cpu'] },
  cpuUser: { ...C.cpuUser, kind: 'COUNTER' },
  cpuSystem: { ...C.cpuSystem, kind: 'COUNTER' },
  cfsPeriods: { ...C.cfsPeriods, kind: 'COUNTER' },
  cfsThrottled: { ...C.cfsThrottled, kind: 'COUNTER' },
  cfsThrottledSeconds: { ...C.cfsThrottledSeconds, kind: 'COUNTER' },
  memUsage: { ...C.memUsage, kind: 'GAUGE' },
  memWorkingSet: { ...C.memWorkingSet, kind: 'GAUGE' },
  memRss: { ...C.memRss, kind: 'GAUGE' },
  memCache: { ...C.memCache, kind: 'GAUGE' },
  memFailures: { ...C.memFailures, kind: 'COUNTER', extra: ['failure_type', 'scope'] },
  memLimit: { ...C.memLimit, kind: 'GAUGE' },
  processes: { ...C.processes, kind: 'GAUGE' },
  fsUsage: { ...C.fsUsage, kind: 'GAUGE' },
  fsInodes: { ...C.fsInodes, kind: 'GAUGE' },
  rxBytes: { ...C.rxBytes, kind: 'COUNTER', extra: ['interface'] },
  rxPackets: { ...C.rxPackets, kind: 'COUNTER', extra: ['interface'] },
  rxDropped: { ...C.rxDropped, kind: 'COUNTER', extra: ['interface'] },
  rxErrors: { ...C.rxErrors, kind: 'COUNTER', extra: ['interface'] },
  txBytes: { ...C.txBytes, kind: 'COUNTER', extra: ['interface'] },
  txPackets: { ...C.txPackets, kind: 'COUNTER', extra: ['interface'] },
  txDropped: { ...C.txDropped, kind: 'COUNTER', extra: ['interface'] },
  txErrors: { ...C.txErrors, kind: 'COUNTER', extra: ['interface'] },
} as const satisfies Record<string, Def>;

/** ListMetricDescriptors: every metric ListPodSandboxMetrics may send. */
export function metricDescriptors(): v1.MetricDescriptor[] {
  return Object.values(D).map((d: Def) => ({ name: d.name, help: d.help, label_keys: [...BASE_LABEL_KEYS, ...(d.extra ?? [])] }));
}

const NS_PER_S = 1_000_000_000n;

/** One sample in the shape the metrics collector builds on: name, kind, label values, value. */
export interface MetricPoint {
  def: Def;
  labels: string[];
  value: number | bigint;
}

function base(l: MetricLabels): string[] {
  return BASE_LABEL_KEYS.map((k) => l[k]);
}

/** Cgroup-level points (cpu, memory, processes) of a container or of the pod's cgroup. */
export function cgroupPoints(l: MetricLabels, s: CgroupSample): MetricPoint[] {
  const b = base(l);
  const out: MetricPoint[] = [];
  if (s.cpu) {
    out.push(
      { def: D.cpuUsage, labels: [...b, 'total'], value: s.cpu.usageNs / NS_PER_S },
      { def: D.cpuUser, labels: b, value: s.cpu.userNs / NS_PER_S },
      { def: D.cpuSystem, labels: b, value: s.cpu.systemNs / NS_PER_S },
      { def: D.cfsPeriods, labels: b, value: s.cpu.periods },
      { def: D.cfsThrottled, labels: b, value: s.cpu.throttledPeriods },
      { def: D.cfsThrottledSeconds, labels: b, value: s.cpu.throttledNs / NS_PER_S },
    );
  }
  if (s.memory) {
    const m = s.memory;
    out.push(
      { def: D.memUsage, labels: b, value: m.usage },
      { def: D.memWorkingSet, labels: b, value: m.workingSet },
      { def: D.memRss, labels: b, value: m.rss },
      { def: D.memCache, labels: b, value: m.cache },
      { def: D.memLimit, labels: b, value: m.limit ?? 0 },
    );
    for (const [type, v] of [['pgfault', m.pgfault], ['pgmajfault', m.pgmajfault]] as const) {
      out.push({ def: D.memFailures, labels: [...b, type, 'container'], value: v }, { def: D.memFailures, labels: [...b, type, 'hierarchy'], value: v });
    }
  }
  if (s.pids !== undefined) out.push({ def: D.processes, labels: b, value: s.pids });
  return out;
}

export function containerPoints(c: ContainerSample): MetricPoint[] {
  const b = base(c.labels);
  return [
    ...(c.cgroup ? cgroupPoints(c.labels, c.cgroup) : []),
    { def: D.fsUsage, labels: b, value: c.writableLayer.bytes },
    { def: D.fsInodes, labels: b, value: c.writableLayer.inodes },
  ];
}

export function networkPoints(l: MetricLabels, ifs: InterfaceCounters[]): MetricPoint[] {
  const b = base(l);
  return ifs.flatMap((i) => {
    const lv = [...b, i.name];
    return [
      { def: D.rxBytes, labels: lv, value: i.rxBytes },
      { def: D.rxPackets, labels: lv, value: i.rxPackets },
      { def: D.rxDropped, labels: lv, value: i.rxDropped },
      { def: D.rxErrors, labels: lv, value: i.rxErrors },
      { def: D.txBytes, labels: lv, value: i.txBytes },
      { def: D.txPackets, labels: lv, value: i.txPackets },
      { def: D.txDropped, labels: lv, value: i.txDropped },
      { def: D.txErrors, labels: lv, value: i.txErrors },
    ];
  });
}

function toMetric(p: MetricPoint, timestamp: string): v1.Metric {
  return { name: p.def.name, timestamp, metric_type: p.def.kind, label_values: p.labels, value: { value: String(p.value) } };
}

/**
 * ListPodSandboxMetrics entry of one pod: the pod cgroup's and the network's series under the pod
 * (container ""), each container's under it, as cAdvisor reports the pod cgroup and its children.
 */
export function podSandboxMetrics(s: SandboxSample): v1.PodSandboxMetrics {
  const pod = [...(s.cgroup ? cgroupPoints(s.labels, s.cgroup) : []), ...(s.network ? networkPoints(s.labels, s.network) : [])];
  return {
    pod_sandbox_id: s.id,
    metrics: pod.map((p) => toMetric(p, s.timestamp)),
    container_metrics: s.containers.map((c) => ({ container_id: c.id, metrics: containerPoints(c).map((p) => toMetric(p, c.timestamp)) })),
  };
}
