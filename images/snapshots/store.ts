// Snapshot store: one unpacked layer per directory, keyed by chainID so that images sharing a
// layer stack share its snapshots (image-spec config.md "Layer ChainID"). A snapshot is prepared
// in a temp directory, filled, and committed by an atomic rename; the snapshotter only *describes*
// the lower dirs of a stack — whoever mounts it does the mounting (containerd `[]mount.Mount`).
//
//   snapshots/<chainID hex>/fs         the layer's files, overlayfs whiteouts included
//   snapshots/<chainID hex>/info.json  { chainID, diffID, parent, size, createdAt }
//   snapshots/.prep-<random>/          in preparation; removed at startup if a crash left it
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../common/errors.js';
import { fsyncDir } from '../../common/atomic.js';
import { digestHex } from '../digest.js';

export interface SnapshotInfo {
  chainID: string;
  diffID: string;
  parent?: string;
  /** Bytes of regular-file content in the layer. */
  size: number;
  createdAt: string;
}

export interface PreparedSnapshot {
  /** Directory to fill with the layer's files. */
  fs: string;
  dir: string;
}

const PREP_PREFIX = '.prep-';

export class SnapshotStore {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  dir(chainID: string): string {
    return join(this.root, digestHex(chainID));
  }

  fsPath(chainID: string): string {
    return join(this.dir(chainID), 'fs');
  }

  async info(chainID: string): Promise<SnapshotInfo | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir(chainID), 'info.json'), 'utf8')) as SnapshotInfo;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async has(chainID: string): Promise<boolean> {
    return (await this.info(chainID)) !== undefined;
  }

  async prepare(): Promise<PreparedSnapshot> {
    const dir = join(this.root, PREP_PREFIX + randomBytes(8).toString('hex'));
    const fs = join(dir, 'fs');
    await mkdir(fs, { recursive: true, mode: 0o755 });
    return { dir, fs };
  }

  /** Makes a prepared snapshot visible under its chainID; if one already exists, keeps that one. */
  async commit(prepared: PreparedSnapshot, info: SnapshotInfo): Promise<void> {
    await writeFile(join(prepared.dir, 'info.json'), JSON.stringify(info, null, 2) + '\n');
    try {
      await rename(prepared.dir, this.dir(info.chainID));
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await this.abort(prepared);
      return;
    }
    await fsyncDir(this.root);
  }

  async abort(prepared: PreparedSnapshot): Promise<void> {
    await rm(prepared.dir, { recursive: true, force: true });
  }

  async remove(chainID: string): Promise<void> {
    // Rename first so that a crash mid-delete never leaves a half-deleted snapshot under its key.
    const doomed = join(this.root, PREP_PREFIX + 'rm-' + randomBytes(8).toString('hex'));
    try {
      await rename(this.dir(chainID), doomed);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => 'sha256:' + n);
  }

  /** Removes preparations a crashed daemon left behind; returns how many. */
  async removeStalePreparations(): Promise<number> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const stale = names.filter((n) => n.startsWith(PREP_PREFIX));
    await Promise.all(stale.map((n) => rm(join(this.root, n), { recursive: true, force: true })));
    return stale.length;
  }

  /** Overlay lowerdirs of a stack, topmost first (overlayfs `lowerdir=` order). */
  lowerDirs(chainIDs: readonly string[]): string[] {
    return chainIDs.map((c) => this.fsPath(c)).reverse();
  }
}
