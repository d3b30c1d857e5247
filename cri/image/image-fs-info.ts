// ImageFsInfo: bytes and inodes used by the snapshot store. Container writable layers live on
// the same filesystem, so the same usage is reported for both, as containerd does.
import type { ImageFsInfoRequest__Output } from '../gen/runtime/v1/ImageFsInfoRequest.js';
import type { ImageFsInfoResponse } from '../gen/runtime/v1/ImageFsInfoResponse.js';
import type { FilesystemUsage } from '../gen/runtime/v1/FilesystemUsage.js';
import type { ImageService } from '../../images/service.js';

export function imageFsInfo(images: ImageService) {
  return async (_req: ImageFsInfoRequest__Output): Promise<ImageFsInfoResponse> => {
    const info = await images.fsInfo();
    const usage: FilesystemUsage = {
      timestamp: String(BigInt(info.timestamp.getTime()) * 1_000_000n),
      fs_id: { mountpoint: info.mountpoint },
      used_bytes: { value: String(info.usedBytes) },
      inodes_used: { value: String(info.inodesUsed) },
    };
    return { image_filesystems: [usage], container_filesystems: [usage] };
  };
}
