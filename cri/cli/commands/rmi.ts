// `skiff rmi`: RemoveImage for each named image (or all with -a), printing what happened. Removing
// one of several tags only untags the image, so the image is looked up again afterwards: still
// there → `Untagged: <name given>`; gone → `Deleted:` each of its tags, as crictl prints them (its
// digests when it had no tag, as crictl does; its id when it had neither). One failure does not
// stop the others; the command then exits 1.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { errorMessage } from '../../../common/errors.js';

export const rmiCommand = defineCommand({
  name: 'rmi',
  summary: 'Remove one or more images',
  args: 'IMAGE-ID [IMAGE-ID...]',
  options: {
    all: { type: 'boolean', short: 'a', description: 'Remove all images' },
  },
  async run(ctx, values, positionals) {
    const ids = new Set(positionals);
    if (values.all) {
      const r = await ctx.rpc('ListImages', {}, () => ctx.client().listImages({}, ctx.callOptions()));
      for (const image of r.images) ids.add(image.id);
      if (ids.size === 0) {
        ctx.err('No images to remove\n');
        return;
      }
    }
    if (ids.size === 0) throw usageError('rmi needs at least one image, or -a');

    let failed = false;
    for (const id of ids) {
      try {
        const request = { image: { image: id } };
        const status = await ctx.rpc('ImageStatus', request, () => ctx.client().imageStatus(request, ctx.callOptions()));
        if (!status.image) {
          ctx.err(`skiff: no such image ${id}\n`);
          failed = true;
          continue;
        }
        const image = status.image;
        await ctx.rpc('RemoveImage', request, () => ctx.client().removeImage(request, ctx.callOptions()));
        const byId = { image: { image: image.id } };
        const after = await ctx.rpc('ImageStatus', byId, () => ctx.client().imageStatus(byId, ctx.callOptions()));
        if (after.image) {
          ctx.out(`Untagged: ${id}\n`);
          continue;
        }
        const names = image.repo_tags.length > 0 ? image.repo_tags : image.repo_digests.length > 0 ? image.repo_digests : [image.id];
        ctx.out(names.map((name) => `Deleted: ${name}\n`).join(''));
      } catch (err) {
        ctx.err(`skiff: ${errorMessage(err)}\n`);
        failed = true;
      }
    }
    if (failed) throw new Error('unable to remove the image(s)');
  },
});
