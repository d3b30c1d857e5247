// The result cache: for each attachment (network, container id, interface) the configuration list
// it was added with, the CNI_ARGS and capability args, and the final ADD result — what DEL and
// CHECK need after a restart or after the conf dir changed (CNI spec: the runtime passes the
// cached result as prevResult). One file per attachment, `<cacheDir>/results/<network>-<id>-<if>`,
// in libcni's cniCacheV1 layout (config as base64 bytes, as Go encodes []byte), so cnitool-style
// tools can read it. skiff writes the record before ADD too, without a result: an ADD that a crash
// interrupted still leaves the config to DEL it with.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAtomicTemp, writeFileAtomic } from '../../common/atomic.js';
import { errnoCode, errorMessage } from '../../common/errors.js';

export const CACHE_KIND = 'cniCacheV1';

export interface CacheRecord {
  kind: typeof CACHE_KIND;
  containerId: string;
  /** The network configuration list, base64 (Go []byte). */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  /** The final ADD result; absent while the ADD has not finished. */
  result?: Record<string, unknown>;
}

export interface CacheEntry {
  path: string;
  record?: CacheRecord;
  /** Why the file is not a usable record. */
  invalid?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validate(v: unknown): CacheRecord {
  if (!isObject(v)) throw new Error('not a JSON object');
  if (v.kind !== CACHE_KIND) throw new Error(`kind ${JSON.stringify(v.kind)} is not ${CACHE_KIND}`);
  for (const k of ['containerId', 'config', 'ifName', 'networkName'] as const) {
    if (typeof v[k] !== 'string' || v[k] === '') throw new Error(`no ${k}`);
  }
  if (v.result !== undefined && !isObject(v.result)) throw new Error('result is not an object');
  return v as unknown as CacheRecord;
}

export class ResultCache {
  readonly dir: string;

  constructor(cacheDir: string) {
    this.dir = join(cacheDir, 'results');
  }

  path(network: string, containerId: string, ifName: string): string {
    return join(this.dir, `${network}-${containerId}-${ifName}`);
  }

  async write(rec: CacheRecord): Promise<string> {
    const path = this.path(rec.networkName, rec.containerId, rec.ifName);
    await writeFileAtomic(path, JSON.stringify(rec), 0o600);
    return path;
  }

  async read(path: string): Promise<CacheEntry | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return { path, record: validate(JSON.parse(text)) };
    } catch (err) {
      return { path, invalid: errorMessage(err) };
    }
  }

  /** Every file in the cache: records, and files that are not (with why). */
  async list(): Promise<CacheEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const out: CacheEntry[] = [];
    for (const name of names.sort()) {
      const path = join(this.dir, name);
      if (isAtomicTemp(name)) {
        out.push({ path, invalid: 'an unfinished write' });
        continue;
      }
      const e = await this.read(path);
      if (e) out.push(e);
    }
    return out;
  }

  /** The records of one attachment, whatever network they were added to. */
  async find(containerId: string, ifName: string): Promise<CacheEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const suffix = `-${containerId}-${ifName}`;
    const out: CacheEntry[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith(suffix) || name.length === suffix.length || isAtomicTemp(name)) continue;
      const e = await this.read(join(this.dir, name));
      if (e?.record && e.record.containerId === containerId && e.record.ifName === ifName) out.push(e);
    }
    return out;
  }

  async remove(path: string): Promise<void> {
    await rm(path, { force: true });
  }
}

export function encodeConfig(json: string): string {
  return Buffer.from(json, 'utf8').toString('base64');
}

export function decodeConfig(b64: string): string {
  return Buffer.from(b64, 'base64').toString('utf8');
}
