// The part of the OCI runtime-spec 1.0.2 config.json that skiff writes for a container
// (runtime-spec config.md and config-linux.md). Field names are the spec's JSON names; optional
// fields are left out of the JSON when undefined.

export const OCI_VERSION = '1.0.2';

export interface Spec {
  ociVersion: string;
  process: Process;
  root: Root;
  /** Set only when the container is in the pod's own UTS namespace (config.md "hostname"). */
  hostname?: string;
  /** In order: the runtime mounts them in this order (config.md "mounts"). */
  mounts: Mount[];
  annotations?: Record<string, string>;
  /** OCI hooks (config.md "POSIX-platform Hooks"); CDI devices may add some. */
  hooks?: Hooks;
  linux: Linux;
}

/** One hook: an absolute path run by the runtime with the container state on stdin. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds. */
  timeout?: number;
}

export interface Hooks {
  prestart?: Hook[];
  createRuntime?: Hook[];
  createContainer?: Hook[];
  startContainer?: Hook[];
  poststart?: Hook[];
  poststop?: Hook[];
}

export interface Process {
  terminal?: boolean;
  user: User;
  args: string[];
  /** KEY=VALUE strings. */
  env: string[];
  /** Absolute path inside the container. */
  cwd: string;
  capabilities?: LinuxCapabilities;
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  /** AppArmor profile name (config.md "apparmorProfile"). */
  apparmorProfile?: string;
  /** SELinux process label (config.md "selinuxLabel"). */
  selinuxLabel?: string;
}

export interface User {
  uid: number;
  gid: number;
  /** Supplementary groups; includes the primary gid, like containerd writes them. */
  additionalGids?: number[];
}

/** Capability names with the CAP_ prefix (config.md "capabilities"). */
export interface LinuxCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface Root {
  /** Absolute path of the mounted rootfs. */
  path: string;
  readonly?: boolean;
}

export interface Mount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
  /** runtime-spec 1.1 idmapped mounts; skiff stages these itself (pod/idmap-mounts.ts). */
  uidMappings?: LinuxIDMapping[];
  gidMappings?: LinuxIDMapping[];
}

export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';

/** config-linux.md "namespaces": with a path the runtime joins it (setns); without, it creates one. */
export interface LinuxNamespace {
  type: NamespaceType;
  path?: string;
}

export interface LinuxIDMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** A device node the runtime creates in the container (config-linux.md "devices"). */
export interface LinuxDevice {
  path: string;
  type: 'c' | 'b' | 'u' | 'p';
  major: number;
  minor: number;
  /** Permission bits of the node. */
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** A device cgroup rule (config-linux.md "allowed device list"); no major/minor means any. */
export interface LinuxDeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  /** Some of r, w, m. */
  access?: string;
}

/** config-linux.md "cpu": shares are v1's; runtimes convert them to cpu.weight on cgroup v2. */
export interface LinuxCPU {
  shares?: number;
  /** CFS quota in µs per period; -1 is no limit. */
  quota?: number;
  period?: number;
  cpus?: string;
  mems?: string;
}

/** config-linux.md "memory": limit and swap (memory+swap on v1) in bytes; -1 is no limit. */
export interface LinuxMemory {
  limit?: number;
  swap?: number;
}

export interface LinuxHugepageLimit {
  /** "2MB", "1GB", as kubelet spells them. */
  pageSize: string;
  limit: number;
}

/** config-linux.md "Control groups" resources: what `runtime update --resources` takes too. */
export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  cpu?: LinuxCPU;
  memory?: LinuxMemory;
  hugepageLimits?: LinuxHugepageLimit[];
  pids?: { limit: number };
  /** cgroup v2 files by name (config-linux.md "unified"). */
  unified?: Record<string, string>;
}

export interface Linux {
  namespaces: LinuxNamespace[];
  uidMappings?: LinuxIDMapping[];
  gidMappings?: LinuxIDMapping[];
  devices?: LinuxDevice[];
  resources?: LinuxResources;
  cgroupsPath?: string;
  /** rprivate (the runtime's default), rslave or rshared. */
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  sysctl?: Record<string, string>;
  seccomp?: LinuxSeccomp;
  /** SELinux label of the container's mounts (config-linux.md "mountLabel"). */
  mountLabel?: string;
}

export type SeccompAction =
  | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_KILL_THREAD' | 'SCMP_ACT_TRAP' | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE' | 'SCMP_ACT_ALLOW' | 'SCMP_ACT_LOG' | 'SCMP_ACT_NOTIFY';

export type SeccompOperator =
  | 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';

/** config-linux.md "seccomp": the runtime compiles it to a BPF filter (libseccomp). */
export interface LinuxSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls: LinuxSyscall[];
}

export interface LinuxSyscall {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

/** Argument `index` (0-5) compared with `op`; MASKED_EQ: (arg & value) == valueTwo. */
export interface LinuxSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOperator;
}
