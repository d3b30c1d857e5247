// Test fixture for pod/spec: a complete ContainerSpecInput as the CRI decoder would produce it
// (every field present, defaults empty), with a fake host, and small builders for CRI mounts and
// devices. Tests override only what their row is about.
import assert from 'node:assert/strict';
import type * as v1 from '../../cri/gen/v1.js';
import { isSkiffError, type ErrorCode } from '../../common/errors.js';
import type { ImageRuntimeConfig } from '../../images/oci.js';
import type { ContainerSpecInput, DeviceInfo, HostPropagation, SandboxInfo } from './types.js';

export const CONTAINER_ID = 'c'.repeat(64);
export const SANDBOX_ID = 's'.repeat(64);
export const PAUSE_PID = 4242;

export function securityContext(over: Partial<v1.LinuxContainerSecurityContext__Output> = {}): v1.LinuxContainerSecurityContext__Output {
  return {
    capabilities: null,
    privileged: false,
    namespace_options: null,
    selinux_options: null,
    run_as_user: null,
    run_as_username: '',
    readonly_rootfs: false,
    supplemental_groups: [],
    apparmor_profile: '',
    seccomp_profile_path: '',
    no_new_privs: false,
    run_as_group: null,
    masked_paths: [],
    readonly_paths: [],
    seccomp: null,
    apparmor: null,
    supplemental_groups_policy: 'Merge',
    ...over,
  };
}

export function resources(over: Partial<v1.LinuxContainerResources__Output> = {}): v1.LinuxContainerResources__Output {
  return {
    cpu_period: '0',
    cpu_quota: '0',
    cpu_shares: '0',
    memory_limit_in_bytes: '0',
    oom_score_adj: '0',
    cpuset_cpus: '',
    cpuset_mems: '',
    hugepage_limits: [],
    unified: {},
    memory_swap_limit_in_bytes: '0',
    ...over,
  };
}

export function mount(containerPath: string, hostPath: string, over: Partial<v1.Mount__Output> = {}): v1.Mount__Output {
  return {
    container_path: containerPath,
    host_path: hostPath,
    readonly: false,
    selinux_relabel: false,
    propagation: 'PROPAGATION_PRIVATE',
    uidMappings: [],
    gidMappings: [],
    recursive_read_only: false,
    image: null,
    image_sub_path: '',
    ...over,
  };
}

export function device(hostPath: string, containerPath = '', permissions = ''): v1.Device__Output {
  return { host_path: hostPath, container_path: containerPath, permissions };
}

export function env(key: string, value: string): v1.KeyValue__Output {
  return { key, value: Buffer.from(value) };
}

export interface FixtureOptions {
  config?: Partial<v1.ContainerConfig__Output>;
  /** The container's security context (sets config.linux). */
  sc?: Partial<v1.LinuxContainerSecurityContext__Output>;
  resources?: Partial<v1.LinuxContainerResources__Output>;
  image?: ImageRuntimeConfig;
  imageFiles?: { passwd?: string; group?: string };
  sandbox?: Partial<SandboxInfo>;
  sandboxPrivileged?: boolean;
  sysctls?: Record<string, string>;
  /** Host device nodes by path for the fake statDevice. */
  devices?: Record<string, DeviceInfo>;
  /** Host paths that exist; by default every path does. */
  existing?: string[];
  propagation?: Record<string, HostPropagation>;
  cgroupV2?: boolean;
  extra?: Partial<ContainerSpecInput>;
}

export function specInput(o: FixtureOptions = {}): ContainerSpecInput {
  const config: v1.ContainerConfig__Output = {
    metadata: { name: 'app', attempt: 0 },
    image: { image: 'docker.io/library/busybox:1.36', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' },
    command: [],
    args: [],
    working_dir: '',
    envs: [],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    log_path: '',
    stdin: false,
    stdin_once: false,
    tty: false,
    linux: o.sc || o.resources ? { security_context: o.sc ? securityContext(o.sc) : null, resources: o.resources ? resources(o.resources) : null } : null,
    windows: null,
    CDI_devices: [],
    stop_signal: 'RUNTIME_DEFAULT',
    ...o.config,
  };
  const sandboxConfig: v1.PodSandboxConfig__Output = {
    metadata: { name: 'web', uid: 'uid-1', namespace: 'default', attempt: 0 },
    hostname: 'web',
    log_directory: '',
    dns_config: null,
    port_mappings: [],
    labels: {},
    annotations: {},
    linux: {
      cgroup_parent: '',
      security_context: o.sandboxPrivileged
        ? {
            namespace_options: null,
            selinux_options: null,
            run_as_user: null,
            readonly_rootfs: false,
            supplemental_groups: [],
            privileged: true,
            seccomp_profile_path: '',
            run_as_group: null,
            seccomp: null,
            apparmor: null,
            supplemental_groups_policy: 'Merge',
          }
        : null,
      sysctls: o.sysctls ?? {},
      overhead: null,
      resources: null,
    },
    windows: null,
  };
  const existing = o.existing ? new Set(o.existing) : undefined;
  return {
    id: CONTAINER_ID,
    rootfs: '/run/skiff/bundles/c/rootfs',
    config,
    sandboxConfig,
    image: o.image ?? { Cmd: ['sh'] },
    imageName: 'docker.io/library/busybox:1.36',
    imageFiles: o.imageFiles ?? {},
    sandbox: {
      id: SANDBOX_ID,
      pid: PAUSE_PID,
      netnsPath: '/run/skiff/netns/pod1',
      hostNetwork: false,
      hostIPC: false,
      pidMode: 'CONTAINER',
      hostname: 'web',
      files: { hostname: '/pods/s/hostname', hosts: '/pods/s/hosts', resolvConf: '/pods/s/resolv.conf' },
      shmPath: '/pods/s/shm',
      ...o.sandbox,
    },
    cgroupsPath: '/kubepods/pod1/' + CONTAINER_ID,
    cgroupV2: o.cgroupV2 ?? true,
    statDevice: (path) => o.devices?.[path],
    hostPathExists: (path) => (existing ? existing.has(path) : true),
    ...(o.propagation ? { hostPropagation: (path: string) => o.propagation![path] ?? 'private' } : {}),
    ...o.extra,
  };
}

/** Asserts that fn throws a SkiffError of one code whose message matches. */
export function throwsSkiff(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSkiffError(err, code), `want ${code}, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}
