// The expected root filesystem of an image, computed from its layers' entries with the
// image-spec rules (layer.md: changesets applied in order, whiteouts and opaque dirs hiding lower
// layers), so an e2e test can compare what skiffd unpacked against it.
import { posix } from 'node:path';
import { DEFAULT_MODES, type Entry, type EntryType } from './layer.js';

export interface TreeNode {
  /** A hardlink shows up as the file it shares an inode with: type `file`, `hardlinkOf` set. */
  type: Exclude<EntryType, 'hardlink'>;
  /** Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Byte size of a regular file; 0 otherwise. */
  size: number;
  /** The target of a symlink, verbatim. */
  linkTarget?: string;
  /** For a hardlink, the absolute path of the file it was linked to. */
  hardlinkOf?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
}

/** Absolute path (`/bin/sh`) → node. The root itself is not listed. */
export type ExpectedTree = Record<string, TreeNode>;

function normalize(p: string): string {
  return posix.join('/', p);
}

function removeSubtree(tree: ExpectedTree, path: string, keepSelf: boolean): void {
  const prefix = path === '/' ? '/' : path + '/';
  for (const key of Object.keys(tree)) {
    if (key.startsWith(prefix) || (!keepSelf && key === path)) delete tree[key];
  }
}

/** Applies one layer's entries on top of `tree` (mutating it). */
export function applyLayer(tree: ExpectedTree, entries: Entry[]): void {
  // Whiteouts act on the layers below only, so they run before this layer's own entries land.
  for (const e of entries) {
    const path = normalize(e.path);
    const base = posix.basename(path);
    const dir = posix.dirname(path);
    if (base === '.wh..wh..opq') removeSubtree(tree, dir, true);
    else if (base.startsWith('.wh.')) removeSubtree(tree, posix.join(dir, base.slice(4)), false);
  }
  for (const e of entries) {
    const path = normalize(e.path);
    if (posix.basename(path).startsWith('.wh.')) continue;
    const existing = tree[path];
    // A non-directory replacing anything drops what was under it; a dir over a dir merges.
    if (existing && !(existing.type === 'dir' && e.type === 'dir')) removeSubtree(tree, path, false);
    if (e.type === 'hardlink') {
      const target = normalize(e.linkname ?? '');
      const src = tree[target];
      if (!src) throw new Error(`hardlink ${path} → ${target}: target not in the tree`);
      tree[path] = { ...src, hardlinkOf: target };
      continue;
    }
    const node: TreeNode = {
      type: e.type,
      mode: (e.mode ?? DEFAULT_MODES[e.type]) & 0o7777,
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: e.type === 'file' ? Buffer.byteLength(e.content ?? '') : 0,
    };
    if (e.type === 'symlink') node.linkTarget = e.linkname ?? '';
    if (e.type === 'char' || e.type === 'block') {
      node.devmajor = e.devmajor ?? 0;
      node.devminor = e.devminor ?? 0;
    }
    if (e.xattrs) node.xattrs = { ...e.xattrs };
    tree[path] = node;
  }
}

/** The tree a stack of layers (lowest first) unpacks to. */
export function expectedTree(layers: Entry[][]): ExpectedTree {
  const tree: ExpectedTree = {};
  for (const entries of layers) applyLayer(tree, entries);
  return tree;
}
