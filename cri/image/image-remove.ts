// RemoveImage: idempotent (a missing image succeeds). By id or digest the image goes; by tag
// only the tag goes while the image has others.
import type { RemoveImageRequest__Output } from '../gen/runtime/v1/RemoveImageRequest.js';
import type { RemoveImageResponse } from '../gen/runtime/v1/RemoveImageResponse.js';
import type { ImageService } from '../../images/service.js';
import { requireImageName } from './convert.js';

export function removeImage(images: ImageService) {
  return async (req: RemoveImageRequest__Output): Promise<RemoveImageResponse> => {
    await images.remove(requireImageName(req.image, 'RemoveImage'));
    return {};
  };
}
