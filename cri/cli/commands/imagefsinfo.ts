// `skiff imagefsinfo`: ImageFsInfo as crictl prints it: {"status": response} in JSON (default),
// or per filesystem its timestamp, used bytes, inodes and mountpoint.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { humanSize, jsonText, outputFormat, sortKeys, yamlText } from '../output.js';
import { toProtoJson } from '../protojson.js';
import type * as v1 from '../../gen/v1.js';

export const imagefsinfoCommand = defineCommand({
  name: 'imagefsinfo',
  summary: 'Return image filesystem info',
  options: {
    output: { type: 'string', short: 'o', value: 'FORMAT', description: 'Output format, one of: json|yaml|table (default json)' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length > 0) throw usageError('imagefsinfo takes no arguments');
    const format = outputFormat(values.output, ['json', 'yaml', 'table'], 'json');
    const r = await ctx.rpc('ImageFsInfo', {}, () => ctx.client().imageFsInfo({}, ctx.callOptions()));
    if (format === 'table') {
      return ctx.out(filesystemTable('Container', r.container_filesystems) + filesystemTable('Image', r.image_filesystems));
    }
    const doc = sortKeys({ status: toProtoJson('ImageFsInfoResponse', r) });
    ctx.out(format === 'yaml' ? yamlText(doc) : jsonText(doc));
  },
});

function filesystemTable(label: string, filesystems: readonly v1.FilesystemUsage__Output[]): string {
  let text = `${label} Filesystem \n`;
  filesystems.forEach((fs, i) => {
    text += `TimeStamp[${i}]: ${fs.timestamp}\n`;
    text += `Disk[${i}]: ${humanSize(Number(fs.used_bytes?.value ?? 0), 4)}\n`;
    text += `Inodes[${i}]: ${fs.inodes_used?.value ?? 0}\n`;
    text += `Mountpoint[${i}]: ${fs.fs_id?.mountpoint ?? ''}\n`;
  });
  return text;
}
