// `skiff version`: the Version rpc, printed as crictl prints it (or as protojson with -o json/yaml).
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { jsonText, outputFormat, yamlText } from '../output.js';
import { toProtoJson } from '../protojson.js';

/** The CRI version this client speaks, sent in VersionRequest as crictl does. */
export const CRI_API_VERSION = 'v1';

export const versionCommand = defineCommand({
  name: 'version',
  summary: 'Display runtime version information',
  options: {
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml (default: text)' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 0) throw usageError('version takes no arguments');
    const format = values.output === undefined ? undefined : outputFormat(values.output, ['json', 'yaml'], 'json');
    const request = { version: CRI_API_VERSION };
    const r = await ctx.rpc('Version', request, () => ctx.client().version(request, ctx.callOptions()));
    if (format === 'json') return ctx.out(jsonText(toProtoJson('VersionResponse', r)));
    if (format === 'yaml') return ctx.out(yamlText(toProtoJson('VersionResponse', r)));
    // crictl uses Go's Println with two operands, hence the two spaces after each colon.
    ctx.out(
      `Version:  ${r.version}\n` +
        `RuntimeName:  ${r.runtime_name}\n` +
        `RuntimeVersion:  ${r.runtime_version}\n` +
        `RuntimeApiVersion:  ${r.runtime_api_version}\n`,
    );
  },
});
