// Writes the entries of one layer tar under its root, one at a time, as apply.ts hands them over:
// path checks, entry types, metadata, whiteout conversion (image-spec layer.md; overlayfs.rst).
// Nothing here follows a symlink: parents are lstat'ed, files opened O_EXCL|O_NOFOLLOW, symlinks
// and devices touched only through l* calls.
import { constants as fsc, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { ExtractEvents, Header } from 'tar-stream';
import { SkiffError, errnoCode, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { makedev, S_IFBLK, S_IFCHR, type Syscalls } from '../../native/sys.js';
import type { EntryRecord } from './pax.js';
import { UnsafePath, cleanEntryPath, isWithin, whiteoutOf } from './paths.js';
import { applyXattrs } from './xattrs.js';

const log = logger('unpack');

/** One entry as tar-stream hands it out: its header and a readable of its data. */
export type Entry = ExtractEvents['entry'][1];

/** overlayfs' marker for a directory whose lower-layer children are hidden. */
const OPAQUE_XATTR = 'trusted.overlay.opaque';

interface Times {
  atime: number;
  mtime: number;
}

/** Writes the entries of one layer under root; one instance per applyLayer call. */
export class LayerWriter {
  entries = 0;
  size = 0;
  /** Parents known to be real directories (not symlinks) under root. */
  private readonly dirs = new Set<string>(['']);
  /** Paths this layer wrote, the only valid hardlink targets. */
  private readonly written = new Set<string>();
  /** Directory times, set at the end so that creating children does not disturb them. */
  private readonly dirTimes = new Map<string, Times>();

  constructor(
    private readonly root: string,
    private readonly layer: string,
    private readonly sys: Syscalls,
  ) {}

  async checkRoot(): Promise<void> {
    const st = await lstatOrUndefined(this.root).catch((err: unknown) => {
      throw this.wrap('.', err, this.root);
    });
    if (!st?.isDirectory()) throw new SkiffError('SKIFF_INTERNAL', `unpack root ${this.root} is not a directory`);
    if ((await fs.readdir(this.root)).length > 0) {
      throw new SkiffError('SKIFF_FAILED_PRECONDITION', `unpack root ${this.root} of layer ${this.layer} is not empty`);
    }
  }

  async apply(entry: Entry, record: EntryRecord | undefined): Promise<void> {
    const h = entry.header;
    this.entries++;
    // Both parsers walk the same framing; if they ever disagree an xattr could land on the wrong file.
    const offset = (h as Header & { byteOffset?: number }).byteOffset;
    if (!record || (offset !== undefined && offset !== record.dataOffset)) {
      throw this.invalid(h.name, 'tar headers could not be read consistently');
    }
    let rel: string;
    try {
      rel = cleanEntryPath(h.name);
    } catch (err) {
      throw this.unsafe(h.name, err);
    }
    try {
      await this.applyEntry(entry, rel, record.xattrs);
    } catch (err) {
      throw this.wrap(h.name, err, this.abs(rel));
    }
    await drain(entry);
  }

  private async applyEntry(entry: Entry, rel: string, xattrs: Map<string, Buffer>): Promise<void> {
    const h = entry.header;
    let wh;
    try {
      wh = whiteoutOf(rel);
    } catch (err) {
      throw this.unsafe(h.name, err);
    }
    if (wh) {
      await this.ensureParents(rel, h.name);
      if (wh.kind === 'opaque') {
        this.sys.lsetxattr(this.abs(wh.dir), OPAQUE_XATTR, Buffer.from('y'));
      } else if (wh.kind === 'file') {
        await this.whiteout(wh.target, h);
      } else {
        log.debug({ layer: this.layer, entry: h.name }, 'reserved whiteout name ignored');
      }
      return;
    }

    if (rel === '') {
      // The layer root itself ("./"): only its metadata can change.
      if (h.type !== 'directory') throw this.invalid(h.name, 'only a directory can stand for the layer root');
      await this.metadata('', h, xattrs, false);
      this.dirTimes.set('', times(h));
      return;
    }

    await this.ensureParents(rel, h.name);
    const path = this.abs(rel);
    const existing = await lstatOrUndefined(path);
    if (existing && !(existing.isDirectory() && h.type === 'directory')) {
      // A later entry for the same path replaces the earlier one (tar semantics).
      await fs.rm(path, { recursive: true, force: true });
      this.forget(rel);
    }

    switch (h.type) {
      case 'file':
      case 'contiguous-file':
        await this.file(entry, path, h, xattrs);
        break;
      case 'directory':
        if (!existing?.isDirectory()) await fs.mkdir(path, { mode: 0o700 });
        await this.metadata(rel, h, xattrs, false);
        this.dirTimes.set(rel, times(h));
        this.dirs.add(rel);
        break;
      case 'symlink':
        // A symlink's target is only text: it may point anywhere, nothing here follows it.
        if (!h.linkname) throw this.invalid(h.name, 'symlink without a target');
        if (h.linkname.includes('\0')) throw this.unsafe(h.name, new UnsafePath('symlink target contains a NUL byte'));
        await fs.symlink(h.linkname, path);
        await this.metadata(rel, h, xattrs, true);
        break;
      case 'link':
        await this.hardlink(rel, h);
        break;
      case 'character-device':
      case 'block-device':
        this.sys.mknod(path, (h.type === 'block-device' ? S_IFBLK : S_IFCHR) | mode(h), makedev(h.devmajor ?? 0, h.devminor ?? 0));
        await this.metadata(rel, h, xattrs, false);
        break;
      case 'fifo':
        this.sys.mkfifo(path, mode(h));
        await this.metadata(rel, h, xattrs, false);
        break;
      default:
        // GNU sparse ('S'), multi-volume and other exotic types; containerd refuses them too.
        throw this.invalid(h.name, `unsupported tar entry type ${String(h.type)}`);
    }
    this.written.add(rel);
  }

  /** Streams the entry's content to a new file: never buffered whole, never through a symlink. */
  private async file(entry: Entry, path: string, h: Header, xattrs: Map<string, Buffer>): Promise<void> {
    const fh = await fs.open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of chunksOf(entry)) {
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
        this.size += chunk.length;
      }
      // chown clears setuid/setgid and file capabilities, so: owner, then mode, then xattrs.
      await fh.chown(h.uid ?? 0, h.gid ?? 0);
      await fh.chmod(mode(h));
      applyXattrs(this.sys, path, xattrs, h.name, log);
      const t = times(h);
      await fh.utimes(t.atime, t.mtime);
    } finally {
      await fh.close();
    }
  }

  /** Owner, mode, xattrs, times of something just created at rel (never a regular file). */
  private async metadata(rel: string, h: Header, xattrs: Map<string, Buffer>, symlink: boolean): Promise<void> {
    const path = this.abs(rel);
    await fs.lchown(path, h.uid ?? 0, h.gid ?? 0);
    // Linux has no lchmod; a symlink's own mode means nothing. Everything else here was created
    // (or lstat'ed as a directory) by us a moment ago, so chmod cannot be redirected.
    if (!symlink) await fs.chmod(path, mode(h));
    applyXattrs(this.sys, path, xattrs, h.name, log);
    if (h.type !== 'directory') {
      const t = times(h);
      await fs.lutimes(path, t.atime, t.mtime);
    }
  }

  /** image-spec layer.md: a hardlink's target is an earlier entry of the same layer. */
  private async hardlink(rel: string, h: Header): Promise<void> {
    const linkname = h.linkname ?? '';
    let target: string;
    try {
      target = cleanEntryPath(linkname);
    } catch (err) {
      throw this.unsafe(h.name, new UnsafePath(`hardlink target "${linkname}": ${errorMessage(err)}`));
    }
    if (target === '' || !this.written.has(target)) {
      throw this.unsafe(h.name, new UnsafePath(`hardlink target "${linkname}" is not an earlier entry of this layer`));
    }
    // The target's parents were checked when it was written, but a later entry may have replaced
    // one of them with a symlink; link(2) would follow that.
    await this.ensureParents(target, h.name, false);
    const st = await lstatOrUndefined(this.abs(target));
    if (!st) throw this.unsafe(h.name, new UnsafePath(`hardlink target "${linkname}" no longer exists`));
    if (st.isDirectory()) throw this.invalid(h.name, `hardlink target "${linkname}" is a directory`);
    // link(2) does not follow a symlink in its last component: a link to a symlink is a symlink.
    await fs.link(this.abs(target), this.abs(rel));
  }

  /** `.wh.<name>` → a 0/0 character device named <name>, owned like the whiteout entry. */
  private async whiteout(target: string, h: Header): Promise<void> {
    const path = this.abs(target);
    if (await lstatOrUndefined(path)) {
      // layer.md: a whiteout hides only what lower layers hold; a file of this same layer stays.
      log.debug({ layer: this.layer, entry: h.name }, 'whiteout of a path this layer creates; kept the file');
      return;
    }
    this.sys.mknod(path, S_IFCHR, 0n);
    await fs.lchown(path, h.uid ?? 0, h.gid ?? 0);
  }

  /**
   * Makes sure every parent of rel is a real directory under root: missing ones are created
   * (0755, root-owned, as docker and containerd do), a symlink is refused, a non-directory is invalid.
   */
  private async ensureParents(rel: string, entry: string, create = true): Promise<void> {
    const parts = rel.split('/');
    let cur = '';
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur === '' ? parts[i] : `${cur}/${parts[i]}`;
      if (this.dirs.has(cur)) continue;
      const st = await lstatOrUndefined(this.abs(cur));
      if (!st) {
        if (!create) throw this.unsafe(entry, new UnsafePath(`parent "${cur}" does not exist`));
        await fs.mkdir(this.abs(cur), { mode: 0o755 });
        await fs.chmod(this.abs(cur), 0o755); // mkdir's mode is filtered by the umask
      } else if (st.isSymbolicLink()) {
        throw this.unsafe(entry, new UnsafePath(`parent "${cur}" is a symlink`));
      } else if (!st.isDirectory()) {
        throw this.invalid(entry, `parent "${cur}" is not a directory`);
      }
      this.dirs.add(cur);
    }
  }

  /** rel was removed (replaced by a later entry): drop what we knew of it and below it. */
  private forget(rel: string): void {
    for (const set of [this.dirs, this.written]) {
      for (const p of set) if (p !== '' && isWithin(p, rel)) set.delete(p);
    }
    for (const p of this.dirTimes.keys()) if (p !== '' && isWithin(p, rel)) this.dirTimes.delete(p);
  }

  /** Directory times last, deepest first, so nothing written afterwards moves them. */
  async finish(): Promise<void> {
    const dirs = [...this.dirTimes.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, t] of dirs) {
      try {
        // Re-checked: a later entry may have put a symlink where a parent directory was.
        await this.ensureParents(rel === '' ? '' : `${rel}/x`, rel, false);
        await fs.lutimes(this.abs(rel), t.atime, t.mtime);
      } catch (err) {
        throw this.wrap(rel, err, this.abs(rel));
      }
    }
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  private unsafe(entry: string, err: unknown): SkiffError {
    return new SkiffError('SKIFF_LAYER_UNSAFE', `layer ${this.layer}: entry ${JSON.stringify(entry)}: ${errorMessage(err)}`, {
      cause: err,
    });
  }

  private invalid(entry: string, why: string): SkiffError {
    return new SkiffError('SKIFF_LAYER_INVALID', `layer ${this.layer}: entry ${JSON.stringify(entry)}: ${why}`);
  }

  /**
   * An error while writing one entry at `path`: ours stay; system errors name the entry. A full
   * disk or quota is the node's problem, not the image's (RESOURCE_EXHAUSTED, as kubelet reports
   * a full image filesystem), a name the filesystem cannot hold is the layer's; anything else
   * (EIO…) is ours.
   */
  private wrap(entry: string, err: unknown, path: string): unknown {
    if (err instanceof SkiffError) return err;
    // System errors (node:fs and native/sys) carry the failing syscall; stream errors do not.
    if (typeof err === 'object' && err !== null && 'syscall' in err) {
      const where = `layer ${this.layer}: entry ${JSON.stringify(entry)}`;
      const code = errnoCode(err);
      // fd-based calls (write, fchown) carry no path; then it is the entry's own.
      const at = 'path' in err && typeof err.path === 'string' ? err.path : path;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        const why = code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded';
        return new SkiffError('SKIFF_NO_SPACE', `${where}: writing ${at}: ${why} (${code})`, { cause: err });
      }
      if (code === 'ENAMETOOLONG') {
        return new SkiffError('SKIFF_LAYER_INVALID', `${where}: name too long for the filesystem (ENAMETOOLONG)`, { cause: err });
      }
      return new SkiffError('SKIFF_INTERNAL', `${where}: ${errorMessage(err)}`, { cause: err });
    }
    return err; // a TarStreamError or a parse error: classify() judges it
  }
}

function mode(h: Header): number {
  return (h.mode ?? 0) & 0o7777;
}

/** Seconds, with the sub-second part PAX `mtime`/`atime` records carry; atime no older than mtime. */
function times(h: Header): Times {
  const pax = (h as Header & { pax?: Record<string, string> | null }).pax;
  const mtime = parseTime(pax?.mtime) ?? (h.mtime ? h.mtime.getTime() / 1000 : 0);
  const atime = parseTime(pax?.atime);
  return { mtime, atime: atime !== undefined && atime > mtime ? atime : mtime };
}

function parseTime(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** An error of the tar stream itself (truncated tar, corrupt blob, the source's own failure). */
export class TarStreamError extends Error {
  override name = 'TarStreamError';
}

/** An entry's data; a read failure is tagged so that it is not mistaken for a write failure. */
async function* chunksOf(entry: Entry): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw new TarStreamError(errorMessage(err), { cause: err });
  }
}

/** Consumes what is left of an entry, so the extractor moves on to the next header. */
async function drain(entry: Entry): Promise<void> {
  for await (const _ of chunksOf(entry)) {
    // discard: data of an entry type that has none (a whiteout's, a link's)
  }
}
