// Pod and container records → CRI messages (PodSandbox, PodSandboxStatus, Container,
// ContainerStatus), and the filters of the List rpcs, as containerd reports and applies them.
import type * as v1 from '../gen/v1.js';
import type { ContainerRecord, SandboxRecord } from '../../pod/records.js';
import type { SandboxView } from '../../pod/sandboxes.js';

export function matchLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function nsMode(v: unknown): v1.NamespaceMode {
  return (typeof v === 'string' ? v : 'POD') as v1.NamespaceMode;
}

export function toPodSandbox(s: SandboxView): v1.PodSandbox {
  return {
    id: s.id,
    metadata: s.config.metadata,
    state: s.state,
    created_at: s.createdAt,
    labels: s.config.labels,
    annotations: s.config.annotations,
    runtime_handler: s.runtimeHandler,
  };
}

export function toPodSandboxStatus(s: SandboxView): v1.PodSandboxStatus {
  const o = s.config.linux?.security_context?.namespace_options;
  return {
    ...toPodSandbox(s),
    network: s.ips.length ? { ip: s.ips[0], additional_ips: s.ips.slice(1).map((ip) => ({ ip })) } : { ip: '', additional_ips: [] },
    linux: {
      namespaces: {
        options: { network: nsMode(o?.network), pid: nsMode(o?.pid), ipc: nsMode(o?.ipc), target_id: o?.target_id ?? '' },
      },
    },
  };
}

export function sandboxInfo(s: SandboxRecord): Record<string, string> {
  return {
    info: JSON.stringify({
      pid: s.pid,
      netnsPath: s.netnsPath,
      runtimeHandler: s.runtimeHandler,
      hostname: s.hostname,
      cgroupPath: s.cgroupPath,
      config: s.config,
    }),
  };
}

export interface ContainerView extends ContainerRecord {
  state: string;
}

export function toContainer(c: ContainerView): v1.Container {
  return {
    id: c.id,
    pod_sandbox_id: c.sandboxId,
    metadata: c.config.metadata,
    image: { image: c.imageName, annotations: c.config.image?.annotations ?? {} },
    image_ref: c.imageId,
    image_id: c.imageId,
    state: c.state as v1.ContainerState,
    created_at: c.createdAt,
    labels: c.config.labels,
    annotations: c.config.annotations,
  };
}

/** What ContainerStatus reports of the container's image while the image is still present. */
export interface ImageNames {
  repoTags: string[];
  repoDigests: string[];
}

/**
 * ContainerStatus. As containerd does, the image is reported by its first repo tag and image_ref
 * by its first repo digest while the image is present; else as the container was created from.
 */
export function toContainerStatus(c: ContainerView, image?: ImageNames): v1.ContainerStatus {
  const exited = c.state === 'CONTAINER_EXITED';
  return {
    id: c.id,
    metadata: c.config.metadata,
    state: c.state as v1.ContainerState,
    created_at: c.createdAt,
    started_at: c.startedAt ?? '0',
    finished_at: exited ? (c.finishedAt ?? '0') : '0',
    exit_code: exited ? (c.exitCode ?? 0) : 0,
    image: { image: image?.repoTags[0] ?? c.imageName, annotations: c.config.image?.annotations ?? {} },
    image_ref: image?.repoDigests[0] ?? c.imageRepoDigest ?? c.imageId,
    image_id: c.imageId,
    reason: exited ? (c.reason ?? '') : '',
    message: c.message ?? '',
    labels: c.config.labels,
    annotations: c.config.annotations,
    mounts: c.config.mounts,
    log_path: c.logPath,
    stop_signal: (c.config.stop_signal ?? 'RUNTIME_DEFAULT'),
    // What the container's cgroup was given, at create or by the last UpdateContainerResources.
    ...(c.resources ? { resources: { linux: c.resources, windows: null } } : {}),
    // The effective uid, gid and groups of its process, as containerd reports them from the spec.
    ...(c.user ? { user: { linux: { uid: c.user.uid, gid: c.user.gid, supplemental_groups: [...c.user.supplementalGroups] } } } : {}),
  };
}

export function containerInfo(c: ContainerRecord): Record<string, string> {
  return {
    info: JSON.stringify({ pid: c.pid, monitorPid: c.monitorPid, sandboxID: c.sandboxId, bundle: c.bundle, stopSignal: c.stopSignal, config: c.config }),
  };
}
