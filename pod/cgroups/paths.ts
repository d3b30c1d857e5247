// Where a container's cgroup lives on the host: a record's cgroupsPath (relative to the hierarchy
// root, as config.json's linux.cgroupsPath) joined to a v1 controller's mount point or to the v2
// unified mount. Readers of cgroup files (stats, OOM detection, updates) go through these.
import { join } from 'node:path';
import type { CgroupLayout } from '../runtime/cgroup-layout.js';

/** Where the cgroup v2 hierarchy is mounted on a unified host (tests point it at a fake tree). */
export function unifiedRoot(layout: CgroupLayout): string {
  return layout.unifiedRoot ?? '/sys/fs/cgroup';
}

/**
 * The directory of a cgroup in one v1 controller's hierarchy (`memory` → /sys/fs/cgroup/memory/<path>);
 * undefined on a unified host, when the controller is not mounted, or when there is no path.
 */
export function controllerDir(layout: CgroupLayout, controller: string, cgroupsPath: string): string | undefined {
  if (!cgroupsPath || layout.mode === 'unified') return undefined;
  const mount = layout.v1Controllers[controller];
  return mount ? join(mount, cgroupsPath) : undefined;
}

/**
 * The directory of a cgroup in the v2 hierarchy; undefined unless the host is unified (the v2 mount
 * of a hybrid host holds no controllers) or when there is no path.
 */
export function unifiedDir(layout: CgroupLayout, cgroupsPath: string): string | undefined {
  if (!cgroupsPath || layout.mode !== 'unified') return undefined;
  return join(unifiedRoot(layout), cgroupsPath);
}

/** The memory cgroup file whose oom_kill counter tells of an OOM kill (v2 memory.events, v1 memory.oom_control). */
export function oomCounterFile(layout: CgroupLayout, cgroupsPath: string): string | undefined {
  const v2 = unifiedDir(layout, cgroupsPath);
  if (v2) return join(v2, 'memory.events');
  const memory = controllerDir(layout, 'memory', cgroupsPath);
  return memory ? join(memory, 'memory.oom_control') : undefined;
}
