// The container's mounts: the runtime defaults (/proc, /dev, /sys, cgroup...), the pod's files and
// /dev/shm, then the CRI mounts as recursive binds — containerd's order and override rules
// (internal/cri/opts/spec_linux_opts.go WithMounts, container_create.go linuxContainerMounts).
import { posix } from 'node:path';
import type * as v1 from '../../cri/gen/v1.js';
import type { LinuxIDMapping, Mount } from './oci-spec.js';
import { invalid, securityContext, unimplemented, type SpecOption } from './option.js';
import type { ContainerSpecInput } from './types.js';

/** containerd's default Unix mounts without /run, plus the read-only cgroup mount. */
export function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

/** A bind mount request: a CRI mount, or one of the pod's own files. */
interface BindRequest {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  recursiveReadOnly: boolean;
  propagation: v1.MountPropagation__Output;
  /** Came from the CRI request (checked against the host), not from the sandbox. */
  fromCri: boolean;
  /** The pod's mappings, when the mount asked to be idmapped with them. */
  idmap?: { uid: LinuxIDMapping; gid: LinuxIDMapping };
}

function clean(path: string): string {
  const p = posix.normalize(path);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/**
 * The pod's files and /dev/shm, unless a CRI mount already covers the path. They are read-only
 * when the rootfs is (containerd). /dev/shm is the host's with host IPC, else the pod's tmpfs.
 */
function sandboxMounts(input: ContainerSpecInput, taken: Set<string>): BindRequest[] {
  const readonly = securityContext(input)?.readonly_rootfs === true;
  const { files, hostIPC, shmPath } = input.sandbox;
  const wanted: [string, string | undefined, boolean][] = [
    ['/etc/hostname', files.hostname, readonly],
    ['/etc/hosts', files.hosts, readonly],
    ['/etc/resolv.conf', files.resolvConf, readonly],
    ['/dev/shm', hostIPC ? '/dev/shm' : shmPath, false],
  ];
  return wanted
    .filter(([dst, src]) => src && !taken.has(dst))
    .map(([containerPath, hostPath, ro]) => ({
      containerPath,
      hostPath: hostPath!,
      readonly: ro,
      recursiveReadOnly: false,
      propagation: 'PROPAGATION_PRIVATE',
      fromCri: false,
    }));
}

function criMounts(input: ContainerSpecInput): BindRequest[] {
  return input.config.mounts.map((m) => {
    if (!m.container_path) throw invalid(input, 'mount without container_path');
    if (!posix.isAbsolute(m.container_path)) throw invalid(input, `mount container_path "${m.container_path}" is not an absolute path`);
    if (m.image?.image) return imageVolumeMount(input, m);
    if (!m.host_path) throw invalid(input, `mount "${m.container_path}" has no host_path`);
    if (!posix.isAbsolute(m.host_path)) throw invalid(input, `mount "${m.container_path}": host_path "${m.host_path}" is not an absolute path`);
    const idmap = m.uidMappings.length || m.gidMappings.length ? mountIdmap(input, m) : undefined;
    return {
      containerPath: m.container_path,
      hostPath: m.host_path,
      readonly: m.readonly,
      recursiveReadOnly: m.recursive_read_only,
      propagation: m.propagation,
      fromCri: true,
      ...(idmap ? { idmap } : {}),
    };
  });
}

/**
 * The mappings of an idmapped CRI mount. They are accepted in a pod user namespace and only as the
 * pod's own (one range each, as kubelet sends them): the mount is then idmapped with the pod's
 * pinned namespace. Other mappings would need a user namespace of their own.
 */
function mountIdmap(input: ContainerSpecInput, m: v1.Mount__Output): { uid: LinuxIDMapping; gid: LinuxIDMapping } {
  const where = `mount "${m.container_path}"`;
  const pod = input.sandbox.userns;
  if (!pod) throw invalid(input, `${where}: uidMappings/gidMappings need a pod user namespace (userns_options mode POD)`);
  const show = (x: LinuxIDMapping): string => `${x.containerID}:${x.hostID}:${x.size}`;
  const one = (kind: string, got: v1.IDMapping__Output[], want: LinuxIDMapping): LinuxIDMapping => {
    const asked = got.map((g) => ({ containerID: g.container_id, hostID: g.host_id, size: g.length }));
    if (asked.length !== 1 || show(asked[0]) !== show(want)) {
      throw unimplemented(input, `${where}: ${kind} mappings [${asked.map(show).join(' ')}] differ from the pod's (${show(want)}); only the pod's own are supported`);
    }
    return want;
  };
  return { uid: one('UID', m.uidMappings, pod.uid), gid: one('GID', m.gidMappings, pod.gid) };
}

/**
 * An image volume: the caller mounted the image read-only and names the dir (image_sub_path
 * applied); it is bound like any CRI mount, read-only. containerd's mutateImageMount rules: no
 * host_path, readonly set.
 */
function imageVolumeMount(input: ContainerSpecInput, m: v1.Mount__Output): BindRequest {
  const where = `image volume "${m.container_path}"`;
  if (m.host_path) throw invalid(input, `${where}: host_path must be empty for an image mount, got "${m.host_path}"`);
  if (!m.readonly) throw invalid(input, `${where}: readonly must be true for an image mount`);
  const hostPath = input.imageVolumes?.get(m.container_path);
  if (!hostPath) throw invalid(input, `${where}: image "${m.image!.image}" is not mounted`);
  return { containerPath: m.container_path, hostPath, readonly: true, recursiveReadOnly: m.recursive_read_only, propagation: m.propagation, fromCri: true };
}

/**
 * CRI mount host paths that do not exist. containerd and CRI-O create them as directories (0755)
 * before building the spec (kubelet's hostPath type "" relies on it); the caller does that with
 * this list, so that buildContainerSpec itself stays free of I/O.
 */
export function hostPathsToCreate(config: v1.ContainerConfig__Output, hostPathExists: (path: string) => boolean): string[] {
  const paths = config.mounts.map((m) => m.host_path).filter((p) => p && posix.isAbsolute(p) && !hostPathExists(p));
  return [...new Set(paths)];
}

/** Bind options and the rootfs propagation it needs. */
function bindOptions(input: ContainerSpecInput, b: BindRequest): { options: string[]; rootfsPropagation?: 'rshared' | 'rslave' } {
  const options = ['rbind'];
  let rootfsPropagation: 'rshared' | 'rslave' | undefined;
  const where = `mount "${b.containerPath}"`;
  // containerd (WithMounts) and CRI-O refuse rro unless the mount is readonly and private; checked
  // before the host's propagation, which is beside the point for such a mount.
  if (b.recursiveReadOnly) {
    const rro = `${where}: recursive read-only (rro) requires readonly and private propagation`;
    if (!b.readonly) throw invalid(input, `${rro}: the mount is read-write`);
    if (b.propagation !== 'PROPAGATION_PRIVATE') throw invalid(input, `${rro}: propagation is ${b.propagation}`);
  }
  switch (b.propagation) {
    case 'PROPAGATION_BIDIRECTIONAL':
      checkPropagation(input, b, ['shared'], 'a shared mount');
      options.push('rshared');
      rootfsPropagation = 'rshared';
      break;
    case 'PROPAGATION_HOST_TO_CONTAINER':
      checkPropagation(input, b, ['shared', 'slave'], 'a shared or slave mount');
      options.push('rslave');
      rootfsPropagation = 'rslave';
      break;
    default:
      options.push('rprivate');
  }
  if (b.recursiveReadOnly) {
    options.push('rro');
  } else {
    options.push(b.readonly ? 'ro' : 'rw');
  }
  return rootfsPropagation ? { options, rootfsPropagation } : { options };
}

/** containerd's ensureShared / ensureSharedOrSlave, when the caller can tell. */
function checkPropagation(input: ContainerSpecInput, b: BindRequest, ok: string[], what: string): void {
  const actual = input.hostPropagation?.(b.hostPath);
  if (actual !== undefined && !ok.includes(actual)) {
    throw invalid(input, `mount "${b.containerPath}": host path "${b.hostPath}" is not on ${what} (it is ${actual})`);
  }
}

/**
 * Defaults first (minus any a requested mount replaces, and everything under /dev when /dev is
 * replaced), then the requested binds ordered by depth so that a parent never hides a child.
 */
export const withMounts: SpecOption = (spec, input) => {
  const requested = criMounts(input);
  const taken = new Set(requested.map((m) => clean(m.containerPath)));
  const binds = [...requested, ...sandboxMounts(input, taken)];
  const depth = (p: string): number => clean(p).split('/').length;
  binds.sort((a, b) => depth(a.containerPath) - depth(b.containerPath)); // stable

  const covered = new Set(binds.map((m) => clean(m.containerPath)));
  const replacesDev = covered.has('/dev');
  const mounts = defaultMounts().filter((m) => !covered.has(m.destination) && !(replacesDev && m.destination.startsWith('/dev/')));

  let propagation: string | undefined;
  for (const b of binds) {
    if (b.fromCri && !input.hostPathExists(b.hostPath)) {
      throw invalid(input, `mount "${b.containerPath}": host path "${b.hostPath}" does not exist`);
    }
    const { options, rootfsPropagation } = bindOptions(input, b);
    if (rootfsPropagation === 'rshared' || (rootfsPropagation === 'rslave' && propagation !== 'rshared')) propagation = rootfsPropagation;
    mounts.push({
      destination: b.containerPath,
      type: 'bind',
      source: b.hostPath,
      options,
      ...(b.idmap ? { uidMappings: [b.idmap.uid], gidMappings: [b.idmap.gid] } : {}),
    });
  }
  spec.mounts = mounts;
  if (propagation) spec.linux.rootfsPropagation = propagation;
};
