// A container's cgroup resources and OOM score from the CRI LinuxContainerResources — containerd's
// WithResources and WithOOMScoreAdj (internal/cri/opts/spec_linux_opts.go) — checked first, so a
// bad value is refused with its field named instead of failing in the runtime. The same functions
// build the JSON of `runtime update --resources` (UpdateContainerResources), so create and update
// agree on what each field means:
// - a zero (unset) field leaves what is there: an update changes only what it names, as in containerd;
// - a memory limit without a swap limit sets swap = limit (no swap), when the host has a swap
//   controller (containerd: "swap/memory limit should be equal to prevent container from swapping");
// - cpu shares stay shares: crun and runc convert them to cpu.weight on cgroup v2;
// - hugepage limits are dropped when the host has no hugetlb controller (containerd's default
//   tolerate_missing_hugetlb_controller = true), refused for a page size the host does not have;
// - `unified` (cgroup v2 files) is refused on a cgroup v1 host: no runtime can apply it there;
// - CRI has no pids limit per container: kubelet limits pids on the pod cgroup; on cgroup v2
//   `unified: {"pids.max": "N"}` sets one.
import type * as v1 from '../../cri/gen/v1.js';
import type { LinuxHugepageLimit, LinuxResources } from './oci-spec.js';
import { invalid, type SpecOption } from './option.js';
import type { ContainerSpecInput, ResourceHost } from './types.js';

/** Kernel bounds: cpu.shares 2..262144 (v1), cpu.cfs_period_us 1 ms..1 s, quota ≥ 1 ms and ≤ max_cfs_runtime. */
export const LIMITS = {
  SHARES_MIN: 2n,
  SHARES_MAX: 262144n,
  PERIOD_MIN: 1000n,
  PERIOD_MAX: 1_000_000n,
  QUOTA_MIN: 1000n,
  /** kernel/sched/core.c max_cfs_runtime: ((1 << 44) - 1) ns in µs. */
  QUOTA_MAX: 17_592_186_044n,
  /** Byte counts above 2^53 - 1 (8 PiB) are beyond any host, and beyond an exact JSON number. */
  BYTES_MAX: BigInt(Number.MAX_SAFE_INTEGER),
  OOM_MIN: -1000n,
  OOM_MAX: 1000n,
} as const;

export type Fail = (message: string) => Error;

/** int64 on the wire, a decimal string once decoded; '' is 0. */
function int64(value: string | number | undefined, field: string, fail: Fail): bigint {
  const s = String(value ?? '0') || '0';
  if (!/^-?\d{1,20}$/.test(s)) throw fail(`${field} "${s}" is not an integer`);
  return BigInt(s);
}

function range(v: bigint, field: string, min: bigint, max: bigint, fail: Fail, unit = ''): void {
  if (v < min || v > max) throw fail(`${field} ${v} is out of range: must be 0 (unset) or ${min}..${max}${unit}`);
}

/** A cpuset list: "0-3,5,7-8", each range ascending (cpuset(7) "List format"). */
export function validCpuset(list: string): boolean {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) return false;
  return list.split(',').every((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined || a <= b;
  });
}

/** "2MB", "1GB", "64KB": hugepage sizes as kubelet spells them. */
export function hugepageSizeName(bytes: number): string {
  const units: [string, number][] = [['GB', 1 << 30], ['MB', 1 << 20], ['KB', 1 << 10]];
  for (const [u, n] of units) if (bytes % n === 0) return `${bytes / n}${u}`;
  return `${bytes}B`;
}

/**
 * Merges the CRI resources `r` into `target` (an OCI LinuxResources, changed in place): each
 * non-zero field replaces the one there, as containerd's WithResources does on a copy of the
 * spec. Throws `fail(...)` naming `${prefix}<field>` on a bad value; nothing is changed then.
 */
export function mergeResources(target: LinuxResources, r: v1.LinuxContainerResources__Output, host: ResourceHost, fail: Fail, prefix = ''): LinuxResources {
  const f = (name: string): string => prefix + name;
  const period = int64(r.cpu_period, f('cpu_period'), fail);
  const quota = int64(r.cpu_quota, f('cpu_quota'), fail);
  const shares = int64(r.cpu_shares, f('cpu_shares'), fail);
  const memory = int64(r.memory_limit_in_bytes, f('memory_limit_in_bytes'), fail);
  const swap = int64(r.memory_swap_limit_in_bytes, f('memory_swap_limit_in_bytes'), fail);
  if (period !== 0n) range(period, f('cpu_period'), LIMITS.PERIOD_MIN, LIMITS.PERIOD_MAX, fail, ' µs');
  // -1 is "no quota" (runtime-spec, and what cpu.cfs_quota_us reads when unlimited).
  if (quota !== 0n && quota !== -1n) {
    if (quota < 0n) throw fail(`${f('cpu_quota')} ${quota} is negative: must be 0 (unset), -1 (no limit) or ${LIMITS.QUOTA_MIN}..${LIMITS.QUOTA_MAX} µs`);
    range(quota, f('cpu_quota'), LIMITS.QUOTA_MIN, LIMITS.QUOTA_MAX, fail, ' µs');
  }
  if (shares !== 0n) range(shares, f('cpu_shares'), LIMITS.SHARES_MIN, LIMITS.SHARES_MAX, fail);
  if (memory < 0n) throw fail(`${f('memory_limit_in_bytes')} ${memory} is negative`);
  if (memory > LIMITS.BYTES_MAX) throw fail(`${f('memory_limit_in_bytes')} ${memory} is absurd: over ${LIMITS.BYTES_MAX} bytes (8 PiB)`);
  if (swap < -1n) throw fail(`${f('memory_swap_limit_in_bytes')} ${swap} is negative: must be 0 (unset), -1 (no limit) or a byte count`);
  if (swap > LIMITS.BYTES_MAX) throw fail(`${f('memory_swap_limit_in_bytes')} ${swap} is absurd: over ${LIMITS.BYTES_MAX} bytes (8 PiB)`);
  for (const field of ['cpuset_cpus', 'cpuset_mems'] as const) {
    if (r[field] && !validCpuset(r[field])) throw fail(`${f(field)} "${r[field]}" is not a cpuset list like "0-3,5"`);
  }
  const hugepages = hugepageLimits(r.hugepage_limits ?? [], host, fail, f('hugepage_limits'));
  const unified = r.unified ?? {};
  if (Object.keys(unified).length > 0) {
    if (!host.cgroupV2) throw fail(`${f('unified')} ${JSON.stringify(unified)}: cgroup v2 files cannot be set on this host, which has cgroup v1`);
    for (const [key, value] of Object.entries(unified)) {
      if (!/^[a-z_]+\.[a-z0-9_.]+$/.test(key) || key.includes('..')) throw fail(`${f('unified')} key "${key}" is not a cgroup v2 file name like "memory.high"`);
      if (/[\0\n]/.test(value)) throw fail(`${f('unified')}["${key}"] contains a newline or NUL`);
    }
  }

  // All checked: now change the target.
  const cpu = { ...target.cpu };
  if (period !== 0n) cpu.period = Number(period);
  if (quota !== 0n) cpu.quota = Number(quota);
  if (shares !== 0n) cpu.shares = Number(shares);
  if (r.cpuset_cpus) cpu.cpus = r.cpuset_cpus;
  if (r.cpuset_mems) cpu.mems = r.cpuset_mems;
  const mem = { ...target.memory };
  if (memory !== 0n) {
    mem.limit = Number(memory);
    if (swap === 0n && host.swap) mem.swap = Number(memory);
  }
  if (swap !== 0n && host.swap) mem.swap = Number(swap);
  if (mem.limit !== undefined && mem.limit > 0 && mem.swap !== undefined && mem.swap > 0 && mem.swap < mem.limit) {
    throw fail(`${f('memory_swap_limit_in_bytes')} ${mem.swap} is below the memory limit ${mem.limit}: it counts memory plus swap`);
  }
  if (Object.keys(cpu).length) target.cpu = cpu;
  if (Object.keys(mem).length) target.memory = mem;
  if (hugepages.length) {
    const bySize = new Map((target.hugepageLimits ?? []).map((h) => [h.pageSize, h]));
    for (const h of hugepages) bySize.set(h.pageSize, h);
    target.hugepageLimits = [...bySize.values()];
  }
  if (Object.keys(unified).length) target.unified = { ...target.unified, ...unified };
  return target;
}

function hugepageLimits(limits: v1.HugepageLimit__Output[], host: ResourceHost, fail: Fail, field: string): LinuxHugepageLimit[] {
  const out: LinuxHugepageLimit[] = [];
  for (const h of limits) {
    if (!/^\d+(KB|MB|GB)$/.test(h.page_size)) throw fail(`${field}: page_size "${h.page_size}" is not a size like "2MB" or "1GB"`);
    const limit = int64(h.limit, `${field}[${h.page_size}].limit`, fail);
    if (limit < 0n || limit > LIMITS.BYTES_MAX) throw fail(`${field}[${h.page_size}].limit ${limit} is out of range: 0..${LIMITS.BYTES_MAX} bytes`);
    // No hugetlb controller: containerd skips the limits (tolerate_missing_hugetlb_controller).
    if (!host.hugepageSizes) continue;
    if (!host.hugepageSizes.includes(h.page_size)) {
      throw fail(`${field}: page size ${h.page_size} is not one this host has (${host.hugepageSizes.join(', ') || 'none'})`);
    }
    out.push({ pageSize: h.page_size, limit: Number(limit) });
  }
  return out;
}

/**
 * oom_score_adj checked (-1000..1000) and raised to skiffd's own when lower: lowering a score below
 * one's own needs CAP_SYS_RESOURCE, which skiffd may not hold (containerd's restrict_oom_score_adj).
 */
export function effectiveOomScoreAdj(value: string | number | undefined, host: ResourceHost, fail: Fail, field = 'oom_score_adj'): number {
  const adj = int64(value, field, fail);
  if (adj < LIMITS.OOM_MIN || adj > LIMITS.OOM_MAX) throw fail(`${field} ${adj} is out of range: must be -1000..1000`);
  const n = Number(adj);
  return host.minOomScoreAdj !== undefined && n < host.minOomScoreAdj ? host.minOomScoreAdj : n;
}

/** The CRI view of what a container got (ContainerStatus.resources), as containerd's copyResourcesToStatus. */
export function criResources(res: LinuxResources | undefined, oomScoreAdj: number | undefined): v1.LinuxContainerResources__Output {
  return {
    cpu_period: String(res?.cpu?.period ?? 0),
    cpu_quota: String(res?.cpu?.quota ?? 0),
    cpu_shares: String(res?.cpu?.shares ?? 0),
    cpuset_cpus: res?.cpu?.cpus ?? '',
    cpuset_mems: res?.cpu?.mems ?? '',
    memory_limit_in_bytes: String(res?.memory?.limit ?? 0),
    memory_swap_limit_in_bytes: String(res?.memory?.swap ?? 0),
    oom_score_adj: String(oomScoreAdj ?? 0),
    hugepage_limits: (res?.hugepageLimits ?? []).map((h) => ({ page_size: h.pageSize, limit: String(h.limit) })),
    unified: { ...res?.unified },
  };
}

/** The facts about the host a spec is built for; without them: cgroup v1 rules, no swap, no hugetlb, no clamp. */
function resourceHost(input: ContainerSpecInput): ResourceHost {
  return input.resourceHost ?? { cgroupV2: input.cgroupV2, swap: false };
}

/** linux.resources from the CRI resources (kept beside the device rules written before). */
export const withResources: SpecOption = (spec, input) => {
  const r = input.config.linux?.resources;
  if (!r) return;
  spec.linux.resources = mergeResources({ ...spec.linux.resources }, r, resourceHost(input), (m) => invalid(input, m), 'resources.');
};

/** process.oomScoreAdj from resources.oom_score_adj, clamped to skiffd's own (see effectiveOomScoreAdj). */
export const withOomScoreAdj: SpecOption = (spec, input) => {
  const r = input.config.linux?.resources;
  if (!r) return;
  spec.process.oomScoreAdj = effectiveOomScoreAdj(r.oom_score_adj, resourceHost(input), (m) => invalid(input, m), 'resources.oom_score_adj');
};
