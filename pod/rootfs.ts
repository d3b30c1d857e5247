// A container's root filesystem: an overlayfs mount of the image's snapshots (read-only lower
// dirs, topmost first) under a per-container upper and work dir — the writable layer. Also reads
// files of the image (/etc/passwd, /etc/group) without ever following a symlink out of the root.
import { lstat, mkdir, readFile, readlink, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { SkiffError, errnoCode } from '../common/errors.js';
import { mount, unmount } from '../native/sys.js';

/** overlayfs refuses option strings longer than a page. */
const MAX_OPTIONS = 4000;

export interface RootfsPaths {
  /** Mount point (inside the bundle). */
  target: string;
  upperDir: string;
  workDir: string;
  /** Image snapshot dirs, topmost first; an image without layers gets an empty dir. */
  lowerDirs: string[];
}

export function overlayOptions(p: RootfsPaths): string {
  const opts = `lowerdir=${p.lowerDirs.join(':')},upperdir=${p.upperDir},workdir=${p.workDir},index=off`;
  if (opts.length > MAX_OPTIONS) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `image has too many layers (${p.lowerDirs.length}) for one overlay mount`);
  }
  for (const d of [...p.lowerDirs, p.upperDir, p.workDir]) {
    if (/[,:]/.test(d)) throw new SkiffError('SKIFF_INTERNAL', `overlay dir "${d}" contains "," or ":"`);
  }
  return opts;
}

export async function mountRootfs(p: RootfsPaths): Promise<void> {
  await mkdir(p.target, { recursive: true, mode: 0o755 });
  await mkdir(p.upperDir, { recursive: true, mode: 0o755 });
  await mkdir(p.workDir, { recursive: true, mode: 0o700 });
  mount('overlay', p.target, 'overlay', 0, overlayOptions(p));
}

export function unmountRootfs(target: string): void {
  unmount(target);
}

/** Symlinks followed while resolving one path, as the kernel's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;

/**
 * Where `path` is inside `root`, resolving symlinks as a process chrooted there would: an absolute
 * target is root-relative and ".." stops at the root, so the result never leaves it (the host is
 * never looked at). Undefined when a component is missing or not a directory; the host path and
 * whether it is a directory otherwise.
 */
export async function resolveInRoot(root: string, path: string): Promise<{ path: string; isDirectory: boolean } | undefined> {
  let rel = posix.normalize('/' + path);
  for (let hops = 0; hops <= MAX_SYMLINKS; hops++) {
    const parts = rel.split('/').filter(Boolean);
    let cur = '/';
    let redirected = false;
    for (let i = 0; i < parts.length; i++) {
      const next = posix.join(cur, parts[i]);
      let st;
      try {
        st = await lstat(join(root, next));
      } catch (err) {
        if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
        throw err;
      }
      if (st.isSymbolicLink()) {
        const target = await readlink(join(root, next));
        const base = target.startsWith('/') ? target : posix.join(cur, target);
        rel = posix.normalize('/' + posix.join(base, ...parts.slice(i + 1)));
        redirected = true;
        break;
      }
      if (i < parts.length - 1 && !st.isDirectory()) return undefined;
      cur = next;
    }
    if (!redirected) {
      const st = await lstat(join(root, cur));
      return { path: join(root, cur), isDirectory: st.isDirectory() };
    }
  }
  throw new SkiffError('SKIFF_INVALID_ARGUMENT', `"${path}" in the image: too many levels of symbolic links`);
}

/**
 * Reads `path` inside `root` as the container would see it (resolveInRoot); undefined when absent
 * or not a regular file.
 */
export async function readInRoot(root: string, path: string, maxBytes = 1 << 20): Promise<string | undefined> {
  const found = await resolveInRoot(root, path);
  if (!found || found.isDirectory) return undefined;
  const st = await stat(found.path);
  if (!st.isFile()) return undefined;
  if (st.size > maxBytes) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${path} in the image is larger than ${maxBytes} bytes`);
  return readFile(found.path, 'utf8');
}
