// Image records: what a pulled image is (id = config digest), the names it goes by, and the
// parts of its config containers need later. One JSON file per image under images/, written
// atomically, under the store lock, once every snapshot it names is committed and synced: a record
// on disk always describes a complete image. (A layer's compressed blob may be absent when its
// snapshot already existed; nothing needs it after unpacking.)
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, writeJSONAtomic, isAtomicTemp } from '../common/atomic.js';
import { logger } from '../common/log.js';
import { digestHex } from './digest.js';
import type { ImageRuntimeConfig } from './oci.js';

const log = logger('images');

export interface LayerRecord {
  digest: string;
  mediaType: string;
  size: number;
  diffID: string;
  chainID: string;
}

export interface ImageRecord {
  version: 1;
  /** Config digest. */
  id: string;
  /** Fully qualified `domain/path:tag`. A tag names at most one image. */
  repoTags: string[];
  /** `domain/path@digest` of the manifest or index that was pulled. */
  repoDigests: string[];
  manifestDigest: string;
  /** The index (manifest list) the manifest was chosen from, when the reference named one. */
  indexDigest?: string;
  configDigest: string;
  /** Compressed bytes: config + layers, as containerd and crictl report image size. */
  size: number;
  layers: LayerRecord[];
  os: string;
  architecture: string;
  variant?: string;
  config: ImageRuntimeConfig;
  pinned: boolean;
  createdAt: string;
}

export class ImageStore {
  private readonly records = new Map<string, ImageRecord>();

  constructor(readonly dir: string) {}

  /** Loads every record; unreadable ones are logged and skipped, never fatal. */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.records.clear();
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (isAtomicTemp(name)) {
        await rm(path, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(await readFile(path, 'utf8')) as ImageRecord;
        if (rec.version !== 1 || typeof rec.id !== 'string') throw new Error(`unknown record version ${String(rec.version)}`);
        this.records.set(rec.id, rec);
      } catch (err) {
        log.error({ err, path }, 'skipping unreadable image record');
      }
    }
  }

  list(): ImageRecord[] {
    return [...this.records.values()].map(copy);
  }

  get(id: string): ImageRecord | undefined {
    const rec = this.records.get(id);
    return rec && copy(rec);
  }

  byTag(tag: string): ImageRecord | undefined {
    for (const rec of this.records.values()) if (rec.repoTags.includes(tag)) return copy(rec);
    return undefined;
  }

  byRepoDigest(ref: string): ImageRecord | undefined {
    for (const rec of this.records.values()) if (rec.repoDigests.includes(ref)) return copy(rec);
    return undefined;
  }

  /** Image ids starting with `prefix` (hex, with or without `sha256:`). */
  byIdPrefix(prefix: string): ImageRecord[] {
    const p = prefix.startsWith('sha256:') ? prefix : 'sha256:' + prefix;
    return [...this.records.values()].filter((r) => r.id.startsWith(p)).map(copy);
  }

  /** Writes the record, then swaps it in memory (containerd's updateSync order). */
  async put(rec: ImageRecord): Promise<void> {
    await writeJSONAtomic(this.path(rec.id), rec);
    this.records.set(rec.id, copy(rec));
  }

  /** Removes the record durably (the directory entry is synced) before the caller frees its content. */
  async delete(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
    await fsyncDir(this.dir);
    this.records.delete(id);
  }

  private path(id: string): string {
    return join(this.dir, digestHex(id) + '.json');
  }
}

function copy(rec: ImageRecord): ImageRecord {
  return structuredClone(rec);
}
