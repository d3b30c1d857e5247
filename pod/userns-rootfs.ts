// The rootfs of a container in a pod user namespace, as containerd's overlay snapshotter makes it
// with idmapped layers: each image layer is mounted idmapped with the pod's user namespace
// (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount, Linux ≥ 5.19 for overlayfs layers)
// under <bundle>/idmap/<n>, so that the image's root-owned files are the pod root's; the writable
// layer is a plain dir owned by the pod's host root, so that what the container writes lands on
// the host owned by the mapped uid (e.g. 0 inside is hostbase on the host).
import { chown, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SkiffError } from '../common/errors.js';
import { cloneMount } from '../native/mount-api.js';
import { unmount } from '../native/sys.js';
import { mountRootfs, type RootfsPaths } from './rootfs.js';

export const idmapDir = (bundle: string): string => join(bundle, 'idmap');

export interface PodUserns {
  /** The pinned user namespace of the pod. */
  path: string;
  /** Host uid and gid of the pod's root (the mappings' host ids for container id 0). */
  hostUid: number;
  hostGid: number;
}

/** Mounts the overlay rootfs on idmapped copies of its layers; the caller unmounts both on failure. */
export async function mountIdmappedRootfs(p: RootfsPaths, bundle: string, userns: PodUserns): Promise<void> {
  const dir = idmapDir(bundle);
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const lowerDirs: string[] = [];
  for (const [i, lower] of p.lowerDirs.entries()) {
    const target = join(dir, String(i));
    await mkdir(target, { mode: 0o755 });
    try {
      // Read-only: a lower layer is never written, and a stray rm -r of the bundle cannot reach the image.
      cloneMount(lower, target, { recursive: false, idmapUsernsPath: userns.path, readOnly: true });
    } catch (err) {
      throw new SkiffError('SKIFF_FAILED_PRECONDITION', `idmapped mount of image layer ${lower} (user namespace ${userns.path}): ${(err as Error).message}; pod user namespaces need idmapped mounts on this filesystem`, { cause: err });
    }
    lowerDirs.push(target);
  }
  await mkdir(p.upperDir, { recursive: true, mode: 0o755 });
  await mkdir(p.workDir, { recursive: true, mode: 0o700 });
  await chown(p.upperDir, userns.hostUid, userns.hostGid);
  await mountRootfs({ ...p, lowerDirs });
}

/** Detaches the idmapped layers of a bundle (after its rootfs is unmounted). Idempotent. */
export async function unmountIdmappedLayers(bundle: string): Promise<void> {
  const dir = idmapDir(bundle);
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const e of entries) unmount(join(dir, e));
  // Only empty mount points are left: an unmount that failed has thrown above.
  await rm(dir, { recursive: true, force: true });
}
