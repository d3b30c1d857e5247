// The cAdvisor-compatible container_* series (cAdvisor metrics/prometheus.go names, kubelet's
// /metrics/cadvisor labels: container, id, image, name, namespace, pod), so dashboards and alerts
// written for kubelet's endpoint work on skiff's. They are rendered from one cached sample
// (sample-cache.ts) at a time; a scrape never reads a cgroup itself.
import { Gauge, type Registry } from 'prom-client';
import type { SampleCache } from './sample-cache.js';
import type { CadvisorLabels, CgroupUsage, ContainerSample, InterfaceSample, PodSample, Sample } from './source.js';

const BASE_LABELS = ['container', 'id', 'image', 'name', 'namespace', 'pod'] as const;

type Extra = Record<string, string>;
type Value = [value: number | undefined, extra?: Extra];

interface Family<T> {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** Each series' value and its labels past the base ones (absent value: no series). */
  values(s: T): Value[];
}

/** Families of a cgroup's counters: each container's, and each pod's own cgroup (container ""). */
const CGROUP_FAMILIES: Family<CgroupUsage>[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed in seconds.',
    type: 'counter',
    // cAdvisor without per-cpu stats (as kubelet runs it) labels the total cpu="total".
    values: (s) => [[s.cpuUsageSeconds, { cpu: 'total' }]],
  },
  { name: 'container_cpu_user_seconds_total', help: 'Cumulative user cpu time consumed in seconds.', type: 'counter', values: (s) => [[s.cpuUserSeconds]] },
  { name: 'container_cpu_system_seconds_total', help: 'Cumulative system cpu time consumed in seconds.', type: 'counter', values: (s) => [[s.cpuSystemSeconds]] },
  { name: 'container_cpu_cfs_periods_total', help: 'Number of elapsed enforcement period intervals.', type: 'counter', values: (s) => [[s.cpuPeriods]] },
  { name: 'container_cpu_cfs_throttled_periods_total', help: 'Number of throttled period intervals.', type: 'counter', values: (s) => [[s.cpuThrottledPeriods]] },
  { name: 'container_cpu_cfs_throttled_seconds_total', help: 'Total time duration the container has been throttled.', type: 'counter', values: (s) => [[s.cpuThrottledSeconds]] },
  { name: 'container_memory_usage_bytes', help: 'Current memory usage in bytes, including all memory regardless of when it was accessed', type: 'gauge', values: (s) => [[s.memoryUsageBytes]] },
  { name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.', type: 'gauge', values: (s) => [[s.memoryWorkingSetBytes]] },
  { name: 'container_memory_rss', help: 'Size of RSS in bytes.', type: 'gauge', values: (s) => [[s.memoryRssBytes]] },
  { name: 'container_memory_cache', help: 'Number of bytes of page cache memory.', type: 'gauge', values: (s) => [[s.memoryCacheBytes]] },
  // cAdvisor reports 0 for no limit.
  { name: 'container_spec_memory_limit_bytes', help: 'Memory limit for the container.', type: 'gauge', values: (s) => [[s.memoryUsageBytes === undefined ? undefined : (s.memoryLimitBytes ?? 0)]] },
  {
    name: 'container_memory_failures_total',
    help: 'Cumulative count of memory allocation failures.',
    type: 'counter',
    // The counters of memory.stat are hierarchical: both of cAdvisor's scopes read the same ones here.
    values: (s) =>
      (['container', 'hierarchy'] as const).flatMap((scope): Value[] => [
        [s.pageFaults, { failure_type: 'pgfault', scope }],
        [s.majorPageFaults, { failure_type: 'pgmajfault', scope }],
      ]),
  },
  { name: 'container_processes', help: 'Number of processes running inside the container.', type: 'gauge', values: (s) => [[s.processes]] },
];

const CONTAINER_FAMILIES: Family<ContainerSample>[] = [
  {
    name: 'container_fs_usage_bytes',
    help: 'Number of bytes that are consumed by the container on this filesystem.',
    type: 'gauge',
    values: (s) => [[s.fsUsageBytes, { device: s.fsDevice ?? '' }]],
  },
  { name: 'container_start_time_seconds', help: 'Start time of the container since unix epoch in seconds.', type: 'gauge', values: (s) => [[s.startTimeSeconds]] },
];

const NETWORK: [name: string, help: string, key: keyof InterfaceSample][] = [
  ['container_network_receive_bytes_total', 'Cumulative count of bytes received', 'rxBytes'],
  ['container_network_receive_packets_total', 'Cumulative count of packets received', 'rxPackets'],
  ['container_network_receive_packets_dropped_total', 'Cumulative count of packets dropped while receiving', 'rxDropped'],
  ['container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving', 'rxErrors'],
  ['container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted', 'txBytes'],
  ['container_network_transmit_packets_total', 'Cumulative count of packets transmitted', 'txPackets'],
  ['container_network_transmit_packets_dropped_total', 'Cumulative count of packets dropped while transmitting', 'txDropped'],
  ['container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting', 'txErrors'],
];

const POD_FAMILIES: Family<PodSample>[] = NETWORK.map(([name, help, key]) => ({
  name,
  help,
  type: 'counter',
  values: (p) => p.interfaces.map((i): Value => [i[key] as number | undefined, { interface: i.name }]),
}));

/** The families' names, for tests and docs. */
export const CONTAINER_METRIC_NAMES = [...CGROUP_FAMILIES, ...CONTAINER_FAMILIES, ...POD_FAMILIES].map((f) => f.name);

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `{container="…",id="…",…}` of one series: the base labels, then the family's own. */
function labelText(labels: CadvisorLabels, extra: Extra | undefined): string {
  let out = '';
  for (const k of BASE_LABELS) out += `${out ? ',' : ''}${k}="${escapeLabel(labels[k])}"`;
  for (const [k, v] of Object.entries(extra ?? {})) out += `,${k}="${escapeLabel(v)}"`;
  return `{${out}}`;
}

function familyText<T>(f: Family<T>, items: (T & { labels: CadvisorLabels })[], lines: string[]): void {
  lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
  for (const item of items) {
    for (const [value, extra] of f.values(item)) {
      if (value === undefined || !Number.isFinite(value)) continue;
      lines.push(`${f.name}${labelText(item.labels, extra)} ${f.type === 'counter' ? Math.max(0, value) : value}`);
    }
  }
}

/** The container_* families of one sample, in the Prometheus text format (0.0.4). */
export function renderContainerMetrics(sample: Sample): string {
  const lines: string[] = [];
  const cgroups: (ContainerSample | PodSample)[] = [...sample.pods, ...sample.containers];
  for (const f of CGROUP_FAMILIES) familyText(f, cgroups, lines);
  for (const f of CONTAINER_FAMILIES) familyText(f, sample.containers, lines);
  for (const f of POD_FAMILIES) familyText(f, sample.pods, lines);
  return lines.join('\n') + '\n';
}

/**
 * The container_* part of /metrics. It is text made once per sample, not prom-client series: a
 * hundred containers make some 2,500 series, and a scrape between two samples (the sample cache
 * keeps one a second) then costs only the string, not 2,500 label hashes and escapes.
 */
export class ContainerMetrics {
  private rendered: { generation: number; text: string } | undefined;

  constructor(
    private readonly cache: SampleCache,
    registry: Registry,
  ) {
    new Gauge({
      name: 'skiff_container_sample_duration_seconds',
      help: "How long the last read of every container's and pod's counters took (made at most once a second, shared by scrapes).",
      registers: [registry],
      async collect() {
        await cache.get();
        this.set(cache.lastReadSeconds);
      },
    });
    new Gauge({
      name: 'container_scrape_error',
      help: '1 if there was an error while getting container metrics, 0 otherwise',
      registers: [registry],
      async collect() {
        this.set((await cache.get()).ok ? 0 : 1);
      },
    });
  }

  async text(): Promise<string> {
    const c = await this.cache.get();
    if (this.rendered?.generation !== c.generation) this.rendered = { generation: c.generation, text: renderContainerMetrics(c.sample) };
    return this.rendered.text;
  }
}
