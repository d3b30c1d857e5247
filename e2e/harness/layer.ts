// Image layers for tests: tar changesets built from a list of entries with tar-stream, compressed
// as gzip (zlib), zstd (the zstd CLI, since Node 20's zlib has none) or left raw.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { pack as tarPack, type Header } from 'tar-stream';
import { run } from './process.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One tar entry. `path` is absolute inside the image (`/bin/sh`); `linkname` of a hardlink too. */
export interface Entry {
  path: string;
  type: EntryType;
  content?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
}

export type Compression = 'gzip' | 'zstd' | 'none';

export interface BuiltLayer {
  /** The blob as pushed: the compressed tar. */
  blob: Buffer;
  /** sha256 of the uncompressed tar (image-spec config.md rootfs.diff_ids). */
  diffID: string;
  /** sha256 of the blob. */
  digest: string;
  /** The OCI layer media type; pushImage maps it to Docker's for Docker-format manifests. */
  mediaType: string;
  size: number;
  compression: Compression;
}

/** Fixed mtime for entries that set none, so a layer's bytes and digests are reproducible. */
export const DEFAULT_MTIME = new Date('2024-01-01T00:00:00Z');

const OCI_LAYER_TYPES: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

const TAR_TYPES: Record<EntryType, Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  char: 'character-device',
  block: 'block-device',
  fifo: 'fifo',
};

/** Modes of entries that set none (symlinks are always 0777 on Linux). */
export const DEFAULT_MODES: Record<EntryType, number> = {
  file: 0o644,
  dir: 0o755,
  symlink: 0o777,
  hardlink: 0o644,
  char: 0o666,
  block: 0o660,
  fifo: 0o644,
};

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** image-spec layer.md: a whiteout `.wh.<name>` deletes `<name>` from the layers below. */
export function whiteout(path: string): Entry {
  return { path: posix.join(posix.dirname(path), '.wh.' + posix.basename(path)), type: 'file', content: '' };
}

/** image-spec layer.md: an opaque whiteout hides every lower-layer child of `dir`. */
export function opaque(dir: string): Entry {
  return { path: posix.join(dir, '.wh..wh..opq'), type: 'file', content: '' };
}

// Layers store paths relative to the root, without a leading slash, as docker and buildkit do.
function archiveName(path: string): string {
  return path.replace(/^\/+/, '');
}

/**
 * Packs entries into an uncompressed tar. With `verbatim`, names and link names go into the
 * archive exactly as given (`../x`, `/abs`), for hand-made malicious layers; tar-stream does not
 * normalize them.
 */
export async function buildTar(entries: Entry[], opts: { verbatim?: boolean } = {}): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  // Drain while packing: tar-stream applies backpressure once its buffer fills.
  const drained = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  const name = (p: string) => (opts.verbatim ? p : archiveName(p));
  for (const e of entries) {
    const header: Partial<Header> & { name: string } = {
      name: e.type === 'dir' && !opts.verbatim ? name(e.path).replace(/\/?$/, '/') : name(e.path),
      type: TAR_TYPES[e.type],
      // tar-stream replaces a mode of 0 with its default; modes here are never 0 in practice.
      mode: e.mode ?? DEFAULT_MODES[e.type],
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? DEFAULT_MTIME,
    };
    if (e.type === 'symlink') header.linkname = e.linkname ?? '';
    // A hardlink names another archive member, so it is spelled like a member name.
    if (e.type === 'hardlink') header.linkname = name(e.linkname ?? '');
    if (e.type === 'char' || e.type === 'block') {
      header.devmajor = e.devmajor ?? 0;
      header.devminor = e.devminor ?? 0;
    }
    if (e.xattrs && Object.keys(e.xattrs).length > 0) {
      // The pax keys GNU tar, containerd and buildkit use for extended attributes; tar-stream v3
      // writes `header.pax` as a pax extended header before the entry (pack.js _encodePax).
      header.pax = Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
    }
    const body = e.type === 'file' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await drained;
  return Buffer.concat(chunks);
}

const gzipAsync = promisify(gzip);

async function compress(tarball: Buffer, compression: Compression, level?: number): Promise<Buffer> {
  switch (compression) {
    case 'none':
      return tarball;
    case 'gzip':
      return gzipAsync(tarball, { level: level ?? 6 });
    case 'zstd':
      return (await run('zstd', ['-q', '-c', `-${level ?? 3}`], { input: tarball })).stdout;
  }
}

/** A layer from hand-made tar bytes (malicious archives, odd encodings). */
export async function rawLayer(
  tarball: Buffer,
  compression: Compression,
  opts: { level?: number } = {},
): Promise<BuiltLayer> {
  const blob = await compress(tarball, compression, opts.level);
  return {
    blob,
    diffID: sha256(tarball),
    digest: sha256(blob),
    mediaType: OCI_LAYER_TYPES[compression],
    size: blob.length,
    compression,
  };
}

/** A layer from entries, in the order given. */
export async function buildLayer(
  entries: Entry[],
  compression: Compression,
  opts: { level?: number } = {},
): Promise<BuiltLayer> {
  return rawLayer(await buildTar(entries), compression, opts);
}

const BUSYBOX_APPLETS = ['sh', 'ls', 'cat', 'echo', 'sleep', 'id', 'stat', 'true'];

/** The entries of the busybox base layer: a static busybox, a few applet links, /etc basics. */
export async function busyboxEntries(): Promise<Entry[]> {
  const busybox = await readFile('/bin/busybox');
  return [
    { path: '/bin', type: 'dir', mode: 0o755 },
    { path: '/bin/busybox', type: 'file', content: busybox, mode: 0o755 },
    // Relative targets resolve the same inside a rootfs and when inspected from the host.
    ...BUSYBOX_APPLETS.map((a): Entry => ({ path: `/bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { path: '/etc', type: 'dir', mode: 0o755 },
    {
      path: '/etc/passwd',
      type: 'file',
      content: 'root:x:0:0:root:/root:/bin/sh\nskiff:x:1000:1000:skiff:/tmp:/bin/sh\n',
    },
    { path: '/etc/group', type: 'file', content: 'root:x:0:\nskiff:x:1000:\n' },
    { path: '/root', type: 'dir', mode: 0o700 },
    { path: '/tmp', type: 'dir', mode: 0o1777 },
  ];
}

/** The busybox base layer. */
export async function busyboxLayer(compression: Compression): Promise<BuiltLayer> {
  return buildLayer(await busyboxEntries(), compression);
}
