// ImageRecord → CRI Image, as containerd reports it: id = config digest, fully qualified repo
// tags and repo digests, compressed size, uid or username from the image's USER.
import type { Image } from '../gen/runtime/v1/Image.js';
import type { ImageRecord } from '../../images/image-store.js';
import { imageUser } from '../../images/service.js';
import { SkiffError } from '../../common/errors.js';

export function toCriImage(rec: ImageRecord): Image {
  const user = imageUser(rec.config.User);
  return {
    id: rec.id,
    repo_tags: rec.repoTags,
    repo_digests: rec.repoDigests,
    size: String(rec.size),
    uid: user.uid !== undefined ? { value: String(user.uid) } : null,
    username: user.username ?? '',
    spec: { image: rec.id, annotations: {} },
    pinned: rec.pinned,
  };
}

/** The image name of an ImageSpec, required non-empty. */
export function requireImageName(spec: { image?: string } | null | undefined, rpc: string): string {
  const name = spec?.image?.trim() ?? '';
  if (!name) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${rpc}: image.image must name an image`);
  return name;
}
