// Reading what skiffd left on disk, for e2e assertions: its stores' listings, unpacked trees in
// the shape of ExpectedTree, and an overlayfs mount of an image's snapshots (the kernel's own
// view of the layers, whiteouts and opaque dirs included).
import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ExpectedTree, TreeNode } from './tree.js';

const exec = promisify(execFile);

export interface StoreListing {
  images: string[];
  blobs: string[];
  ingests: string[];
  snapshots: string[];
  /** Snapshot preparations and other temp entries that must not outlive a pull. */
  temps: string[];
}

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

export async function listStores(root: string): Promise<StoreListing> {
  const snaps = await names(join(root, 'snapshots'));
  const images = await names(join(root, 'images'));
  return {
    images: images.filter((n) => n.endsWith('.json') && !n.startsWith('.')),
    blobs: await names(join(root, 'content', 'blobs', 'sha256')),
    ingests: await names(join(root, 'content', 'ingest')),
    snapshots: snaps.filter((n) => /^[a-f0-9]{64}$/.test(n)),
    temps: [...snaps.filter((n) => n.startsWith('.')), ...images.filter((n) => n.startsWith('.'))],
  };
}

function major(dev: number): number {
  return ((dev >> 8) & 0xfff) | ((dev >>> 12) & 0xfff00);
}
function minor(dev: number): number {
  return (dev & 0xff) | ((dev >>> 12) & 0xffffff00);
}

/** The tree under `root` in ExpectedTree form (xattrs not read; hardlinks reported by inode). */
export async function readTree(root: string): Promise<{ tree: ExpectedTree; inodes: Map<string, number> }> {
  const tree: ExpectedTree = {};
  const inodes = new Map<string, number>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const abs = join(dir, name);
      const path = rel + '/' + name;
      const st = await lstat(abs);
      inodes.set(path, st.ino);
      const node: TreeNode = {
        type: st.isDirectory()
          ? 'dir'
          : st.isSymbolicLink()
            ? 'symlink'
            : st.isFIFO()
              ? 'fifo'
              : st.isCharacterDevice()
                ? 'char'
                : st.isBlockDevice()
                  ? 'block'
                  : 'file',
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: st.isFile() ? st.size : 0,
      };
      if (node.type === 'symlink') {
        node.linkTarget = await readlink(abs);
        node.mode = 0o777;
      }
      if (node.type === 'char' || node.type === 'block') {
        node.devmajor = major(st.rdev);
        node.devminor = minor(st.rdev);
      }
      tree[path] = node;
      if (node.type === 'dir') await walk(abs, path);
    }
  };
  await walk(root, '');
  return { tree, inodes };
}

/** Drops what readTree cannot compare (hardlink provenance, xattrs) from an expected tree. */
export function comparable(tree: ExpectedTree): ExpectedTree {
  const out: ExpectedTree = {};
  for (const [path, n] of Object.entries(tree)) {
    const { hardlinkOf: _h, xattrs: _x, ...rest } = n;
    out[path] = rest.type === 'symlink' ? { ...rest, mode: 0o777 } : rest;
  }
  return out;
}

/**
 * Mounts the lower dirs (topmost first) read-only with overlayfs on a temp dir, runs `fn`, and
 * unmounts. Needs two or more lower dirs (overlayfs refuses one without an upper dir).
 */
export async function withOverlay<T>(lowerTopFirst: string[], fn: (mnt: string) => Promise<T>): Promise<T> {
  const mnt = await mkdtemp(join(tmpdir(), 'skiff-e2e-ovl-'));
  await exec('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowerTopFirst.join(':')}`, mnt]);
  try {
    return await fn(mnt);
  } finally {
    await exec('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  }
}
