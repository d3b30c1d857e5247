// `skiff info`: the Status rpc (verbose unless -q) as one JSON document, like `crictl info`: the
// runtime conditions under "status", then runtime handlers, features, and every key of the
// verbose info map at the top level, parsed as JSON when it holds an object.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { jsonText, outputFormat, sortKeys, yamlText } from '../output.js';
import { toProtoJson, type Json, type JsonObject } from '../protojson.js';

export const infoCommand = defineCommand({
  name: 'info',
  summary: 'Display information of the container runtime',
  options: {
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml (default json)' },
    quiet: { type: 'boolean', short: 'q', description: 'Do not show verbose information' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 0) throw usageError('info takes no arguments');
    const format = outputFormat(values.output, ['json', 'yaml'], 'json');
    const request = { verbose: !values.quiet };
    const r = await ctx.rpc('Status', request, () => ctx.client().status(request, ctx.callOptions()));
    const doc: JsonObject = {};
    if (r.status) doc.status = toProtoJson('RuntimeStatus', r.status);
    // crictl marshals these two with encoding/json (snake_case); skiff keeps protojson names
    // everywhere so that one document has one naming style.
    if (r.runtime_handlers.length > 0) doc.runtimeHandlers = r.runtime_handlers.map((h) => toProtoJson('RuntimeHandler', h));
    if (r.features) doc.features = toProtoJson('RuntimeFeatures', r.features);
    Object.assign(doc, infoEntries(r.info));
    const sorted = sortKeys(doc);
    ctx.out(format === 'yaml' ? yamlText(sorted) : jsonText(sorted));
  },
});

/**
 * The verbose `info` map of Status/ImageStatus: values that hold a JSON object are embedded as
 * objects, anything else is kept as a string without surrounding quotes (crictl's rule). Unlike
 * crictl, a value that looks like an object but does not parse stays a string instead of failing
 * the whole command.
 */
export function infoEntries(info: Record<string, string>): JsonObject {
  const out: JsonObject = {};
  for (const key of Object.keys(info).sort()) {
    const value = info[key];
    out[key] = (value.startsWith('{') && parseObject(value)) || value.replace(/^"+|"+$/g, '');
  }
  return out;
}

function parseObject(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}
