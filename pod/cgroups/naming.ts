// How skiff names cgroups, per cgroup driver (the driver kubelet is told by RuntimeConfig, so both
// name the pod's cgroups alike):
// - cgroupfs: kubelet's cgroup_parent is a path (/kubepods/burstable/pod<uid>); a container's
//   cgroup is <parent>/<container id>, as containerd and CRI-O name it.
// - systemd: kubelet's cgroup_parent is a slice (kubepods-burstable-pod<uid>.slice, or its expanded
//   path); the slice expands to /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice
//   (runc's ExpandSlice) and a container's cgroup is the scope skiff-<id>.scope in it, as containerd
//   names cri-containerd-<id>.scope.
// skiff never asks systemd for units: with either driver it hands the OCI runtime the cgroup's
// filesystem path (no --systemd-cgroup), so the systemd driver works the same on hosts without
// systemd, and the cgroup tree looks the same as systemd's would.
import { posix } from 'node:path';
import { SkiffError } from '../../common/errors.js';

export type CgroupDriver = 'cgroupfs' | 'systemd';

/** The parent of containers whose pod names no cgroup_parent (so every container has a cgroup). */
export const DEFAULT_PARENT: Record<CgroupDriver, string> = { cgroupfs: '/skiff', systemd: 'skiff.slice' };

function invalid(message: string): SkiffError {
  return new SkiffError('SKIFF_INVALID_ARGUMENT', message);
}

/**
 * A systemd slice name as its cgroup path (runc libcontainer/cgroups/systemd ExpandSlice):
 * "a-b-c.slice" → /a.slice/a-b.slice/a-b-c.slice; "-.slice" is the root. Empty components
 * ("a--b.slice", "-a.slice") and "/" are refused.
 */
export function expandSlice(slice: string): string {
  const suffix = '.slice';
  if (slice.length <= suffix.length || !slice.endsWith(suffix) || slice.includes('/')) {
    throw invalid(`cgroup parent "${slice}" is not a systemd slice name (<name>.slice, no "/")`);
  }
  const name = slice.slice(0, -suffix.length);
  if (name === '-') return '/';
  let path = '';
  let prefix = '';
  for (const component of name.split('-')) {
    if (component === '') throw invalid(`cgroup parent "${slice}" is not a valid slice name: empty component between "-"`);
    path += `/${prefix}${component}${suffix}`;
    prefix += `${component}-`;
  }
  return path;
}

/** An absolute cgroup path without "." or ".." components, NUL or newline. */
function checkPath(path: string, what: string): void {
  if (!path.startsWith('/') || path.split('/').some((c) => c === '..' || c === '.') || /[\0\n]/.test(path)) {
    throw invalid(`${what} "${path}" must be an absolute cgroup path without "." or ".." components`);
  }
}

/**
 * The filesystem path (relative to each hierarchy's root) of a pod's cgroup parent, from
 * kubelet's linux.cgroup_parent; '' gives skiff's own parent. With systemd the parent may be the
 * slice name or its expanded path (kubelet sends the latter), and must expand to itself.
 */
export function podParentPath(driver: CgroupDriver, cgroupParent: string): string {
  const parent = cgroupParent || DEFAULT_PARENT[driver];
  if (driver === 'cgroupfs') {
    checkPath(parent, 'linux.cgroup_parent');
    return posix.normalize(parent);
  }
  if (!parent.includes('/')) return expandSlice(parent);
  checkPath(parent, 'linux.cgroup_parent');
  // containerd takes filepath.Base of the parent; the rest of the path must be what it expands to.
  const expanded = expandSlice(posix.basename(parent));
  if (posix.normalize(parent).replace(/\/$/, '') !== expanded) {
    throw invalid(`linux.cgroup_parent "${parent}": with the systemd cgroup driver it must be a slice name or its expanded path (${expanded})`);
  }
  return expanded;
}

/** The cgroup of a container (or of a pod's pause process) with id `id` under a pod parent path. */
export function cgroupPathIn(driver: CgroupDriver, parentPath: string, id: string): string {
  return posix.join(parentPath, driver === 'systemd' ? `skiff-${id}.scope` : id);
}
