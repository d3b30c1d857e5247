// The CNI conf dir: the pod network is its first *.conflist, *.conf or *.json by name (byte order,
// as libcni's ConfFiles + sort.Strings and containerd's go-cni pick it); files that do not parse
// are skipped with the reason logged. Re-read only when it changed: each call stats the directory
// and the files looked at last time (adding, removing or renaming a file changes the directory's
// mtime; editing one in place changes its own), so an unchanged dir costs a few stat calls.
import { readdir, readFile, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { SkiffError, errnoCode, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { CONF_EXTENSIONS, parseConfFile, type CniNetworkConfigList } from './config.js';

const log = logger('cni');

export interface ConfDirLoad {
  /** The network config list in use, if any file parsed. */
  chosen?: CniNetworkConfigList;
  /** Files before the chosen one (by name) that were skipped, and why. */
  skipped: { file: string; reason: string }[];
}

/**
 * Timestamps come from a coarse clock (a jiffy or so): a file written again within the same tick
 * as our read keeps its mtime. A load that saw a timestamp this close to its own start is not
 * trusted and is redone on the next call (git's "racily clean" entries).
 */
const RACY_NS = 50_000_000n;

function fingerprint(st: BigIntStats | undefined): string {
  return st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : '-';
}

async function statOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Reads the dir once: the first valid config by name, and what was skipped before it. */
export async function loadConfDir(dir: string): Promise<ConfDirLoad & { seen: Map<string, BigIntStats | undefined> }> {
  const seen = new Map<string, BigIntStats | undefined>(); // path → its stat, taken before reading it
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => !e.isDirectory() && CONF_EXTENSIONS.some((ext) => e.name.endsWith(ext)))
      .map((e) => e.name)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return { skipped: [], seen };
    throw new SkiffError('SKIFF_NETWORK_FAILED', `read CNI conf dir ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  const skipped: { file: string; reason: string }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const st = await statOrUndefined(path);
    seen.set(path, st);
    if (!st) continue; // removed since readdir: the dir's mtime changed, the next call re-reads
    if (!st.isFile()) {
      skipped.push({ file: path, reason: 'not a regular file' });
      continue;
    }
    try {
      const chosen = parseConfFile(name, await readFile(path, 'utf8'), path);
      if (chosen) return { chosen, skipped, seen };
    } catch (err) {
      skipped.push({ file: path, reason: errorMessage(err) });
    }
  }
  return { skipped, seen };
}

/** The conf dir with its last load, re-read when something in it changed. */
export class ConfDir {
  private last?: { dirKey: string; seen: Map<string, string>; racy: boolean; load: ConfDirLoad };
  private loading?: Promise<ConfDirLoad>;

  constructor(readonly dir: string) {}

  /** The current load; concurrent callers share one read. */
  async current(): Promise<ConfDirLoad> {
    if (this.loading) return this.loading;
    const p = this.refresh();
    this.loading = p;
    try {
      return await p;
    } finally {
      if (this.loading === p) this.loading = undefined;
    }
  }

  private async refresh(): Promise<ConfDirLoad> {
    const startNs = BigInt(Date.now()) * 1_000_000n;
    const dirSt = await statOrUndefined(this.dir);
    const dirKey = fingerprint(dirSt);
    if (this.last && !this.last.racy && this.last.dirKey === dirKey && (await this.unchanged(this.last.seen))) {
      return this.last.load;
    }
    const { seen: stats, ...load } = await loadConfDir(this.dir);
    const seen = new Map<string, string>();
    let racy = dirSt !== undefined && (dirSt.mtimeNs > startNs - RACY_NS || dirSt.ctimeNs > startNs - RACY_NS);
    for (const [path, st] of stats) {
      seen.set(path, fingerprint(st));
      if (st && (st.mtimeNs > startNs - RACY_NS || st.ctimeNs > startNs - RACY_NS)) racy = true;
    }
    // The same content read again keeps the same objects (and is not logged again).
    if (this.last && this.describe(this.last.load) === this.describe(load)) {
      this.last = { dirKey, seen, racy, load: this.last.load };
      return this.last.load;
    }
    this.last = { dirKey, seen, racy, load };
    this.report(load);
    return load;
  }

  private async unchanged(seen: Map<string, string>): Promise<boolean> {
    for (const [path, fp] of seen) {
      if (fingerprint(await statOrUndefined(path)) !== fp) return false;
    }
    return true;
  }

  private describe(load: ConfDirLoad): string {
    return JSON.stringify([load.chosen?.source, load.chosen?.json, load.skipped]);
  }

  /** Logged once per change, not per call. */
  private report(load: ConfDirLoad): void {
    for (const s of load.skipped) log.warn({ file: s.file, reason: s.reason }, 'CNI config file skipped');
    if (load.chosen) {
      log.info({ file: load.chosen.source, network: load.chosen.name, cniVersion: load.chosen.cniVersion }, 'CNI network config loaded');
    } else {
      log.warn({ dir: this.dir }, 'no CNI network config found');
    }
  }
}
