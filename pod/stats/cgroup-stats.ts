// Reads the usage counters of one cgroup, v1 or v2, from a handful of small files — what
// containerd's cgroups library and cAdvisor read, and nothing more, so that a list of a hundred
// containers stays a few hundred reads. Working set is usage minus inactive file pages, floored at
// 0 (cAdvisor, containerd getWorkingSet); RSS is total_rss on v1 and anon on v2 (cAdvisor's
// libcontainer handler); a limit above 2^62 (v1) or "max" (v2) is no limit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupDirs } from './cgroup-dirs.js';

export interface CpuSample {
  /** Total CPU time of the cgroup in ns (cpuacct.usage; v2 usage_usec × 1000). */
  usageNs: bigint;
  /** User and system time (ns): v1 cpuacct.stat (USER_HZ ticks), v2 user_usec/system_usec. */
  userNs: bigint;
  systemNs: bigint;
  /** CFS enforcement periods elapsed and throttled, and the time throttled (ns). */
  periods: number;
  throttledPeriods: number;
  throttledNs: bigint;
}

export interface MemorySample {
  usage: number;
  /** Absent when unlimited. */
  limit?: number;
  workingSet: number;
  rss: number;
  cache: number;
  inactiveFile: number;
  pgfault: number;
  pgmajfault: number;
}

export interface CgroupSample {
  cpu?: CpuSample;
  memory?: MemorySample;
  /** pids.current: tasks (threads included) in the cgroup. */
  pids?: number;
}

/** cAdvisor's maxMemorySize: a v1 limit above this is the kernel's rounded "unlimited". */
const UNLIMITED = 2 ** 62;
/** cpuacct.stat counts USER_HZ ticks, 100 per second in the kernel's user ABI. */
const NS_PER_TICK = 10_000_000n;

/** Reads what exists; undefined when none of the cgroup's files do (the cgroup is gone). */
export function readCgroupStats(dirs: CgroupDirs): CgroupSample | undefined {
  const s = dirs.version === 2 ? readV2(dirs.dir) : readV1(dirs);
  return s.cpu || s.memory || s.pids !== undefined ? s : undefined;
}

function readV1(d: Extract<CgroupDirs, { version: 1 }>): CgroupSample {
  const [usage, acctStat, cpuStat, memUsage, memLimit, memStat, pids] = [
    d.cpuacct ? text(join(d.cpuacct, 'cpuacct.usage')) : undefined,
    d.cpuacct ? text(join(d.cpuacct, 'cpuacct.stat')) : undefined,
    d.cpu ? text(join(d.cpu, 'cpu.stat')) : undefined,
    d.memory ? text(join(d.memory, 'memory.usage_in_bytes')) : undefined,
    d.memory ? text(join(d.memory, 'memory.limit_in_bytes')) : undefined,
    d.memory ? text(join(d.memory, 'memory.stat')) : undefined,
    d.pids ? text(join(d.pids, 'pids.current')) : undefined,
  ];
  const out: CgroupSample = {};
  if (usage !== undefined) {
    const st = keyed(cpuStat);
    out.cpu = {
      usageNs: big(usage),
      userNs: bigKey(acctStat, 'user') * NS_PER_TICK,
      systemNs: bigKey(acctStat, 'system') * NS_PER_TICK,
      periods: st.nr_periods ?? 0,
      throttledPeriods: st.nr_throttled ?? 0,
      throttledNs: bigKey(cpuStat, 'throttled_time'),
    };
  }
  if (memUsage !== undefined) {
    const st = keyed(memStat);
    const limit = num(memLimit ?? '');
    out.memory = memory(num(memUsage), limit > UNLIMITED ? undefined : limit, {
      inactiveFile: st.total_inactive_file ?? 0,
      rss: st.total_rss ?? 0,
      cache: st.total_cache ?? 0,
      pgfault: st.total_pgfault ?? 0,
      pgmajfault: st.total_pgmajfault ?? 0,
    });
  }
  if (pids !== undefined) out.pids = num(pids);
  return out;
}

function readV2(dir: string): CgroupSample {
  const [cpuStat, memCurrent, memMax, memStat, pids] = ['cpu.stat', 'memory.current', 'memory.max', 'memory.stat', 'pids.current'].map((f) => text(join(dir, f)));
  const out: CgroupSample = {};
  if (cpuStat !== undefined) {
    const st = keyed(cpuStat);
    out.cpu = {
      usageNs: bigKey(cpuStat, 'usage_usec') * 1000n,
      userNs: bigKey(cpuStat, 'user_usec') * 1000n,
      systemNs: bigKey(cpuStat, 'system_usec') * 1000n,
      periods: st.nr_periods ?? 0,
      throttledPeriods: st.nr_throttled ?? 0,
      throttledNs: bigKey(cpuStat, 'throttled_usec') * 1000n,
    };
  }
  if (memCurrent !== undefined) {
    const st = keyed(memStat);
    const max = (memMax ?? 'max').trim();
    out.memory = memory(num(memCurrent), max === 'max' ? undefined : num(max), {
      inactiveFile: st.inactive_file ?? 0,
      rss: st.anon ?? 0,
      cache: st.file ?? 0,
      pgfault: st.pgfault ?? 0,
      pgmajfault: st.pgmajfault ?? 0,
    });
  }
  if (pids !== undefined) out.pids = num(pids);
  return out;
}

function memory(usage: number, limit: number | undefined, o: Omit<MemorySample, 'usage' | 'limit' | 'workingSet'>): MemorySample {
  return { usage, ...(limit !== undefined ? { limit } : {}), workingSet: Math.max(0, usage - o.inactiveFile), ...o };
}

/** Bytes the cgroup may still use before its limit: limit − working set (kubelet's helper.go), floored at 0. */
export function availableBytes(m: MemorySample): number | undefined {
  return m.limit === undefined ? undefined : Math.max(0, m.limit - m.workingSet);
}

/**
 * A cgroup file's text; undefined when it (or its cgroup) does not exist. Read synchronously on
 * purpose: a cgroup file is a few hundred bytes the kernel formats on read, about 10 µs, while an
 * fs/promises read is four thread-pool round trips (open, fstat, read, close) — a hundred
 * containers' 700 reads took 110 ms that way and take a few ms this way.
 */
function text(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENODEV: a cgroup being removed; EINVAL/EOPNOTSUPP: a file a kernel lists but cannot read.
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV' || code === 'EINVAL' || code === 'EOPNOTSUPP') return undefined;
    throw err;
  }
}

/** "key value" lines (cpu.stat, memory.stat) as numbers. */
export function keyed(t: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!t) return out;
  for (const line of t.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) out[line.slice(0, sp)] = num(line.slice(sp + 1));
  }
  return out;
}

const KEY_RES = new Map<string, RegExp>();

/** A "key value" line's value, exact (a bigint: ns and µs counters can pass 2^53). */
function bigKey(t: string | undefined, key: string): bigint {
  if (!t) return 0n;
  let re = KEY_RES.get(key);
  if (!re) KEY_RES.set(key, (re = new RegExp(`^${key} (\\d+)$`, 'm')));
  const m = re.exec(t);
  return m ? BigInt(m[1]) : 0n;
}

function num(t: string): number {
  const n = Number(t.trim());
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

function big(t: string): bigint {
  const s = t.trim();
  return /^\d+$/.test(s) ? BigInt(s) : 0n;
}
