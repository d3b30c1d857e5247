// `skiff stats`: ListContainerStats as crictl prints it. -o json|yaml print one response; the table
// takes two samples --seconds apart and shows CPU % from the difference of usage_core_nano_seconds
// over the difference of the timestamps, the working set, and the writable layer's bytes and
// inodes, sorted by id. Without -a, containers with no cpu and no memory (not running) are left
// out, as are containers that appeared between the samples. -w repeats until interrupted (and only
// then clears the screen, where crictl clears it after every table).
import { defineCommand, type CommandContext } from '../command.js';
import { usageError } from '../args.js';
import { humanSize, jsonText, outputFormat, renderTable, truncateId, yamlText } from '../output.js';
import { toProtoJson } from '../protojson.js';
import { parseLabels } from './filters.js';
import type * as v1 from '../../gen/v1.js';

export const statsCommand = defineCommand({
  name: 'stats',
  summary: 'List container(s) resource usage statistics',
  args: '[ID]',
  options: {
    all: { type: 'boolean', short: 'a', description: 'Show all containers (default shows just running)' },
    id: { type: 'string', value: 'ID', description: 'Filter by container id' },
    pod: { type: 'string', short: 'p', value: 'POD-ID', description: 'Filter by pod id' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Filter by key=value label (repeatable)' },
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, One of: json|yaml|table' },
    seconds: { type: 'string', short: 's', value: 'N', description: 'Sample duration for CPU usage in seconds (default 1)' },
    watch: { type: 'boolean', short: 'w', description: 'Watch pod resources' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw usageError('stats takes at most one container ID');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'table');
    const seconds = parseSeconds(values.seconds);
    const filter: v1.ContainerStatsFilter = {};
    const id = values.id || positionals[0];
    if (id) filter.id = id;
    if (values.pod) filter.pod_sandbox_id = values.pod;
    const labels = parseLabels(values.label);
    if (Object.keys(labels).length > 0) filter.label_selector = labels;
    const request: v1.ListContainerStatsRequest = { filter };
    const list = async (): Promise<v1.ContainerStats__Output[]> => {
      const r = await ctx.rpc('ListContainerStats', request, () => ctx.client().listContainerStats(request, ctx.callOptions()));
      return [...r.stats].sort((a, b) => (a.attributes?.id ?? '').localeCompare(b.attributes?.id ?? ''));
    };
    await repeat(ctx, !!values.watch, async () => {
      const first = await list();
      if (format !== 'table') {
        const doc = toProtoJson('ListContainerStatsResponse', { stats: first });
        return ctx.out(format === 'json' ? jsonText(doc) : yamlText(doc));
      }
      if (!(await pause(ctx, seconds))) return;
      return ctx.out(statsTable(first, await list(), !!values.all));
    });
  },
});

/** -s: whole seconds, 1 by default. */
export function parseSeconds(text: string | undefined): number {
  if (text === undefined) return 1;
  if (!/^\d+$/.test(text)) throw usageError(`invalid value "${text}" for flag -seconds: must be a non-negative integer`);
  return Number(text);
}

/** Runs `once`, and with --watch again and again until interrupted, clearing the screen between. */
export async function repeat(ctx: CommandContext, watch: boolean, once: () => Promise<void>): Promise<void> {
  if (!watch) return once();
  const stop = ctx.interrupt();
  while (!stop.aborted) {
    ctx.out('\x1b[2J\x1b[H');
    await once();
    await pause(ctx, 0.5);
  }
}

/** Sleeps `seconds`; false when interrupted first. */
export function pause(ctx: CommandContext, seconds: number): Promise<boolean> {
  const stop = ctx.interrupt();
  if (stop.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      stop.removeEventListener('abort', done);
      resolve(true);
    }, seconds * 1000);
    stop.addEventListener('abort', done, { once: true });
  });
}

/** CPU % between two samples of a cumulative counter (crictl: "cpu stat is not updated during sample"). */
export function cpuPercent(now: v1.CpuUsage__Output | null, before: v1.CpuUsage__Output | null): number {
  const usage = BigInt(now?.usage_core_nano_seconds?.value ?? '0');
  if (usage === 0n) return 0;
  const duration = BigInt(now?.timestamp ?? '0') - BigInt(before?.timestamp ?? '0');
  if (duration === 0n) throw new Error('cpu stat is not updated during sample');
  return (Number(usage - BigInt(before?.usage_core_nano_seconds?.value ?? '0')) / Number(duration)) * 100;
}

const value = (v: v1.UInt64Value__Output | null | undefined): number => Number(v?.value ?? '0');

export function statsTable(before: readonly v1.ContainerStats__Output[], now: readonly v1.ContainerStats__Output[], all: boolean): string {
  const old = new Map(before.map((s) => [s.attributes?.id ?? '', s]));
  const rows = [['CONTAINER', 'NAME', 'CPU %', 'MEM', 'DISK', 'INODES']];
  for (const s of now) {
    const id = s.attributes?.id ?? '';
    const cpu = value(s.cpu?.usage_core_nano_seconds);
    const mem = value(s.memory?.working_set_bytes);
    if (!all && cpu === 0 && mem === 0) continue;
    const prev = old.get(id);
    if (!prev) continue;
    rows.push([
      truncateId(id, ''),
      s.attributes?.metadata?.name ?? '',
      cpuPercent(s.cpu, prev.cpu).toFixed(2),
      humanSize(mem, 4),
      humanSize(value(s.writable_layer?.used_bytes), 4),
      String(value(s.writable_layer?.inodes_used)),
    ]);
  }
  return renderTable(rows);
}
