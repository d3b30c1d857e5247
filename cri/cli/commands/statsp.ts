// `skiff statsp`: ListPodSandboxStats as crictl prints it — -o json|yaml print one response; the
// table takes two samples --seconds apart and shows each pod's name, id, CPU % and working set,
// sorted by id, leaving out pods without cpu and memory figures and pods new in the second sample.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { humanSize, jsonText, outputFormat, renderTable, truncateId, yamlText } from '../output.js';
import { toProtoJson } from '../protojson.js';
import { parseLabels } from './filters.js';
import { cpuPercent, parseSeconds, pause, repeat } from './stats.js';
import type * as v1 from '../../gen/v1.js';

export const statspCommand = defineCommand({
  name: 'statsp',
  summary: "List pod statistics. Stats represent a structured API that will fulfill the Kubelet's /stats/summary endpoint.",
  args: '[ID]',
  options: {
    id: { type: 'string', value: 'ID', description: 'Filter by pod id' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Filter by key=value label (repeatable)' },
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, One of: json|yaml|table' },
    seconds: { type: 'string', short: 's', value: 'N', description: 'Sample duration for CPU usage in seconds (default 1)' },
    watch: { type: 'boolean', short: 'w', description: 'Watch pod resources' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw usageError('statsp takes at most one pod ID');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'table');
    const seconds = parseSeconds(values.seconds);
    const filter: v1.PodSandboxStatsFilter = {};
    const id = values.id || positionals[0];
    if (id) filter.id = id;
    const labels = parseLabels(values.label);
    if (Object.keys(labels).length > 0) filter.label_selector = labels;
    const request: v1.ListPodSandboxStatsRequest = { filter };
    const list = async (): Promise<v1.PodSandboxStats__Output[]> => {
      const r = await ctx.rpc('ListPodSandboxStats', request, () => ctx.client().listPodSandboxStats(request, ctx.callOptions()));
      return [...r.stats].sort((a, b) => (a.attributes?.id ?? '').localeCompare(b.attributes?.id ?? ''));
    };
    await repeat(ctx, !!values.watch, async () => {
      const first = await list();
      if (format !== 'table') {
        const doc = toProtoJson('ListPodSandboxStatsResponse', { stats: first });
        return ctx.out(format === 'json' ? jsonText(doc) : yamlText(doc));
      }
      if (!(await pause(ctx, seconds))) return;
      return ctx.out(podStatsTable(first, await list()));
    });
  },
});

export function podStatsTable(before: readonly v1.PodSandboxStats__Output[], now: readonly v1.PodSandboxStats__Output[]): string {
  const old = new Map(before.map((s) => [s.attributes?.id ?? '', s]));
  const rows = [['POD', 'POD ID', 'CPU %', 'MEM']];
  for (const s of now) {
    const id = s.attributes?.id ?? '';
    const cpu = Number(s.linux?.cpu?.usage_core_nano_seconds?.value ?? '0');
    const mem = Number(s.linux?.memory?.working_set_bytes?.value ?? '0');
    if (cpu === 0 && mem === 0) continue;
    const prev = old.get(id);
    if (!prev) continue;
    rows.push([s.attributes?.metadata?.name ?? '', truncateId(id, ''), cpuPercent(s.linux?.cpu ?? null, prev.linux?.cpu ?? null).toFixed(2), humanSize(mem, 4)]);
  }
  return renderTable(rows);
}
