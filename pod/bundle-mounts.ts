// The mounts skiff makes inside a container's bundle besides its rootfs — image volumes
// (image-volumes.ts), staged recursive read-only and idmapped binds (rro-mounts.ts,
// idmap-mounts.ts) and idmapped image layers (userns-rootfs.ts) — released together, after the
// rootfs is unmounted and always before the bundle is deleted: a delete that ran first would walk
// into them.
import { unmountImageVolumes } from './image-volumes.js';
import { unstageIdmappedMounts } from './idmap-mounts.js';
import { unstageRecursiveReadOnly } from './rro-mounts.js';
import { unmountIdmappedLayers } from './userns-rootfs.js';

export async function releaseBundleMounts(bundle: string): Promise<void> {
  await unmountImageVolumes(bundle);
  unstageRecursiveReadOnly(bundle);
  unstageIdmappedMounts(bundle);
  await unmountIdmappedLayers(bundle);
}
