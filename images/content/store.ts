// Content store: blobs addressed by digest (containerd `plugins/content/local`). A blob is written
// under ingest/<hex>/data, checked for size and digest, then renamed into blobs/sha256/<hex>; a
// reader never sees a half-written or unverified blob. An ingest left by a crash is resumed by the
// next writer of the same digest (its bytes are re-hashed first).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { SkiffError, errnoCode } from '../../common/errors.js';
import { fsyncDir } from '../../common/atomic.js';
import { digestHex, sha256Digest } from '../digest.js';

export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;
  /** One writer per digest at a time; the next one waits (the same blob can be two layers). */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.ingestDir = join(root, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true });
    await mkdir(this.ingestDir, { recursive: true });
  }

  blobPath(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  /** Size of a committed blob, or undefined. */
  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Reads a small committed blob (manifest, config) and checks it against its digest. */
  async readBytes(digest: string): Promise<Buffer> {
    const data = await readFile(this.blobPath(digest));
    if (sha256Digest(data) !== digest) {
      throw new SkiffError('SKIFF_DIGEST_MISMATCH', `content ${digest} is corrupt on disk (digest does not match)`);
    }
    return data;
  }

  /** Writes a small blob whose bytes are all in memory, verified against `digest`. */
  async writeBytes(digest: string, data: Uint8Array): Promise<void> {
    const actual = sha256Digest(data);
    if (actual !== digest) {
      throw new SkiffError('SKIFF_DIGEST_MISMATCH', `content ${digest}: got bytes with digest ${actual}`);
    }
    const w = await this.openWriter(digest, data.length, { resume: false });
    if (!w) return;
    try {
      await w.append(data);
      await w.commit();
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  createReadStream(digest: string): Readable {
    return createReadStream(this.blobPath(digest));
  }

  /**
   * Opens the ingest of `digest`, after any other writer of it has finished; undefined when the
   * blob is (by then) already present. With `resume` (default) the bytes a crashed or failed
   * earlier writer left are kept and hashed, and `offset` says how many there are.
   */
  async openWriter(digest: string, expectedSize: number | undefined, opts: { resume?: boolean } = {}): Promise<BlobWriter | undefined> {
    const hex = digestHex(digest);
    const unlock = await this.lock(digest);
    try {
      const present = await this.size(digest);
      if (present !== undefined && (expectedSize === undefined || present === expectedSize)) {
        unlock();
        return undefined;
      }
      const dir = join(this.ingestDir, hex);
      await mkdir(dir, { recursive: true });
      const dataPath = join(dir, 'data');
      let hash = createHash('sha256');
      let offset = 0;
      if (opts.resume !== false) {
        offset = await hashFile(dataPath, hash);
        if (expectedSize !== undefined && offset > expectedSize) {
          // More bytes than the blob has: the ingest is garbage, start over.
          hash = createHash('sha256');
          offset = 0;
        }
      }
      const fh = await open(dataPath, offset > 0 ? 'a' : 'w', 0o644);
      return new BlobWriter(this, digest, dir, dataPath, fh, hash, offset, expectedSize, unlock);
    } catch (err) {
      unlock();
      throw err;
    }
  }

  private async lock(digest: string): Promise<() => void> {
    for (let held = this.writing.get(digest); held; held = this.writing.get(digest)) await held;
    let release!: () => void;
    this.writing.set(digest, new Promise<void>((r) => (release = r)));
    return () => {
      this.writing.delete(digest);
      release();
    };
  }

  async delete(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.blobsDir).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => 'sha256:' + n);
  }

  /** Ingests present on disk (digests), for cleanup and tests. */
  async listIngests(): Promise<string[]> {
    const names = await readdir(this.ingestDir).catch(() => [] as string[]);
    return names.map((n) => 'sha256:' + n);
  }

  /** Drops an ingest nobody is writing. */
  async removeIngest(digest: string): Promise<void> {
    if (this.writing.has(digest)) return;
    await rm(join(this.ingestDir, digestHex(digest)), { recursive: true, force: true });
  }

  /** Drops ingests untouched for `maxAgeMs` (downloads abandoned long ago); returns how many. */
  async removeIngestsOlderThan(maxAgeMs: number): Promise<number> {
    let n = 0;
    for (const digest of await this.listIngests()) {
      const dir = join(this.ingestDir, digestHex(digest));
      const st = (await stat(join(dir, 'data')).catch(() => undefined)) ?? (await stat(dir).catch(() => undefined));
      if (st && Date.now() - st.mtimeMs > maxAgeMs && !this.writing.has(digest)) {
        await this.removeIngest(digest);
        n++;
      }
    }
    return n;
  }
}

async function hashFile(path: string, hash: Hash): Promise<number> {
  let n = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  return n;
}

/** One in-progress blob. Exactly one of commit(), abort() or close() ends it. */
export class BlobWriter {
  private written: number;
  private ended = false;

  constructor(
    private readonly store: ContentStore,
    readonly digest: string,
    private readonly dir: string,
    private readonly dataPath: string,
    private readonly fh: FileHandle,
    private readonly hash: Hash,
    /** Bytes that were already in the ingest when it was opened. */
    readonly offset: number,
    private readonly expectedSize: number | undefined,
    private readonly release: () => void,
  ) {
    this.written = offset;
  }

  get size(): number {
    return this.written;
  }

  /** The bytes already in the ingest (to replay them into an unpacker when resuming). */
  existing(): Readable {
    return createReadStream(this.dataPath, { start: 0, end: Math.max(0, this.offset - 1) });
  }

  async append(chunk: Uint8Array): Promise<void> {
    this.hash.update(chunk);
    this.written += chunk.length;
    if (this.expectedSize !== undefined && this.written > this.expectedSize) {
      throw new SkiffError(
        'SKIFF_DIGEST_MISMATCH',
        `content ${this.digest}: received more than the ${this.expectedSize} bytes its descriptor declares`,
      );
    }
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
  }

  /** A pass-through that appends every chunk to this blob before passing it on (backpressure kept). */
  tap(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        this.append(chunk).then(
          () => cb(null, chunk),
          (err: unknown) => cb(err as Error),
        );
      },
    });
  }

  /** Verifies size and digest, then makes the blob visible. A mismatch deletes the ingest. */
  async commit(): Promise<void> {
    if (!this.end()) throw new SkiffError('SKIFF_INTERNAL', `content ${this.digest}: writer already closed`);
    try {
      try {
        await this.fh.sync();
      } finally {
        await this.fh.close();
      }
      const actual = 'sha256:' + this.hash.digest('hex');
      if (this.expectedSize !== undefined && this.written !== this.expectedSize) {
        throw new SkiffError(
          'SKIFF_DIGEST_MISMATCH',
          `content ${this.digest}: got ${this.written} bytes, descriptor says ${this.expectedSize}`,
        );
      }
      if (actual !== this.digest) {
        throw new SkiffError('SKIFF_DIGEST_MISMATCH', `content ${this.digest}: received bytes have digest ${actual}`);
      }
      await rename(this.dataPath, this.store.blobPath(this.digest));
      await fsyncDir(this.store.blobsDir);
      await rm(this.dir, { recursive: true, force: true });
    } catch (err) {
      await rm(this.dir, { recursive: true, force: true });
      throw err;
    } finally {
      this.release();
    }
  }

  /** Drops the ingest entirely. */
  async abort(): Promise<void> {
    if (!this.end()) return;
    await this.fh.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
    this.release();
  }

  /** Keeps the bytes received so far for a later resume. */
  async close(): Promise<void> {
    if (!this.end()) return;
    await this.fh.close().catch(() => undefined);
    this.release();
  }

  private end(): boolean {
    if (this.ended) return false;
    this.ended = true;
    return true;
  }
}
