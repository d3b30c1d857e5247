// Small host facts and helpers for pods: running the native helpers, process start times (to
// tell a live pid from a reused one), waiting for a process to go away, cgroup v1/v2 dirs.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SkiffError, errnoCode } from '../common/errors.js';
import { unmount } from '../native/sys.js';
import { unifiedRoot } from './cgroups/paths.js';
import type { CgroupLayout } from './runtime/cgroup-layout.js';

/** Runs a native helper; its stderr line becomes the error message. */
export function runHelper(binary: string, args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = stderr.trim() || err.message;
      reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${what}: ${why}`, { cause: err }));
    });
  });
}

/** State (field 3) and start time (field 22, clock ticks since boot) of /proc/PID/stat, or undefined if gone. */
async function readStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined;
    throw err;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], startTime: rest[19] }; // field 22 is the 20th after comm
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined if gone. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  return (await readStat(pid))?.startTime;
}

/** True when `pid` is alive (not a zombie) and is the process that started at `startTime`. */
export async function isSameProcess(pid: number | undefined, startTime: string | undefined): Promise<boolean> {
  if (!pid) return false;
  const st = await readStat(pid);
  if (!st || st.state === 'Z') return false;
  return startTime === undefined || st.startTime === startTime;
}

/** Waits until `pid` (started at `startTime`) is gone or a zombie; false on timeout. */
export async function waitGone(pid: number, startTime: string | undefined, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (await isSameProcess(pid, startTime)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** The directories of a cgroup path, one per v1 hierarchy (or the single v2 one). */
export function cgroupDirs(layout: CgroupLayout, path: string): string[] {
  if (layout.mode === 'unified') return [join(unifiedRoot(layout), path)];
  return [...new Set(Object.values(layout.v1Controllers))].map((mnt) => join(mnt, path));
}

export async function createCgroup(layout: CgroupLayout, path: string): Promise<string[]> {
  const dirs = cgroupDirs(layout, path);
  for (const d of dirs) await mkdir(d, { recursive: true });
  const cpuset = layout.mode === 'unified' ? undefined : layout.v1Controllers.cpuset;
  if (cpuset) await inheritCpuset(cpuset, path);
  return dirs.map((d) => join(d, 'cgroup.procs'));
}

/**
 * cgroup v1 cpuset: a new cgroup starts with empty cpuset.cpus/mems, and attaching a process to it
 * fails with ENOSPC. Fill each level from its parent, top down, as runc does.
 */
async function inheritCpuset(mountPoint: string, path: string): Promise<void> {
  let parent = mountPoint;
  for (const part of path.split('/').filter(Boolean)) {
    const dir = join(parent, part);
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const mine = (await readFile(join(dir, file), 'utf8').catch(() => '')).trim();
      if (mine) continue;
      const theirs = (await readFile(join(parent, file), 'utf8').catch(() => '')).trim();
      if (theirs) await writeFile(join(dir, file), theirs);
    }
    parent = dir;
  }
}

/** Removes a cgroup's dirs (they must be empty of processes); missing ones are fine. */
export async function removeCgroup(layout: CgroupLayout, path: string): Promise<void> {
  for (const d of cgroupDirs(layout, path)) {
    for (let i = 0; ; i++) {
      try {
        await rmdir(d);
        break;
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT') break;
        // EBUSY while the last process is still being torn down: retry briefly.
        if (code !== 'EBUSY' || i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }
}

/** Removes a namespace pin (a bind mount of /proc/<pid>/ns/<kind> on a file). Idempotent. */
export async function unpinNamespace(path: string): Promise<void> {
  unmount(path);
  await rm(path, { force: true });
}

/**
 * Live skiff-monitor processes of one skiffd (their --exit-file lies under `bundlesDir`), by the
 * container id on their command line (`--id ID`): how a restarted skiffd finds monitors that no
 * record names (a crash between spawn and record). Another skiffd's monitors are never listed.
 */
export async function findMonitors(bundlesDir: string, procDir = '/proc'): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for (const name of await readdir(procDir).catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(join(procDir, name, 'cmdline'), 'utf8').catch(() => '')).split('\0');
    if (!argv[0]?.endsWith('/skiff-monitor') && argv[0] !== 'skiff-monitor') continue;
    const i = argv.indexOf('--id');
    const id = i >= 0 ? argv[i + 1] : undefined;
    const exitFile = argv[argv.indexOf('--exit-file') + 1] ?? '';
    if (id && /^[a-f0-9]{64}$/.test(id) && exitFile.startsWith(join(bundlesDir, id) + '/')) found.set(id, Number(name));
  }
  return found;
}
