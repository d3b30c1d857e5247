// ListImages and StreamImages (the v1.36 streaming form, for nodes with many images): every
// image, or those the filter names.
import type { ListImagesRequest__Output } from '../gen/runtime/v1/ListImagesRequest.js';
import type { ListImagesResponse } from '../gen/runtime/v1/ListImagesResponse.js';
import type { StreamImagesRequest__Output } from '../gen/runtime/v1/StreamImagesRequest.js';
import type { StreamImagesResponse } from '../gen/runtime/v1/StreamImagesResponse.js';
import type { ImageService } from '../../images/service.js';
import { toCriImage } from './convert.js';

/** Images per StreamImages message: small enough to stay far below the 16 MiB message limit. */
const STREAM_BATCH = 256;

function filtered(images: ImageService, filter: { image?: { image?: string } | null } | null | undefined) {
  const name = filter?.image?.image?.trim();
  return images.list(name || undefined).map(toCriImage);
}

export function listImages(images: ImageService) {
  return async (req: ListImagesRequest__Output): Promise<ListImagesResponse> => ({ images: filtered(images, req.filter) });
}

export function streamImages(images: ImageService) {
  return async (req: StreamImagesRequest__Output, send: (res: StreamImagesResponse) => Promise<void>): Promise<void> => {
    const all = filtered(images, req.filter);
    for (let i = 0; i < all.length; i += STREAM_BATCH) await send({ images: all.slice(i, i + STREAM_BATCH) });
  };
}
