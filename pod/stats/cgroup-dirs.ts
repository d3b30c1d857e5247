// Where the stats reader finds a cgroup's files: one directory per v1 controller it reads (cpu,
// cpuacct, memory, pids), or the one v2 directory, through pod/cgroups/paths.ts. A container record
// from before every container had a cgroupsPath (the OCI runtime picked one) is found from its
// init's /proc/<pid>/cgroup.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { controllerDir, unifiedDir, unifiedRoot } from '../cgroups/paths.js';
import type { CgroupLayout } from '../runtime/cgroup-layout.js';

export type CgroupDirs =
  | { version: 1; cpu?: string; cpuacct?: string; memory?: string; pids?: string }
  | { version: 2; dir: string };

/** The controllers the stats reader reads on v1. */
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'] as const;

export function cgroupDirs(layout: CgroupLayout, cgroupsPath: string): CgroupDirs {
  const v2 = unifiedDir(layout, cgroupsPath);
  if (v2) return { version: 2, dir: v2 };
  const dirs: CgroupDirs = { version: 1 };
  for (const c of V1_CONTROLLERS) {
    const dir = controllerDir(layout, c, cgroupsPath);
    if (dir) dirs[c] = dir;
  }
  return dirs;
}

/**
 * The cgroup dirs of a live process from /proc/<pid>/cgroup (proc(5): "id:controllers:path" per
 * hierarchy; v2 is "0::path"). Undefined when the process is gone.
 */
export async function processCgroupDirs(layout: CgroupLayout, pid: number, procDir = '/proc'): Promise<CgroupDirs | undefined> {
  const text = await readFile(join(procDir, String(pid), 'cgroup'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const paths = parseProcCgroup(text);
  if (layout.mode === 'unified') {
    const p = paths.get('');
    return p === undefined ? undefined : { version: 2, dir: join(unifiedRoot(layout), p) };
  }
  const dirs: CgroupDirs = { version: 1 };
  for (const c of V1_CONTROLLERS) {
    const mnt = layout.v1Controllers[c];
    const p = paths.get(c);
    if (mnt && p !== undefined) dirs[c] = join(mnt, p);
  }
  return dirs;
}

/** controller ("" for the v2 hierarchy) → path, from /proc/<pid>/cgroup text. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const path = line.slice(second + 1);
    for (const c of line.slice(first + 1, second).split(',')) out.set(c, path);
  }
  return out;
}

/** The cgroup path as cAdvisor names a container (its `id` label): the v2 path, else the memory one. */
export function cgroupName(dirs: CgroupDirs, layout: CgroupLayout): string {
  if (dirs.version === 2) return dirs.dir.slice(unifiedRoot(layout).length) || '/';
  const mnt = layout.v1Controllers.memory ?? layout.v1Controllers.cpuacct;
  const dir = dirs.memory ?? dirs.cpuacct;
  return mnt && dir ? dir.slice(mnt.length) || '/' : '/';
}
