// PullImage: pulls into the content store and snapshots; returns the image id as image_ref (CRI
// v1.36: image_ref equals the id). The caller's deadline and cancellation abort the pull.
import type { PullImageRequest__Output } from '../gen/runtime/v1/PullImageRequest.js';
import type { PullImageResponse } from '../gen/runtime/v1/PullImageResponse.js';
import type { ImageService } from '../../images/service.js';
import { credentialsFromAuthConfig } from '../../images/registry/auth.js';
import { parseReference } from '../../images/reference.js';
import type { CallContext } from '../instrument.js';
import { requireImageName } from './convert.js';

export function pullImage(images: ImageService) {
  return async (req: PullImageRequest__Output, ctx: CallContext): Promise<PullImageResponse> => {
    const name = requireImageName(req.image, 'PullImage');
    let domain: string | undefined;
    try {
      domain = parseReference(name).domain;
    } catch {
      // A malformed reference: the pull below rejects it with its own error.
    }
    const creds = domain === undefined ? undefined : credentialsFromAuthConfig(req.auth, domain);
    const { image } = await images.pull(name, creds, ctx.signal);
    return { image_ref: image.id };
  };
}
