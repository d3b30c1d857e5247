// The thin shell of spec building: the real host lookups that buildContainerSpec takes as
// functions — a device node's numbers, the host's device nodes for privileged containers, and the
// propagation of the mount holding a path. Synchronous: each is a stat or one small file read.
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceInfo, HostDevice, HostPropagation } from './types.js';
import { capabilitiesOfMask } from './security.js';

/** Linux dev_t layout (glibc gnu_dev_major/minor). */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/** stat(2) following symlinks (containerd resolves the host path first); undefined if not a device. */
export function statDevice(path: string): DeviceInfo | undefined {
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  return { type, ...splitDev(st.rdev), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
}

/** Directories of /dev that are not the host's device nodes (runc's HostDevices skips them). */
const SKIP_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** Every device node under /dev except /dev/console and symlinks, for privileged containers. */
export function hostDevices(dir = '/dev'): HostDevice[] {
  const out: HostDevice[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...hostDevices(path));
      continue;
    }
    if (path === '/dev/console' || !(e.isCharacterDevice() || e.isBlockDevice())) continue;
    let st;
    try {
      st = lstatSync(path, { bigint: true });
    } catch {
      continue; // gone meanwhile
    }
    const nums = splitDev(st.rdev);
    if (nums.major === 0 && nums.minor === 0) continue;
    out.push({ path, type: e.isCharacterDevice() ? 'c' : 'b', ...nums, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) });
  }
  return out;
}

/**
 * Propagation of the mount holding `path` in a mountinfo(5) text: the longest mount point that
 * contains it; its optional fields say shared:N or master:N (slave). Paths must be resolved.
 */
export function propagationInMountinfo(mountinfo: string, path: string): HostPropagation {
  let best = '';
  let result: HostPropagation = 'private';
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 7) continue;
    const mountPoint = f[4].replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const contains = mountPoint === '/' || path === mountPoint || path.startsWith(mountPoint + '/');
    if (!contains || mountPoint.length < best.length) continue;
    best = mountPoint;
    const optional = f.slice(6, f.indexOf('-'));
    result = optional.some((o) => o.startsWith('shared:')) ? 'shared' : optional.some((o) => o.startsWith('master:')) ? 'slave' : 'private';
  }
  return result;
}

export function hostPropagation(path: string): HostPropagation {
  let resolved = path;
  try {
    resolved = realpathSync(path);
  } catch {
    // a missing path is reported by the mount check itself
  }
  return propagationInMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'), resolved);
}

/** The capabilities in this process's bounding set (/proc/self/status CapBnd). */
export function hostCapabilities(): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? capabilitiesOfMask(m[1]) : [];
}
