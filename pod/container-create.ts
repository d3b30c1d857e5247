// CreateContainer's work: the bundle and its paths, the writable layer and overlay rootfs, the
// OCI config.json built by pod/spec from the image and the CRI config, and the monitor that runs
// the runtime's create. The record is written first (phase "creating") and every step registers
// its undo, so that a failure, or a crash found by recovery, leaves nothing behind.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { SkiffError } from '../common/errors.js';
import { logger } from '../common/log.js';
import type { ImageRecord } from '../images/image-store.js';
import { Cleanup } from './cleanup.js';
import { cgroupPathIn, podParentPath } from './cgroups/naming.js';
import { oomCounterFile } from './cgroups/paths.js';
import type { PodContext } from './context.js';
import { isSameProcess, processStartTime } from './host.js';
import { CONTAINER_RECORD_VERSION, nowNanos, type ContainerRecord, type SandboxRecord } from './records.js';
import { mountRootfs, readInRoot, unmountRootfs } from './rootfs.js';
import { releaseBundleMounts } from './bundle-mounts.js';
import { stageIdmappedMounts } from './idmap-mounts.js';
import { stageRecursiveReadOnly } from './rro-mounts.js';
import { handlerFeatures } from './runtime/features.js';
import { mountIdmappedRootfs } from './userns-rootfs.js';
import { mountImageVolumes, planImageVolumes } from './image-volumes.js';
import { cdiInjectionFor } from './cdi/registry.js';
import { startMonitor, stopMonitor } from './runtime/monitor.js';
import { buildContainerSpec, hostPathsToCreate, type ContainerSpecInput, type ResourceHost } from './spec/index.js';
import { criResources } from './spec/resources.js';
import { resourceHost } from './cgroups/host-facts.js';
import { hostCapabilities, hostDevices, hostPropagation, statDevice } from './spec/host-devices.js';
import { hostSecurity } from './spec/security-host.js';
import { withSeccompBpf } from './spec/seccomp/bpf.js';
import { compileSeccompBpf } from './seccomp-compiler.js';

const log = logger('container');
const NAME_MAX = 253;
/** skiffd's bounding set, read once: it does not change while the process runs. */
const HOST_CAPABILITIES = hostCapabilities();

export interface BundlePaths {
  bundle: string;
  rootfs: string;
  config: string;
  pidFile: string;
  exitFile: string;
  ctlSocket: string;
  monitorLog: string;
  runtimeLog: string;
}

export function bundlePaths(bundle: string): BundlePaths {
  return {
    bundle,
    rootfs: join(bundle, 'rootfs'),
    config: join(bundle, 'config.json'),
    pidFile: join(bundle, 'init.pid'),
    exitFile: join(bundle, 'exit.json'),
    ctlSocket: join(socketDir(bundle), 'ctl.sock'),
    monitorLog: join(bundle, 'monitor.log'),
    runtimeLog: join(bundle, 'runtime.log'),
  };
}

/**
 * A container's sockets (monitor control, console) live in a short dir beside the bundles:
 * <state>/s/<first 32 hex of the id>/, because a unix socket path must fit in 108 bytes.
 */
export function socketDir(bundle: string): string {
  return join(dirname(dirname(bundle)), 's', basename(bundle).slice(0, 32));
}

/** Reservation key: container_pod_namespace_uid_attempt (containerd's makeContainerName). */
export function containerName(c: v1.ContainerMetadata__Output, pod: v1.PodSandboxMetadata__Output): string {
  return `${c.name}_${pod.name}_${pod.namespace}_${pod.uid}_${c.attempt}`;
}

/**
 * Makes a container in `sandbox` (its name reserved by the caller): record first (phase
 * "creating"), then bundle, writable layer, overlay rootfs, config.json, and the monitor running the
 * runtime's create; every step registers its undo. Returns the id and the exit file to watch.
 */
export async function createContainerIn(
  ctx: PodContext,
  sandbox: SandboxRecord,
  name: string,
  fp: string,
  config: v1.ContainerConfig__Output,
  image: ImageRecord,
): Promise<{ id: string; exitFile: string }> {
  const sandboxConfig = sandbox.config;
  const id = randomBytes(32).toString('hex');
  const runtime = ctx.runtime(sandbox.runtimeHandler);
  const p = bundlePaths(ctx.bundleDir(id));
  const layer = ctx.layerDir(id);
  const logDir = sandbox.config.log_directory;
  const logPath = logDir && config.log_path ? join(logDir, config.log_path) : '';
  // Checked before anything is made: a bad image volume or CDI device leaves nothing behind.
  const volumes = planImageVolumes(ctx.images, config);
  const cdi = await cdiInjectionFor(ctx.cdiSpecDirs, config);
  const rec: ContainerRecord = {
    version: CONTAINER_RECORD_VERSION,
    id,
    sandboxId: sandbox.id,
    name,
    fingerprint: fp,
    config,
    imageName: config.image!.image,
    imageId: image.id,
    ...(image.repoDigests[0] ? { imageRepoDigest: image.repoDigests[0] } : {}),
    snapshots: [...image.layers.map((l) => l.chainID), ...volumes.flatMap((v) => v.chainIDs)],
    ...(volumes.length ? { imageVolumes: volumes.map((v) => ({ containerPath: v.containerPath, image: v.image, imageId: v.imageId })) } : {}),
    phase: 'creating',
    createdAt: nowNanos(),
    logPath,
    bundle: p.bundle,
    upperDir: join(layer, 'upper'),
    workDir: join(layer, 'work'),
    stopSignal: stopSignal(config, image),
    // A pod without a cgroup parent still gets one of skiff's, so every container has a cgroup.
    cgroupsPath: cgroupPathIn(ctx.cgroupDriver, podParentPath(ctx.cgroupDriver, sandbox.config.linux?.cgroup_parent ?? ''), id),
  };
  const cleanup = new Cleanup();
  try {
    await ctx.containers.create(rec);
    cleanup.add('delete record', () => ctx.containers.delete(id));
    await mkdir(p.bundle, { recursive: true, mode: 0o711 });
    cleanup.add('remove bundle', () => rm(p.bundle, { recursive: true, force: true }));
    await mkdir(socketDir(p.bundle), { recursive: true, mode: 0o700 });
    cleanup.add('remove socket dir', () => rm(socketDir(p.bundle), { recursive: true, force: true }));
    cleanup.add('remove writable layer', () => rm(layer, { recursive: true, force: true }));
    const emptyLower = join(layer, 'empty');
    if (image.layers.length === 0) await mkdir(emptyLower, { recursive: true });
    const lowerDirs = image.layers.length ? ctx.images.snapshots.lowerDirs(image.layers.map((l) => l.chainID)) : [emptyLower];
    // Registered first, so it runs after the rootfs is unmounted: the layers are under it.
    cleanup.add('release bundle mounts', () => releaseBundleMounts(p.bundle));
    cleanup.add('unmount rootfs', () => unmountRootfs(p.rootfs));
    const rootfs = { target: p.rootfs, upperDir: rec.upperDir, workDir: rec.workDir, lowerDirs };
    if (sandbox.userns) await mountIdmappedRootfs(rootfs, p.bundle, { path: sandbox.userns.path, hostUid: sandbox.userns.uid.hostID, hostGid: sandbox.userns.gid.hostID });
    else await mountRootfs(rootfs);
    // The record now holds the volume images; one removed before it was written is gone for good.
    const removed = volumes.find((v) => !ctx.images.images.get(v.imageId));
    if (removed) throw new SkiffError('SKIFF_NOT_FOUND', `container "${config.metadata?.name ?? ''}": image volume "${removed.containerPath}": image "${removed.image}" was removed`);
    const imageVolumes = await mountImageVolumes(p.bundle, config, volumes, (chainIDs) => ctx.images.snapshots.lowerDirs(chainIDs));

    // kubelet's hostPath volumes of type "" expect a missing directory to be made, as
    // containerd and CRI-O do.
    for (const dir of hostPathsToCreate(config, existsSync)) await mkdir(dir, { recursive: true, mode: 0o755 });
    const target = await targetPid(ctx, sandbox, config);
    const spec = buildContainerSpec({
      ...specInput(ctx, rec, sandbox, config, sandboxConfig, image, p.rootfs, target, {
        passwd: await readInRoot(p.rootfs, '/etc/passwd'),
        group: await readInRoot(p.rootfs, '/etc/group'),
      }, await resourceHost(ctx.cgroups)),
      imageVolumes,
      ...(cdi ? { cdi } : {}),
    });
    // A runtime without "rro" gets a recursively read-only copy instead (released with the bundle).
    if (!(await handlerFeatures(runtime.handler)).runtimeRro) stageRecursiveReadOnly(spec, p.bundle);
    // Volumes with the pod's mappings become idmapped copies (released with the bundle).
    if (sandbox.userns) stageIdmappedMounts(spec, p.bundle, sandbox.userns.path);
    if (runtime.handler.kind === 'crun') withSeccompBpf(spec, compileSeccompBpf);
    await writeFile(p.config, JSON.stringify(spec));
    if (logPath) await mkdir(dirname(logPath), { recursive: true });

    const runtimeArgv = runtime.createArgv(id, p.bundle, p.pidFile, {
      logFile: p.runtimeLog,
      ...(config.tty ? { consoleSocket: join(socketDir(p.bundle), 'console.sock') } : {}),
    });
    cleanup.add('runtime delete', () => runtime.delete(id, { force: true }));
    let started;
    try {
      started = await startMonitor({
        binary: ctx.native.monitor,
        id,
        logPath: logPath || '/dev/null',
        exitFile: p.exitFile,
        pidFile: p.pidFile,
        ctlSocket: p.ctlSocket,
        monitorLog: p.monitorLog,
        tty: config.tty,
        stdin: config.stdin,
        stdinOnce: config.stdin_once,
        runtimeArgv,
        ...oomFile(ctx, rec.cgroupsPath),
      }, async (monitorPid) => {
        // Not recorded yet: a restarted skiffd finds it by its --id (recover.ts findMonitors).
        const monitorStartTime = await processStartTime(monitorPid);
        cleanup.add('stop monitor', () => stopMonitor(monitorPid, monitorStartTime));
      });
    } catch (err) {
      const detail = (await readFile(p.runtimeLog, 'utf8').catch(() => '')).trim();
      const msg = lastRuntimeMessage(detail);
      throw msg ? new SkiffError('SKIFF_RUNTIME_FAILED', `container ${id}: ${runtime.handler.name} create: ${msg}`, { cause: err }) : err;
    }
    const [pidStartTime, monitorStartTime] = await Promise.all([processStartTime(started.pid), processStartTime(started.monitorPid)]);
    await ctx.containers.update(id, (r) => {
      r.phase = 'created';
      r.resources = criResources(spec.linux.resources, spec.process.oomScoreAdj);
      r.user = { uid: spec.process.user.uid, gid: spec.process.user.gid, supplementalGroups: [...(spec.process.user.additionalGids ?? [])] };
      r.pid = started.pid;
      r.monitorPid = started.monitorPid;
      if (pidStartTime) r.pidStartTime = pidStartTime;
      if (monitorStartTime) r.monitorStartTime = monitorStartTime;
    });
    cleanup.done();
    ctx.emit({ type: 'CONTAINER_CREATED_EVENT', containerId: id, sandboxId: sandbox.id, createdAt: nowNanos() });
    log.info({ container: id, sandbox: sandbox.id, name, pid: started.pid }, 'container created');
    return { id, exitFile: p.exitFile };
  } catch (err) {
    await cleanup.run({ container: id });
    throw err;
  }
}

function specInput(
  ctx: PodContext,
  rec: ContainerRecord,
  sandbox: SandboxRecord,
  config: v1.ContainerConfig__Output,
  sandboxConfig: v1.PodSandboxConfig__Output,
  image: ImageRecord,
  rootfs: string,
  targetPid: number | undefined,
  imageFiles: { passwd?: string; group?: string },
  host: ResourceHost,
): ContainerSpecInput {
  const o = sandbox.config.linux?.security_context?.namespace_options;
  const files = { hostname: join(sandbox.dir, 'hostname'), hosts: join(sandbox.dir, 'hosts'), resolvConf: join(sandbox.dir, 'resolv.conf') };
  return {
    id: rec.id,
    rootfs,
    config,
    sandboxConfig,
    image: image.config,
    imageName: rec.imageName,
    imageFiles,
    sandbox: {
      id: sandbox.id,
      pid: sandbox.pid!,
      ...(sandbox.netnsPath ? { netnsPath: sandbox.netnsPath } : {}),
      ...(sandbox.ipcPath ? { ipcPath: sandbox.ipcPath } : {}),
      ...(sandbox.utsPath ? { utsPath: sandbox.utsPath } : {}),
      hostNetwork: !sandbox.netnsPath,
      hostIPC: String(o?.ipc ?? 'POD') === 'NODE',
      hostPID: String(o?.pid ?? 'POD') === 'NODE',
      pidMode: String(config.linux?.security_context?.namespace_options?.pid ?? o?.pid ?? 'POD') as 'POD' | 'CONTAINER' | 'NODE' | 'TARGET',
      ...(targetPid ? { targetPid } : {}),
      hostname: sandbox.hostname,
      files,
      ...(sandbox.shmPath ? { shmPath: sandbox.shmPath } : {}),
      ...(sandbox.userns ? { userns: sandbox.userns } : {}),
      cgroupParent: sandbox.config.linux?.cgroup_parent ?? '',
    },
    cgroupsPath: rec.cgroupsPath,
    cgroupV2: ctx.cgroups.mode === 'unified',
    resourceHost: host,
    statDevice,
    hostPathExists: (path: string) => existsSync(path),
    hostPropagation,
    hostCapabilities: HOST_CAPABILITIES,
    securityHost: hostSecurity(),
    ...(config.linux?.security_context?.privileged ? { privilegedDevices: hostDevices() } : {}),
  };
}

/**
 * pid mode TARGET (ephemeral debug containers): the init pid of the target container, which must
 * be a running container of the same pod. Undefined for other modes, or when it is not running
 * (the spec builder then refuses with the target named).
 */
async function targetPid(ctx: PodContext, sandbox: SandboxRecord, config: v1.ContainerConfig__Output): Promise<number | undefined> {
  const o = config.linux?.security_context?.namespace_options;
  if (String(o?.pid ?? '') !== 'TARGET') return undefined;
  const target = o?.target_id ? ctx.containers.find(o.target_id) : undefined;
  if (!target || target.sandboxId !== sandbox.id || target.phase !== 'running') return undefined;
  return (await isSameProcess(target.pid, target.pidStartTime)) ? target.pid : undefined;
}

export function validateContainerConfig(config: v1.ContainerConfig__Output | null): asserts config is v1.ContainerConfig__Output {
  const m = config?.metadata;
  if (!config || !m) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'CreateContainer: config.metadata is required');
  if (!m.name) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'CreateContainer: metadata.name must not be empty');
  if (m.name.length > NAME_MAX) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `CreateContainer: metadata.name is ${m.name.length} characters, over ${NAME_MAX}`);
  if (/[\0/]/.test(m.name)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `CreateContainer: metadata.name "${m.name}" contains "/" or NUL`);
  if (!config.image?.image) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'CreateContainer: image.image must name an image');
}

/** The container config's stop_signal, else the image's StopSignal, else SIGTERM. */
export function stopSignal(config: v1.ContainerConfig__Output, image: ImageRecord): string {
  const fromConfig = String(config.stop_signal ?? 'RUNTIME_DEFAULT');
  if (fromConfig && fromConfig !== 'RUNTIME_DEFAULT') return fromConfig.replace(/^SIG/, '');
  const fromImage = image.config.StopSignal?.trim();
  if (fromImage) return fromImage.replace(/^SIG/, '');
  return 'TERM';
}

function lastRuntimeMessage(logText: string): string {
  const lines = logText.split('\n').filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const j = JSON.parse(lines[i]) as { msg?: string; level?: string };
      if (j.msg && (j.level === 'error' || j.level === 'fatal')) return j.msg;
    } catch {
      return lines[i];
    }
  }
  return '';
}

/** The memory cgroup file whose oom_kill counter tells the monitor of an OOM kill (v1 or v2). */
function oomFile(ctx: PodContext, cgroupsPath: string): { oomFile?: string } {
  const file = oomCounterFile(ctx.cgroups, cgroupsPath);
  return file ? { oomFile: file } : {};
}
