// `skiff images`: ListImages, sorted and printed as crictl prints it — a table of repository, tag,
// short id and size, ids only with -q, a field list with -v, or the whole response with -o json|yaml.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { humanSize, jsonText, outputFormat, renderTable, truncateId, yamlText } from '../output.js';
import { toProtoJson } from '../protojson.js';
import type * as v1 from '../../gen/v1.js';

export const imagesCommand = defineCommand({
  name: 'images',
  aliases: ['image', 'img'],
  summary: 'List images',
  args: '[REPOSITORY[:TAG]]',
  options: {
    quiet: { type: 'boolean', short: 'q', description: 'Only show image IDs' },
    verbose: { type: 'boolean', short: 'v', description: 'Show verbose info for images' },
    digests: { type: 'boolean', description: 'Show digests' },
    'no-trunc': { type: 'boolean', description: 'Show output without truncating the ID' },
    pinned: { type: 'boolean', description: 'Show whether the image is pinned or not' },
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml|table' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw usageError('images takes at most one image');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'table');
    const request: v1.ListImagesRequest = positionals[0] ? { filter: { image: { image: positionals[0] } } } : {};
    const r = await ctx.rpc('ListImages', request, () => ctx.client().listImages(request, ctx.callOptions()));
    const images = [...r.images].sort(compareImages);
    if (format === 'json') return ctx.out(jsonText(toProtoJson('ListImagesResponse', { images })));
    if (format === 'yaml') return ctx.out(yamlText(toProtoJson('ListImagesResponse', { images })));
    if (values.quiet) return ctx.out(images.map((image) => `${image.id}\n`).join(''));
    if (values.verbose) return ctx.out(images.map(verboseImage).join(''));
    ctx.out(imageTable(images, { digests: !!values.digests, noTrunc: !!values['no-trunc'], pinned: !!values.pinned }));
  },
});

/** crictl's order: by first tag, else by first digest, else by id. */
export function compareImages(a: v1.Image__Output, b: v1.Image__Output): number {
  const cmp = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  if (a.repo_tags.length > 0 && b.repo_tags.length > 0) return cmp(a.repo_tags[0], b.repo_tags[0]);
  if (a.repo_digests.length > 0 && b.repo_digests.length > 0) return cmp(a.repo_digests[0], b.repo_digests[0]);
  return cmp(a.id, b.id);
}

export interface ImageTableOptions {
  digests: boolean;
  noTrunc: boolean;
  pinned: boolean;
}

/** One row per tag; an image pulled only by digest shows its repository and tag `<none>`. */
export function imageTable(images: readonly v1.Image__Output[], o: ImageTableOptions): string {
  const header = ['IMAGE', 'TAG', ...(o.digests ? ['DIGEST'] : []), 'IMAGE ID', 'SIZE', ...(o.pinned ? ['PINNED'] : [])];
  const rows = [header];
  for (const image of images) {
    const [name, digest] = repoDigest(image.repo_digests);
    const id = o.noTrunc ? image.id : truncateId(image.id);
    const size = humanSize(Number(image.size));
    for (const [repo, tag] of repoTagPairs(image.repo_tags, name)) {
      rows.push([
        repo,
        tag,
        ...(o.digests ? [o.noTrunc ? digest : truncateId(digest)] : []),
        id,
        size,
        ...(o.pinned ? [String(image.pinned)] : []),
      ]);
    }
  }
  return renderTable(rows);
}

const NONE = '<none>';

/** Repository and digest of the first `repo@digest`. */
function repoDigest(repoDigests: readonly string[]): [string, string] {
  if (repoDigests.length === 0) return [NONE, NONE];
  const parts = repoDigests[0].split('@');
  return parts.length === 2 ? [parts[0], parts[1]] : ['errorName', 'errorRepoDigest'];
}

function repoTagPairs(repoTags: readonly string[], imageName: string): [string, string][] {
  if (repoTags.length === 0) return [[imageName, NONE]];
  return repoTags.map((repoTag): [string, string] => {
    const colon = repoTag.lastIndexOf(':');
    if (colon === -1) return ['errorRepoTag', 'errorRepoTag'];
    const repo = repoTag.slice(0, colon);
    return [repo === NONE ? imageName : repo, repoTag.slice(colon + 1)];
  });
}

function verboseImage(image: v1.Image__Output): string {
  let text = `ID: ${image.id}\n`;
  for (const tag of image.repo_tags) text += `RepoTags: ${tag}\n`;
  for (const digest of image.repo_digests) text += `RepoDigests: ${digest}\n`;
  if (image.size !== '0') text += `Size: ${image.size}\n`;
  if (image.uid) text += `Uid: value:${image.uid.value}\n`;
  if (image.username) text += `Username: ${image.username}\n`;
  if (image.pinned) text += `Pinned: ${image.pinned}\n`;
  return `${text}\n`;
}
