// CDI devices: the container edits of the resolved CDI devices (and of the spec files that define
// them) applied to config.json, as the CDI library's ContainerEdits.Apply does (tags.cncf.io/
// container-device-interface pkg/cdi/container-edits.go): env replaced by key, device nodes with
// their numbers looked up on the host when the spec leaves them out plus a device cgroup rule,
// mounts replacing any at the same path then sorted by depth, OCI hooks, additional gids.
// Reading and resolving the spec files is pod/cdi/'s; this only applies what it resolved.
import { posix } from 'node:path';
import type { Hooks, LinuxDevice } from './oci-spec.js';
import { invalid, unimplemented, type SpecOption } from './option.js';

/** A device node edit (CDI SPEC.md "Device Nodes"); numbers and type may come from the host node. */
export interface CdiDeviceNode {
  path: string;
  /** The host node to look up; `path` when absent. */
  hostPath?: string;
  type?: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  /** Device cgroup access: some of r, w, m; "" means rwm, "none" means no access. */
  permissions?: string;
  uid?: number;
  gid?: number;
}

export interface CdiMount {
  hostPath: string;
  containerPath: string;
  options?: string[];
  type?: string;
}

export interface CdiHook {
  hookName: string;
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** containerEdits of a CDI spec or of one of its devices (CDI SPEC.md "Container Edits"). */
export interface CdiContainerEdits {
  env?: string[];
  deviceNodes?: CdiDeviceNode[];
  mounts?: CdiMount[];
  hooks?: CdiHook[];
  additionalGids?: number[];
  intelRdt?: unknown;
  netDevices?: unknown[];
}

/** What the caller resolved: the qualified names asked for and, in order, the edits to apply. */
export interface CdiInjection {
  devices: string[];
  /** Each spec's own edits once (before its first device's), then each device's. */
  edits: CdiContainerEdits[];
}

export const CDI_HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;

/** The edits merged in order (the CDI library's ContainerEdits.Append). */
function merged(all: readonly CdiContainerEdits[]): Required<Pick<CdiContainerEdits, 'env' | 'deviceNodes' | 'mounts' | 'hooks' | 'additionalGids'>> & {
  intelRdt?: unknown;
  netDevices: unknown[];
} {
  const m = { env: [] as string[], deviceNodes: [] as CdiDeviceNode[], mounts: [] as CdiMount[], hooks: [] as CdiHook[], additionalGids: [] as number[], netDevices: [] as unknown[], intelRdt: undefined as unknown };
  for (const e of all) {
    m.env.push(...(e.env ?? []));
    m.deviceNodes.push(...(e.deviceNodes ?? []));
    m.mounts.push(...(e.mounts ?? []));
    m.hooks.push(...(e.hooks ?? []));
    m.additionalGids.push(...(e.additionalGids ?? []));
    m.netDevices.push(...(e.netDevices ?? []));
    if (e.intelRdt !== undefined && e.intelRdt !== null) m.intelRdt = e.intelRdt;
  }
  return m;
}

/** Path depth as the CDI library (and Docker, CRI-O) sort mounts: the number of separators. */
function depth(destination: string): number {
  return posix.normalize(destination).replace(/\/$/, '').split('/').length - 1;
}

export const withCdiDevices: SpecOption = (spec, input) => {
  const cdi = input.cdi;
  if (!cdi || cdi.edits.length === 0) return;
  const fail = (message: string): Error => invalid(input, `CDI device injection failed: ${message}`);
  const e = merged(cdi.edits);
  if (e.intelRdt !== undefined) throw unimplemented(input, `CDI devices ${cdi.devices.join(', ')}: intelRdt edits are not supported`);
  if (e.netDevices.length) throw unimplemented(input, `CDI devices ${cdi.devices.join(', ')}: netDevices edits are not supported`);

  // env: a variable the edits set replaces the one of the same name (ociedit AddMultipleProcessEnv).
  for (const kv of e.env) {
    const key = kv.slice(0, kv.indexOf('='));
    const i = spec.process.env.findIndex((x) => x.slice(0, x.indexOf('=')) === key);
    if (i >= 0) spec.process.env[i] = kv;
    else spec.process.env.push(kv);
  }

  const devices: LinuxDevice[] = spec.linux.devices ?? [];
  const rules = spec.linux.resources?.devices ?? [];
  for (const d of e.deviceNodes) {
    if (!posix.isAbsolute(d.path)) throw fail(`device node path "${d.path}" is not an absolute path`);
    const hostPath = d.hostPath || d.path;
    let type = d.type ?? '';
    let major = d.major ?? 0;
    let minor = d.minor ?? 0;
    // container-edits_unix.go fillMissingInfo: the host node fills what the spec leaves out.
    if (!(type !== '' && (major !== 0 || type === 'p'))) {
      const info = input.statDevice(hostPath);
      if (!info) throw fail(`failed to stat CDI host device "${hostPath}": no such device node`);
      if (type === '') type = info.type;
      else if (type !== info.type) throw fail(`CDI device ("${d.path}", "${hostPath}"), host type mismatch (${type}, ${info.type})`);
      if (major === 0 && type !== 'p') {
        major = info.major;
        minor = info.minor;
      }
    }
    const dev: LinuxDevice = { path: d.path, type: type as LinuxDevice['type'], major, minor };
    if (d.fileMode !== undefined) dev.fileMode = d.fileMode;
    const uid = d.uid ?? (spec.process.user.uid > 0 ? spec.process.user.uid : undefined);
    const gid = d.gid ?? (spec.process.user.gid > 0 ? spec.process.user.gid : undefined);
    if (uid !== undefined) dev.uid = uid;
    if (gid !== undefined) dev.gid = gid;
    const at = devices.findIndex((x) => x.path === dev.path);
    if (at >= 0) devices.splice(at, 1);
    devices.push(dev);
    if (type === 'b' || type === 'c') {
      const access = d.permissions === 'none' ? '' : d.permissions || 'rwm';
      rules.push({ allow: true, type, major, minor, access });
    }
  }
  if (e.deviceNodes.length) {
    spec.linux.devices = devices;
    spec.linux.resources = { ...spec.linux.resources, devices: rules };
  }

  if (e.mounts.length) {
    for (const m of e.mounts) {
      if (!posix.isAbsolute(m.containerPath)) throw fail(`mount containerPath "${m.containerPath}" is not an absolute path`);
      spec.mounts = spec.mounts.filter((x) => posix.normalize(x.destination) !== posix.normalize(m.containerPath));
      spec.mounts.push({
        destination: m.containerPath,
        source: m.hostPath,
        ...(m.type ? { type: m.type } : {}),
        ...(m.options?.length ? { options: [...m.options] } : {}),
      });
    }
    // Stable: mounts of equal depth keep their order.
    spec.mounts = spec.mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map((x) => x.m);
  }

  for (const h of e.hooks) {
    const name = h.hookName as keyof Hooks;
    spec.hooks ??= {};
    (spec.hooks[name] ??= []).push({
      path: h.path,
      ...(h.args?.length ? { args: [...h.args] } : {}),
      ...(h.env?.length ? { env: [...h.env] } : {}),
      ...(h.timeout !== undefined ? { timeout: h.timeout } : {}),
    });
  }

  for (const gid of e.additionalGids) {
    if (gid === 0) continue;
    const gids = (spec.process.user.additionalGids ??= []);
    if (!gids.includes(gid)) gids.push(gid);
  }
};
