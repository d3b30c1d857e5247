// `skiff inspecti`: ImageStatus (verbose unless -q) for each image, as crictl prints it: a JSON
// document {"status": Image, ...info} per image (an array for several), or a short table.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { humanSize, jsonText, outputFormat, sortKeys, yamlText } from '../output.js';
import { toProtoJson, type Json } from '../protojson.js';
import { infoEntries } from './info.js';
import { SkiffError } from '../../../common/errors.js';
import type * as v1 from '../../gen/v1.js';

export const inspectiCommand = defineCommand({
  name: 'inspecti',
  summary: 'Return the status of one or more images',
  args: 'IMAGE-ID [IMAGE-ID...]',
  options: {
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml|table (default json)' },
    quiet: { type: 'boolean', short: 'q', description: 'Do not show verbose information' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length === 0) throw usageError('inspecti needs at least one image');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'json');
    const verbose = !values.quiet;
    const docs: Json[] = [];
    for (const name of positionals) {
      const request = { image: { image: name }, verbose };
      const r = await ctx.rpc('ImageStatus', request, () => ctx.client().imageStatus(request, ctx.callOptions()));
      // ImageStatus answers a missing image with an empty response, not NOT_FOUND.
      if (!r.image) throw new SkiffError('SKIFF_IMAGE_NOT_FOUND', `no such image "${name}" present`);
      if (format === 'table') ctx.out(imageStatusTable(r.image, verbose ? r.info : undefined));
      else docs.push(sortKeys({ status: toProtoJson('Image', r.image), ...infoEntries(r.info) }));
    }
    if (format === 'table') return;
    const doc = docs.length === 1 ? docs[0] : docs;
    ctx.out(format === 'yaml' ? yamlText(doc) : jsonText(doc));
  },
});

function imageStatusTable(image: v1.Image__Output, info: Record<string, string> | undefined): string {
  let text = `ID: ${image.id}\n`;
  for (const tag of image.repo_tags) text += `Tag: ${tag}\n`;
  for (const digest of image.repo_digests) text += `Digest: ${digest}\n`;
  text += `Size: ${humanSize(Number(image.size))}\n`;
  if (info) {
    // Go's %v of a map: map[key:value ...] with sorted keys.
    const entries = Object.keys(info).sort().map((k) => `${k}:${info[k]}`);
    text += `Info: map[${entries.join(' ')}]\n`;
  }
  return text;
}
