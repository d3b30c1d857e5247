// Pure checks on the names inside a layer tar: where an entry may land, and which names are
// whiteouts (image-spec layer.md "Whiteouts"). No filesystem access here; apply.ts adds the lstat
// of every parent so that no write ever goes through a symlink.

/** Why a name was refused; apply.ts turns it into SKIFF_LAYER_UNSAFE naming layer and entry. */
export class UnsafePath extends Error {
  override name = 'UnsafePath';
}

/**
 * The normalized path of a tar entry relative to the layer root, '' for the root itself. `./a/../b`
 * becomes `b`. Refuses NUL bytes, absolute names and any `..` that climbs above the root: names in
 * a layer are relative to the root of the image filesystem (image-spec layer.md), and we refuse
 * rather than re-root absolute ones so that a crafted layer never gets the benefit of the doubt.
 */
export function cleanEntryPath(name: string): string {
  if (name.includes('\0')) throw new UnsafePath('name contains a NUL byte');
  if (name.startsWith('/')) throw new UnsafePath('absolute path');
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new UnsafePath('path climbs out of the layer root');
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** `rel` itself or anything below it. */
export function isWithin(path: string, rel: string): boolean {
  return rel === '' || path === rel || path.startsWith(rel + '/');
}

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

export type Whiteout =
  | { kind: 'file'; target: string } // `.wh.<name>`: <name> was deleted
  | { kind: 'opaque'; dir: string } // `.wh..wh..opq`: the lower layers' children of dir are hidden
  | { kind: 'meta' }; // any other `.wh..wh.` name: reserved, ignored (aufs plnk and friends)

/** The whiteout a cleaned entry path stands for, or undefined for an ordinary entry. */
export function whiteoutOf(rel: string): Whiteout | undefined {
  const base = baseOf(rel);
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  const dir = parentOf(rel);
  if (base === WHITEOUT_OPAQUE) return { kind: 'opaque', dir };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  // `.wh.` alone, `.wh..` and `.wh...` would whiteout the directory itself or its parent.
  if (name === '' || name === '.' || name === '..') throw new UnsafePath(`whiteout "${base}" names no file of its directory`);
  return { kind: 'file', target: dir === '' ? name : `${dir}/${name}` };
}
