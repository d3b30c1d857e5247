// Which cgroup layout the host has, read from /proc/self/mountinfo: unified (cgroup v2 at
// /sys/fs/cgroup), legacy (v1 controllers only), or hybrid (v1 controllers plus a v2 mount, usually
// /sys/fs/cgroup/unified). Debian's crun 1.8 refuses hybrid hosts, so on those it runs in a private
// mount namespace without the v2 mount (skiff-ns runtime --hide-mount); the host is never changed.
import { readFile } from 'node:fs/promises';

export interface CgroupLayout {
  mode: 'unified' | 'legacy' | 'hybrid';
  /** Mount points of cgroup v2 filesystems other than /sys/fs/cgroup itself. */
  v2Mounts: string[];
  /** v1 controller name → its mount point (`memory` → /sys/fs/cgroup/memory). */
  v1Controllers: Record<string, string>;
  /** Where the v2 hierarchy is mounted when unified; absent: /sys/fs/cgroup (tests set a fake tree). */
  unifiedRoot?: string;
}

/** Parses mountinfo text (proc(5): fields, then " - ", then fstype, source, super options). */
export function parseCgroupLayout(mountinfo: string): CgroupLayout {
  const v2: string[] = [];
  const v1: Record<string, string> = {};
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const mountPoint = unescape(pre[4] ?? '');
    const fstype = post[0];
    if (fstype === 'cgroup2') v2.push(mountPoint);
    else if (fstype === 'cgroup') {
      for (const opt of (post[2] ?? '').split(',')) {
        if (['rw', 'ro'].includes(opt) || opt.startsWith('release_agent') || opt === 'clone_children' || opt.startsWith('name=')) continue;
        v1[opt] = mountPoint;
      }
    }
  }
  if (v2.includes('/sys/fs/cgroup') && Object.keys(v1).length === 0) return { mode: 'unified', v2Mounts: [], v1Controllers: {} };
  const others = v2.filter((m) => m !== '/sys/fs/cgroup');
  return { mode: others.length > 0 ? 'hybrid' : 'legacy', v2Mounts: others, v1Controllers: v1 };
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export async function hostCgroupLayout(): Promise<CgroupLayout> {
  return parseCgroupLayout(await readFile('/proc/self/mountinfo', 'utf8'));
}
