// A directory of versioned JSON records, one file per object, written atomically (temp, fsync,
// rename, fsync dir) *before* the in-memory copy is swapped — containerd's updateSync order — so
// what skiffd answers never runs ahead of what a restarted skiffd would read back. Updates of one
// record are serialized; get() and list() hand out copies.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, isAtomicTemp, writeJSONAtomic } from '../../common/atomic.js';
import { SkiffError } from '../../common/errors.js';
import { logger } from '../../common/log.js';

const log = logger('store');

export interface Versioned {
  version: number;
  id: string;
}

export class RecordStore<T extends Versioned> {
  private readonly records = new Map<string, T>();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    readonly dir: string,
    readonly kind: string,
    private readonly version: number,
  ) {}

  /** Reads every record; unreadable ones are logged and returned as `broken` (never fatal). */
  async load(): Promise<{ loaded: number; broken: string[] }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.records.clear();
    const broken: string[] = [];
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (isAtomicTemp(name)) {
        await rm(path, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(await readFile(path, 'utf8')) as T;
        if (rec.version !== this.version || `${rec.id}.json` !== name) throw new Error(`unexpected version ${rec.version} or id ${rec.id}`);
        this.records.set(rec.id, rec);
      } catch (err) {
        log.error({ err, path, kind: this.kind }, 'skipping unreadable record');
        broken.push(name);
      }
    }
    return { loaded: this.records.size, broken };
  }

  get(id: string): T | undefined {
    const r = this.records.get(id);
    return r && structuredClone(r);
  }

  /** By full id or a unique prefix of one (crictl passes short ids); an ambiguous prefix is an error. */
  find(idOrPrefix: string): T | undefined {
    const exact = this.get(idOrPrefix);
    if (exact) return exact;
    if (!/^[a-f0-9]{1,63}$/.test(idOrPrefix)) return undefined;
    const matches = [...this.records.values()].filter((r) => r.id.startsWith(idOrPrefix));
    if (matches.length > 1) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${this.kind} id prefix "${idOrPrefix}" is ambiguous`);
    return matches[0] && structuredClone(matches[0]);
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  list(): T[] {
    return [...this.records.values()].map((r) => structuredClone(r));
  }

  /** Creates a record; it must not exist yet. */
  async create(rec: T): Promise<T> {
    return this.serialize(rec.id, async () => {
      if (this.records.has(rec.id)) throw new SkiffError('SKIFF_ALREADY_EXISTS', `${this.kind} "${rec.id}" already exists`);
      await writeJSONAtomic(this.path(rec.id), rec);
      this.records.set(rec.id, structuredClone(rec));
      return structuredClone(rec);
    });
  }

  /**
   * Applies `fn` to a copy of the record and persists the result, then swaps it in; `fn` may
   * throw to abort. Returns the new record. A missing record is SKIFF_NOT_FOUND.
   */
  async update(id: string, fn: (rec: T) => void | Promise<void>): Promise<T> {
    return this.serialize(id, async () => {
      const cur = this.records.get(id);
      if (!cur) throw new SkiffError('SKIFF_NOT_FOUND', `${this.kind} "${id}" not found`);
      const next = structuredClone(cur);
      await fn(next);
      await writeJSONAtomic(this.path(id), next);
      this.records.set(id, next);
      return structuredClone(next);
    });
  }

  /** Removes the record (durably); a missing one is not an error. */
  async delete(id: string): Promise<void> {
    await this.serialize(id, async () => {
      await rm(this.path(id), { force: true });
      await fsyncDir(this.dir);
      this.records.delete(id);
    });
  }

  private path(id: string): string {
    if (!/^[a-f0-9]{64}$/.test(id)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${this.kind} id "${id}" is not 64 hex characters`);
    return join(this.dir, `${id}.json`);
  }

  private serialize<R>(id: string, fn: () => Promise<R>): Promise<R> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }
}
