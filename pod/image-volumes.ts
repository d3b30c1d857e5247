// Image volumes (CRI Mount.image, KEP-4639 "OCI volume source"): an image kubelet has pulled,
// mounted read-only into the container. Each is a read-only overlay of the image's snapshots under
// the container's bundle (<bundle>/image-volumes/<n>), so it goes with the container; the spec
// binds it (or the image_sub_path dir inside it) read-only. Checks follow containerd's
// mutateImageMount (internal/cri/server/container_image_mount.go): no host_path, readonly set, the
// image resolved locally like the container's own, image_sub_path an existing directory inside
// the image (containerd opens it with os.OpenInRoot; here symlinks resolve against the image root).
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { SkiffError, errnoCode, errorMessage } from '../common/errors.js';
import type { ImageRecord } from '../images/image-store.js';
import { MS_RDONLY, mount, unmount } from '../native/sys.js';
import { resolveInRoot } from './rootfs.js';

const DIR = 'image-volumes';
/** A read-only overlay needs two lower dirs; a one-layer image gets this empty one as its second. */
const EMPTY = '.empty';
const MAX_OPTIONS = 4000;

export interface ImageVolume {
  containerPath: string;
  /** The image as the mount named it, and what it resolved to. */
  image: string;
  imageId: string;
  /** The image's snapshots, bottom layer first (ImageRecord.layers order). */
  chainIDs: string[];
  /** Relative path inside the image; '' for its root. */
  subPath: string;
}

function label(config: v1.ContainerConfig__Output, containerPath: string): string {
  return `container "${config.metadata?.name ?? ''}": image volume "${containerPath}"`;
}

/** image_sub_path as kubelet validates subPath: relative, no "..", no NUL. Undefined when fine. */
export function subPathError(subPath: string): string | undefined {
  if (!subPath) return undefined;
  if (subPath.includes('\0')) return `image_sub_path "${subPath.replace(/\0/g, '\\0')}" contains NUL`;
  if (posix.isAbsolute(subPath)) return `image_sub_path "${subPath}" must be a relative path`;
  if (subPath.split('/').includes('..')) return `image_sub_path "${subPath}" must not contain ".."`;
  return undefined;
}

/**
 * The container's image volumes, checked and resolved before anything is made. Unknown image:
 * NOT_FOUND (containerd: LocalResolve's not-found); bad request fields: INVALID_ARGUMENT.
 */
export function planImageVolumes(images: { resolve(ref: string): ImageRecord | undefined }, config: v1.ContainerConfig__Output): ImageVolume[] {
  const out: ImageVolume[] = [];
  for (const m of config.mounts) {
    const ref = m.image?.image;
    if (!ref) continue;
    const who = label(config, m.container_path);
    const bad = (why: string): SkiffError => new SkiffError('SKIFF_INVALID_ARGUMENT', `${who}: ${why}`);
    if (!posix.isAbsolute(m.container_path)) throw bad('container_path is not an absolute path');
    if (m.host_path) throw bad(`host_path must be empty for an image mount, got "${m.host_path}"`);
    if (!m.readonly) throw bad('readonly must be true for an image mount');
    const subPathWhy = subPathError(m.image_sub_path);
    if (subPathWhy) throw bad(subPathWhy);
    let rec: ImageRecord | undefined;
    try {
      rec = images.resolve(ref);
    } catch (err) {
      if (err instanceof SkiffError) throw new SkiffError(err.code, `${who}: ${err.message}`, { cause: err });
      throw err;
    }
    if (!rec) throw new SkiffError('SKIFF_NOT_FOUND', `${who}: image "${ref}" not found: pull it first`);
    out.push({ containerPath: m.container_path, image: ref, imageId: rec.id, chainIDs: rec.layers.map((l) => l.chainID), subPath: posix.normalize(m.image_sub_path || '.') });
  }
  return out;
}


function overlayOptions(lowerDirs: string[]): string {
  for (const d of lowerDirs) if (/[,:]/.test(d)) throw new SkiffError('SKIFF_INTERNAL', `overlay dir "${d}" contains "," or ":"`);
  const opts = `lowerdir=${lowerDirs.join(':')}`;
  if (opts.length > MAX_OPTIONS) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `image has too many layers (${lowerDirs.length}) for one overlay mount`);
  return opts;
}

/**
 * Mounts each volume's image read-only under <bundle>/image-volumes/ and returns container_path →
 * the dir to bind (image_sub_path applied). On failure what was mounted stays for the caller's
 * rollback (releaseBundleMounts in bundle-mounts.ts), which must be registered before this is called.
 */
export async function mountImageVolumes(
  bundle: string,
  config: v1.ContainerConfig__Output,
  volumes: readonly ImageVolume[],
  lowerDirs: (chainIDs: string[]) => string[],
): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  if (volumes.length === 0) return sources;
  const base = join(bundle, DIR);
  const empty = join(base, EMPTY);
  await mkdir(empty, { recursive: true, mode: 0o755 });
  for (const [i, v] of volumes.entries()) {
    const target = join(base, String(i));
    await mkdir(target, { mode: 0o755 });
    const lowers = v.chainIDs.length ? lowerDirs(v.chainIDs) : [];
    while (lowers.length < 2) lowers.push(empty);
    try {
      mount('overlay', target, 'overlay', MS_RDONLY, overlayOptions(lowers));
    } catch (err) {
      throw new SkiffError('SKIFF_INTERNAL', `${label(config, v.containerPath)}: mounting image "${v.image}": ${errorMessage(err)}`, { cause: err });
    }
    let source = target;
    if (v.subPath !== '.') {
      const found = await resolveInRoot(target, v.subPath);
      const who = label(config, v.containerPath);
      if (!found) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${who}: image_sub_path "${v.subPath}" does not exist in image "${v.image}"`);
      // containerd (and KEP-4639) mount directories only.
      if (!found.isDirectory) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${who}: image_sub_path "${v.subPath}" in image "${v.image}" is not a directory`);
      source = found.path;
    }
    sources.set(v.containerPath, source);
  }
  return sources;
}

/** Unmounts and removes a container's image volumes; nothing there is fine (idempotent). */
export async function unmountImageVolumes(bundle: string): Promise<void> {
  const base = join(bundle, DIR);
  let names: string[];
  try {
    names = await readdir(base);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  for (const name of names) if (name !== EMPTY) unmount(join(base, name));
  // Only once every overlay is off: removing files through a mounted image volume would fail (it
  // is read-only), never reach the snapshots.
  await rm(base, { recursive: true, force: true });
}
