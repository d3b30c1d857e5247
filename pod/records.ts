// What skiffd persists about pods and containers (versioned JSON, one file each, RecordStore).
// A record is written *before* the work it describes starts (state "creating"), so a skiffd killed
// mid-operation finds, at its next start, exactly what it has to finish or undo.
//
// Sandbox:   creating ──▶ ready ──▶ notready ──▶ (record deleted)
//               │  (crash)            ▲
//               └──▶ rolled back at start
//
// Container: creating ──▶ created ──▶ running ──▶ exited ──▶ (record deleted)
//               │ (crash)    │                    ▲
//               │            └────────────────────┘ (start failed, or stopped before start)
//               └──▶ rolled back at start
import type * as v1 from '../cri/gen/v1.js';
import type { NetworkMode } from '../network/service.js';

export const SANDBOX_RECORD_VERSION = 1;
export const CONTAINER_RECORD_VERSION = 1;

export type SandboxPhase = 'creating' | 'ready' | 'notready';

export interface SandboxRecord {
  version: typeof SANDBOX_RECORD_VERSION;
  id: string;
  /** The reservation key: name_namespace_uid_attempt. */
  name: string;
  /** Hash of the RunPodSandbox request, for idempotent retries. */
  fingerprint: string;
  config: v1.PodSandboxConfig__Output;
  runtimeHandler: string;
  phase: SandboxPhase;
  /** Nanoseconds since the epoch, as a decimal string (int64 on the wire). */
  createdAt: string;
  /** The pause process, and its start time (field 22 of /proc/PID/stat) to tell it from a reused pid. */
  pid?: number;
  pidStartTime?: string;
  /** The pinned network namespace; absent for host networking. */
  netnsPath?: string;
  /** The pinned ipc and uts namespaces (absent: the host's, or a record from before pins). */
  ipcPath?: string;
  utsPath?: string;
  /** The pinned pod user namespace (userns_options mode POD) and its mappings; absent: the host's. */
  userns?: { path: string; uid: { containerID: number; hostID: number; size: number }; gid: { containerID: number; hostID: number; size: number } };
  /** Per-pod files: hostname, hosts, resolv.conf; and the pod's /dev/shm tmpfs. */
  dir: string;
  shmPath?: string;
  hostname: string;
  /** Cgroup (relative to each controller's root) of the pause process, when the pod has a parent. */
  cgroupPath?: string;
  /** Pod IPs, IPv4 first, when the pod has its own network. */
  ips: string[];
  /** How its network was made (and so how it is unmade): the built-in bridge or CNI. */
  networkMode?: NetworkMode;
  /** The pod's overhead and resources from its last UpdatePodSandboxResources (kubelet sizes the pod cgroup). */
  overhead?: v1.LinuxContainerResources__Output;
  resources?: v1.LinuxContainerResources__Output;
}

export type ContainerPhase = 'creating' | 'created' | 'running' | 'exited';

export interface ContainerRecord {
  version: typeof CONTAINER_RECORD_VERSION;
  id: string;
  sandboxId: string;
  name: string;
  fingerprint: string;
  config: v1.ContainerConfig__Output;
  /** The image as the caller named it, and the resolved image id. */
  imageName: string;
  imageId: string;
  imageRepoDigest?: string;
  /** The image snapshots (chainIDs) the rootfs and the image volumes are mounted from: image GC must keep them. */
  snapshots: string[];
  /** Images mounted as volumes (CRI Mount.image), under the bundle: RemoveImage refuses them meanwhile. */
  imageVolumes?: { containerPath: string; image: string; imageId: string }[];
  phase: ContainerPhase;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Container init pid (host pid ns) and its start time. */
  pid?: number;
  pidStartTime?: string;
  monitorPid?: number;
  monitorStartTime?: string;
  exitCode?: number;
  reason?: string;
  message?: string;
  /** Absolute path of the CRI log file (empty when the pod has no log directory). */
  logPath: string;
  /** Bundle dir (config.json, rootfs mountpoint, pid/exit files, monitor socket) under the state dir. */
  bundle: string;
  /** Overlay upper and work dirs under the root dir (the writable layer). */
  upperDir: string;
  workDir: string;
  /** Stop signal chosen at create: config, else image StopSignal, else SIGTERM. */
  stopSignal: string;
  /** The cgroup's path relative to each hierarchy's root (config.json linux.cgroupsPath); see pod/cgroups/paths.ts. */
  cgroupsPath: string;
  /**
   * The resources the container has (ContainerStatus.resources): set at create from its spec, and
   * by each UpdateContainerResources. Absent in records written before resources were recorded.
   */
  resources?: v1.LinuxContainerResources__Output;
  /**
   * The process identity the spec gave the container (config.json process.user: uid, gid,
   * additionalGids), for ContainerStatus.user. Absent in records written before it was recorded.
   */
  user?: { uid: number; gid: number; supplementalGroups: number[] };
}

/** Nanoseconds since the epoch as a decimal string (CRI int64 timestamps). */
export function nowNanos(): string {
  // Wall clock at millisecond precision, refined by the monotonic clock so that two events in the
  // same millisecond stay ordered.
  return (WALL_ANCHOR_NS + (process.hrtime.bigint() - HR_ANCHOR_NS)).toString();
}

const HR_ANCHOR_NS = process.hrtime.bigint();
const WALL_ANCHOR_NS = BigInt(Date.now()) * 1_000_000n;
