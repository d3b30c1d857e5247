// `skiff inspectp`: PodSandboxStatus (verbose unless -q) for each pod, as crictl prints it: a JSON
// document {"status": ..., <info keys>} per pod (an array for several) with createdAt as an
// RFC3339 time, or crictl's text form with -o table.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { outputFormat } from '../output.js';
import { toProtoJson, type Json } from '../protojson.js';
import { documentsText, goMap, mapLines, statusDocument } from './status.js';
import { goTime, rfc3339Nano } from './times.js';
import { SkiffError } from '../../../common/errors.js';
import type * as v1 from '../../gen/v1.js';

export const inspectpCommand = defineCommand({
  name: 'inspectp',
  summary: 'Display the status of one or more pods',
  args: 'POD-ID [POD-ID...]',
  options: {
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml|table (default json)' },
    quiet: { type: 'boolean', short: 'q', description: 'Do not show verbose information' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length === 0) throw usageError('inspectp needs at least one pod ID');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'json');
    const verbose = !values.quiet;
    const docs: Json[] = [];
    for (const id of positionals) {
      const request = { pod_sandbox_id: id, verbose };
      const r = await ctx.rpc('PodSandboxStatus', request, () => ctx.client().podSandboxStatus(request, ctx.callOptions()));
      if (!r.status) throw new SkiffError('SKIFF_NOT_FOUND', `pod sandbox "${id}" not found`);
      if (format === 'table') {
        ctx.out(podStatusText(r.status, verbose ? r.info : undefined));
        continue;
      }
      const status = toProtoJson('PodSandboxStatus', r.status);
      status.createdAt = rfc3339Nano(r.status.created_at);
      docs.push(statusDocument(status, r.info));
    }
    if (format !== 'table') ctx.out(documentsText(docs, format));
  },
});

function podStatusText(s: v1.PodSandboxStatus__Output, info: Record<string, string> | undefined): string {
  let text = `ID: ${s.id}\n`;
  const m = s.metadata;
  if (m) {
    if (m.name) text += `Name: ${m.name}\n`;
    if (m.uid) text += `UID: ${m.uid}\n`;
    if (m.namespace) text += `Namespace: ${m.namespace}\n`;
    text += `Attempt: ${m.attempt}\n`;
  }
  text += `Status: ${s.state}\n`;
  text += `Created: ${goTime(s.created_at)}\n`;
  if (s.network) {
    text += `IP Addresses: ${s.network.ip}\n`;
    for (const ip of s.network.additional_ips) text += `Additional IP: ${ip.ip}\n`;
  }
  text += mapLines('Labels', s.labels) + mapLines('Annotations', s.annotations);
  if (info) text += `Info: ${goMap(info)}\n`;
  return text;
}
