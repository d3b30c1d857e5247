// What buildContainerSpec needs to know: the CRI requests, the image config, the sandbox it joins,
// and the few host facts it cannot compute (device numbers, existing paths). Everything that comes
// from disk is read by the caller, so building a spec is a pure function.
import type * as v1 from '../../cri/gen/v1.js';
import type { ImageRuntimeConfig } from '../../images/oci.js';
import type { LinuxIDMapping } from './oci-spec.js';
import type { SecurityHost } from './security-host.js';
import type { CdiInjection } from './cdi.js';

export type PidMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

/** A host device node, as stat(2) describes it. */
export interface DeviceInfo {
  type: 'c' | 'b';
  major: number;
  minor: number;
  /** Permission bits (st_mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
}

/** A host device node given to privileged containers. */
export interface HostDevice extends DeviceInfo {
  path: string;
}

/** Propagation of the host mount that holds a path (from /proc/self/mountinfo). */
export type HostPropagation = 'shared' | 'slave' | 'private';

/** The sandbox the container joins. */
export interface SandboxInfo {
  /** 64-hex sandbox id. */
  id: string;
  /** The pause process, whose ipc/uts/pid namespaces the container joins by /proc/<pid>/ns/*. */
  pid: number;
  /** The pinned network namespace; undefined for host network. */
  netnsPath?: string;
  /** The pinned ipc and uts namespaces; undefined: the pause process's (/proc/<pid>/ns/*). */
  ipcPath?: string;
  utsPath?: string;
  hostNetwork: boolean;
  hostIPC: boolean;
  /** Informational: the pid namespace follows pidMode (NODE is the host's). */
  hostPID?: boolean;
  /** The container's namespace_options.pid: the pod's mode, or TARGET for an ephemeral container. */
  pidMode: PidMode;
  /** Init pid of the target container when pidMode is TARGET. */
  targetPid?: number;
  /** Pod hostname; for host network the node's hostname. Becomes $HOSTNAME. */
  hostname: string;
  /** Host paths of the pod's files, bind-mounted at /etc/hostname, /etc/hosts, /etc/resolv.conf; '' = none. */
  files: { hostname: string; hosts: string; resolvConf: string };
  /** The pod's /dev/shm tmpfs; undefined when hostIPC (the host's /dev/shm is used then). */
  shmPath?: string;
  /** Informational: the caller computes cgroupsPath from it. */
  cgroupParent?: string;
  /** The pod's user namespace (userns_options mode POD): its pin and mappings; absent: the host's. */
  userns?: { path: string; uid: LinuxIDMapping; gid: LinuxIDMapping };
}

/** What the host's cgroups allow, for resources (pod/cgroups/host-facts.ts reads them). */
export interface ResourceHost {
  /** cgroup v2 (unified): `unified` keys apply. */
  cgroupV2: boolean;
  /** A swap controller exists (v1 memory.memsw.*, v2 memory.swap.max): swap limits apply. */
  swap: boolean;
  /** Hugepage sizes ("2MB", "1GB") when the hugetlb controller exists; undefined: it does not. */
  hugepageSizes?: string[];
  /** skiffd's own oom_score_adj: the lowest score it can give without CAP_SYS_RESOURCE. */
  minOomScoreAdj?: number;
}

export interface ContainerSpecInput {
  /** 64-hex container id. */
  id: string;
  /** Absolute path of the mounted rootfs. */
  rootfs: string;
  /** CRI CreateContainer config, decoded with defaults (empty strings/arrays, nulls). */
  config: v1.ContainerConfig__Output;
  sandboxConfig: v1.PodSandboxConfig__Output;
  image: ImageRuntimeConfig;
  /** The image's name for the io.kubernetes.cri.image-name annotation. */
  imageName: string;
  /** Contents of the image rootfs's /etc/passwd and /etc/group; undefined when absent. */
  imageFiles: { passwd?: string; group?: string };
  sandbox: SandboxInfo;
  /** linux.cgroupsPath, computed by the caller; '' leaves it to the runtime. */
  cgroupsPath: string;
  /** cgroup v2 (unified): the container gets a private cgroup namespace. */
  cgroupV2: boolean;
  /** The host's cgroup facts for resources; absent: cgroupV2 alone, no swap or hugetlb, no clamp. */
  resourceHost?: ResourceHost;
  /** stat(2) of a CRI device's host path; undefined when missing or not a device node. */
  statDevice(path: string): DeviceInfo | undefined;
  /** Whether a CRI mount's host path exists (see hostPathsToCreate). */
  hostPathExists(path: string): boolean;
  /** Propagation of the host mount holding a path; when given, rshared/rslave mounts are checked. */
  hostPropagation?(path: string): HostPropagation;
  /** Capabilities skiffd holds (its bounding set); "all capabilities" means these. */
  hostCapabilities?: readonly string[];
  /** Host device nodes for privileged containers (the caller lists /dev). */
  privilegedDevices?: HostDevice[];
  /** Architecture, kernel, AppArmor/SELinux and Localhost seccomp files; absent: seccomp/index.ts NO_HOST. */
  securityHost?: SecurityHost;
  /** Image volumes the caller mounted: CRI container_path → host dir (image_sub_path applied). */
  imageVolumes?: ReadonlyMap<string, string>;
  /** The CDI devices the caller resolved (pod/cdi/) and their edits, in order. */
  cdi?: CdiInjection;
}
