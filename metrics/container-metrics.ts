// The cAdvisor-compatible container_* series (cAdvisor metrics/prometheus.go names, kubelet's
// /metrics/cadvisor labels: container, id, image, name, namespace, pod), so dashboards and alerts
// written for kubelet's endpoint work on skiff's. They are rendered from one cached sample
// (sample-cache.ts) at a time; a scrape never reads a cgroup itself.
import { Gauge, type Registry } from 'prom-client';
import { CADVISOR as C, CADVISOR_LABELS, type CadvisorMetric } from '../common/cadvisor.js';
import type { SampleCache } from './sample-cache.js';
import type { CadvisorLabels, CgroupUsage, ContainerSample, InterfaceSample, PodSample, Sample } from './source.js';

const BASE_LABELS = CADVISOR_LABELS;

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
    ...C.cpuUsage,
    type: 'counter',
    // cAdvisor without per-cpu stats (as kubelet runs it) labels the total cpu="total".
    values: (s) => [[s.cpuUsageSeconds, { cpu: 'total' }]],
  },
  { ...C.cpuUser, type: 'counter', values: (s) => [[s.cpuUserSeconds]] },
  { ...C.cpuSystem, type: 'counter', values: (s) => [[s.cpuSystemSeconds]] },
  { ...C.cfsPeriods, type: 'counter', values: (s) => [[s.cpuPeriods]] },
  { ...C.cfsThrottled, type: 'counter', values: (s) => [[s.cpuThrottledPeriods]] },
  { ...C.cfsThrottledSeconds, type: 'counter', values: (s) => [[s.cpuThrottledSeconds]] },
  { ...C.memUsage, type: 'gauge', values: (s) => [[s.memoryUsageBytes]] },
  { ...C.memWorkingSet, type: 'gauge', values: (s) => [[s.memoryWorkingSetBytes]] },
  { ...C.memRss, type: 'gauge', values: (s) => [[s.memoryRssBytes]] },
  { ...C.memCache, type: 'gauge', values: (s) => [[s.memoryCacheBytes]] },
  // cAdvisor reports 0 for no limit.
  { ...C.memLimit, type: 'gauge', values: (s) => [[s.memoryUsageBytes === undefined ? undefined : (s.memoryLimitBytes ?? 0)]] },
  {
    ...C.memFailures,
    type: 'counter',
    // The counters of memory.stat are hierarchical: both of cAdvisor's scopes read the same ones here.
    values: (s) =>
      (['container', 'hierarchy'] as const).flatMap((scope): Value[] => [
        [s.pageFaults, { failure_type: 'pgfault', scope }],
        [s.majorPageFaults, { failure_type: 'pgmajfault', scope }],
      ]),
  },
  { ...C.processes, type: 'gauge', values: (s) => [[s.processes]] },
];

const CONTAINER_FAMILIES: Family<ContainerSample>[] = [
  {
    ...C.fsUsage,
    type: 'gauge',
    values: (s) => [[s.fsUsageBytes, { device: s.fsDevice ?? '' }]],
  },
  { ...C.startTime, type: 'gauge', values: (s) => [[s.startTimeSeconds]] },
];

const NETWORK: [metric: CadvisorMetric, key: keyof InterfaceSample][] = [
  [C.rxBytes, 'rxBytes'],
  [C.rxPackets, 'rxPackets'],
  [C.rxDropped, 'rxDropped'],
  [C.rxErrors, 'rxErrors'],
  [C.txBytes, 'txBytes'],
  [C.txPackets, 'txPackets'],
  [C.txDropped, 'txDropped'],
  [C.txErrors, 'txErrors'],
];

const POD_FAMILIES: Family<PodSample>[] = NETWORK.map(([metric, key]) => ({
  ...metric,
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
