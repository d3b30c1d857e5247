// Disk usage of a directory tree (bytes allocated, as du counts them, and inodes), for
// ImageFsInfo. Walks with lstat and counts each inode once so hardlinks are not double-counted.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../common/errors.js';

export interface Usage {
  bytes: number;
  inodes: number;
}

export async function diskUsage(root: string): Promise<Usage> {
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const walk = async (path: string): Promise<void> => {
    let st;
    try {
      st = await lstat(path, { bigint: false });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return; // removed while we walked
      throw err;
    }
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    inodes++;
    bytes += st.blocks * 512;
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = await readdir(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    for (const n of names) await walk(join(path, n));
  };
  await walk(root);
  return { bytes, inodes };
}
