// What the host's cgroups allow, read for each container spec and resources update (cheap reads
// of a few files): swap and hugetlb controllers, the hugepage sizes the kernel has, and skiffd's
// own oom_score_adj (the floor it can give a container without CAP_SYS_RESOURCE).
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupLayout } from '../runtime/cgroup-layout.js';
import type { ResourceHost } from '../spec/types.js';
import { hugepageSizeName } from '../spec/resources.js';
import { unifiedRoot } from './paths.js';

export interface HostFactSources {
  /** /proc/self (tests point it at a fake). */
  procSelf?: string;
  /** /sys/kernel/mm/hugepages. */
  hugepagesDir?: string;
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

/** cgroup v2 path of this process (the "0::/path" line of /proc/self/cgroup). */
function ownUnifiedPath(procCgroup: string): string {
  return /^0::(.*)$/m.exec(procCgroup)?.[1] ?? '/';
}

export async function resourceHost(layout: CgroupLayout, src: HostFactSources = {}): Promise<ResourceHost> {
  const procSelf = src.procSelf ?? '/proc/self';
  const cgroupV2 = layout.mode === 'unified';
  let swap: boolean;
  let hugetlb: boolean;
  if (cgroupV2) {
    // memory.swap.max is absent in the root cgroup: look beside skiffd's own (containerd's SwapControllerAvailable).
    const own = join(unifiedRoot(layout), ownUnifiedPath(await readFile(join(procSelf, 'cgroup'), 'utf8').catch(() => '')));
    swap = await exists(join(own, 'memory.swap.max'));
    const controllers = (await readFile(join(unifiedRoot(layout), 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/);
    hugetlb = controllers.includes('hugetlb');
  } else {
    const memory = layout.v1Controllers.memory;
    swap = memory ? await exists(join(memory, 'memory.memsw.limit_in_bytes')) : false;
    hugetlb = 'hugetlb' in layout.v1Controllers;
  }
  const adjText = await readFile(join(procSelf, 'oom_score_adj'), 'utf8').catch(() => undefined);
  const adj = adjText === undefined ? NaN : Number(adjText.trim());
  return {
    cgroupV2,
    swap,
    ...(hugetlb ? { hugepageSizes: await hugepageSizes(src.hugepagesDir ?? '/sys/kernel/mm/hugepages') } : {}),
    ...(Number.isInteger(adj) ? { minOomScoreAdj: adj } : {}),
  };
}

/** hugepages-2048kB → "2MB", as kubelet names page sizes. */
async function hugepageSizes(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^hugepages-(\d+)kB$/.exec(name);
    if (m) out.push(hugepageSizeName(Number(m[1]) * 1024));
  }
  return out.sort();
}
