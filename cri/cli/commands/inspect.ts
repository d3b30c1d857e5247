// `skiff inspect`: ContainerStatus (verbose unless -q) for each container, as crictl prints it: a
// JSON document {"status": ..., <info keys>} per container (an array for several) with createdAt,
// startedAt and finishedAt as RFC3339 times — Go's zero time for what has not happened — or
// crictl's text form with -o table.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { outputFormat } from '../output.js';
import { toProtoJson, type Json, type JsonObject } from '../protojson.js';
import { documentsText, goMap, mapLines, statusDocument } from './status.js';
import { ago, rfc3339Nano, ZERO_TIME } from './times.js';
import { SkiffError } from '../../../common/errors.js';
import type * as v1 from '../../gen/v1.js';

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'Display the status of one or more containers',
  args: 'CONTAINER-ID [CONTAINER-ID...]',
  options: {
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml|table (default json)' },
    quiet: { type: 'boolean', short: 'q', description: 'Do not show verbose information' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length === 0) throw usageError('inspect needs at least one container ID');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'json');
    const verbose = !values.quiet;
    const docs: Json[] = [];
    for (const id of positionals) {
      const request = { container_id: id, verbose };
      const r = await ctx.rpc('ContainerStatus', request, () => ctx.client().containerStatus(request, ctx.callOptions()));
      if (!r.status) throw new SkiffError('SKIFF_NOT_FOUND', `container "${id}" not found`);
      if (format === 'table') ctx.out(containerStatusText(r.status, verbose ? r.info : undefined));
      else docs.push(statusDocument(containerStatusJson(r.status), r.info));
    }
    if (format !== 'table') ctx.out(documentsText(docs, format));
  },
});

function containerStatusJson(s: v1.ContainerStatus__Output): JsonObject {
  const json = toProtoJson('ContainerStatus', s);
  json.createdAt = rfc3339Nano(s.created_at);
  // Started once it has left CREATED; finished once EXITED (or UNKNOWN with a finish time).
  json.startedAt = s.state !== 'CONTAINER_CREATED' ? rfc3339Nano(s.started_at) : ZERO_TIME;
  const finished = s.state === 'CONTAINER_EXITED' || (s.state === 'CONTAINER_UNKNOWN' && BigInt(s.finished_at) > 0n);
  json.finishedAt = finished ? rfc3339Nano(s.finished_at) : ZERO_TIME;
  return json;
}

function containerStatusText(s: v1.ContainerStatus__Output, info: Record<string, string> | undefined, nowMs = Date.now()): string {
  let text = `ID: ${s.id}\n`;
  if (s.metadata?.name) text += `Name: ${s.metadata.name}\n`;
  if (s.metadata?.attempt) text += `Attempt: ${s.metadata.attempt}\n`;
  text += `State: ${s.state}\n`;
  text += `Created: ${ago(s.created_at, nowMs)}\n`;
  if (s.state !== 'CONTAINER_CREATED') text += `Started: ${ago(s.started_at, nowMs)}\n`;
  if (s.state === 'CONTAINER_EXITED') {
    if (BigInt(s.finished_at) > 0n) text += `Finished: ${ago(s.finished_at, nowMs)}\n`;
    text += `Exit Code: ${s.exit_code}\n`;
  }
  text += mapLines('Labels', s.labels) + mapLines('Annotations', s.annotations);
  if (info) text += `Info: ${goMap(info)}\n`;
  return text;
}
