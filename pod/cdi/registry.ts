// The CDI registry: every *.json and *.yaml spec file directly in the configured dirs (sub-dirs
// and missing dirs skipped), read afresh for each container that asks for CDI devices, as
// containerd refreshes the CDI cache before injecting (auto-refresh off). Conflicts resolve as the
// CDI library's Cache.refresh does: the device from the later (higher-priority) dir wins; the same
// device in two files of one dir is a conflict and neither is usable. A broken spec file is
// recorded and skipped: it must not keep other vendors' devices from working.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as v1 from '../../cri/gen/v1.js';
import { SkiffError, errnoCode, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import type { CdiContainerEdits, CdiInjection } from '../spec/cdi.js';
import { parseCdiSpec, qualifiedNameError, type CdiSpec } from './spec.js';

const log = logger('cdi');

/** containerd's [plugins."io.containerd.cri.v1.runtime"] cdi_spec_dirs default (and the CDI library's). */
export const DEFAULT_CDI_SPEC_DIRS = ['/etc/cdi', '/var/run/cdi'];

/** The annotation form kubelet's device plugins used before CRI's CDI_devices (pkg/cdi/annotations.go). */
export const CDI_ANNOTATION_PREFIX = 'cdi.k8s.io/';

export interface CdiRegistry {
  /** Qualified name (vendor.com/class=name) → the spec and the device's edits. */
  devices: Map<string, { spec: CdiSpec; edits: CdiContainerEdits }>;
  /** What was wrong with spec files, each naming its file. */
  errors: string[];
}

/** Loads the spec files of `dirs`, in priority order (later dirs win). */
export async function loadCdiRegistry(dirs: readonly string[]): Promise<CdiRegistry> {
  const devices = new Map<string, { spec: CdiSpec; edits: CdiContainerEdits }>();
  const conflicts = new Set<string>();
  const errors: string[] = [];
  for (const [priority, dir] of dirs.entries()) {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') errors.push(`${dir}: ${errorMessage(err)}`);
      continue;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.isDirectory() || !(e.name.endsWith('.json') || e.name.endsWith('.yaml'))) continue;
      const path = join(dir, e.name);
      let spec: CdiSpec;
      try {
        spec = parseCdiSpec(await readFile(path, 'utf8'), path, priority);
      } catch (err) {
        errors.push(`failed to load CDI Spec ${path}: ${errorMessage(err)}`);
        continue;
      }
      for (const [name, edits] of spec.devices) {
        const qualified = `${spec.kind}=${name}`;
        const other = devices.get(qualified);
        if (other && other.spec.priority === priority) {
          errors.push(`conflicting device "${qualified}" (specs "${path}", "${other.spec.path}")`);
          conflicts.add(qualified);
          continue;
        }
        devices.set(qualified, { spec, edits });
      }
    }
  }
  for (const c of conflicts) devices.delete(c);
  if (errors.length) log.warn({ errors }, 'CDI spec files with errors were skipped');
  return { devices, errors };
}

/**
 * The CDI devices a container asks for: CDI_devices, then the cdi.k8s.io/ annotations, each name
 * once (containerd's WithCDI). An annotation naming a device that is not fully qualified fails.
 */
export function requestedCdiDevices(config: v1.ContainerConfig__Output): string[] {
  const names: string[] = [];
  for (const d of config.CDI_devices ?? []) if (!names.includes(d.name)) names.push(d.name);
  for (const [key, value] of Object.entries(config.annotations ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!key.startsWith(CDI_ANNOTATION_PREFIX)) continue;
    for (const d of value.split(',')) {
      if (qualifiedNameError(d)) {
        throw new SkiffError('SKIFF_INVALID_ARGUMENT', `failed to parse CDI device annotations: invalid CDI device name "${d}" in annotation "${key}"`);
      }
      if (!names.includes(d)) names.push(d);
    }
  }
  return names;
}

/**
 * The edits for `names`, each spec's own edits once before its first device's (Cache.InjectDevices).
 * Any name not in the registry fails the whole request, naming every such device.
 */
export function resolveCdiDevices(registry: CdiRegistry, names: readonly string[]): CdiInjection {
  const edits: CdiContainerEdits[] = [];
  const seenSpecs = new Set<CdiSpec>();
  const unresolved: string[] = [];
  for (const name of names) {
    const d = registry.devices.get(name);
    if (!d) {
      unresolved.push(name);
      continue;
    }
    if (!seenSpecs.has(d.spec)) {
      seenSpecs.add(d.spec);
      edits.push(d.spec.edits);
    }
    edits.push(d.edits);
  }
  if (unresolved.length) {
    const hint = registry.errors.length ? ` (skipped: ${registry.errors.join('; ')})` : '';
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `CDI device injection failed: unresolvable CDI devices ${unresolved.join(', ')}${hint}`);
  }
  return { devices: [...names], edits };
}

/**
 * Reads the registry only when the container asks for CDI devices; undefined when it asks for
 * none. Errors name the container.
 */
export async function cdiInjectionFor(dirs: readonly string[], config: v1.ContainerConfig__Output): Promise<CdiInjection | undefined> {
  const who = `container "${config.metadata?.name ?? ''}"`;
  try {
    const names = requestedCdiDevices(config);
    if (names.length === 0) return undefined;
    return resolveCdiDevices(await loadCdiRegistry(dirs), names);
  } catch (err) {
    if (err instanceof SkiffError) throw new SkiffError(err.code, `${who}: ${err.message}`, { cause: err });
    throw err;
  }
}
