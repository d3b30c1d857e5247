// ImageStatus: the image named by id, tag or digest; a missing image is not an error, the
// response just has no image (CRI contract). Verbose adds the image config under "info".
import type { ImageStatusRequest__Output } from '../gen/runtime/v1/ImageStatusRequest.js';
import type { ImageStatusResponse } from '../gen/runtime/v1/ImageStatusResponse.js';
import type { ImageService } from '../../images/service.js';
import { requireImageName, toCriImage } from './convert.js';

export function imageStatus(images: ImageService) {
  return async (req: ImageStatusRequest__Output): Promise<ImageStatusResponse> => {
    const rec = images.resolve(requireImageName(req.image, 'ImageStatus'));
    if (!rec) return { image: null, info: {} };
    return { image: toCriImage(rec), info: req.verbose ? images.verboseInfo(rec) : {} };
  };
}
