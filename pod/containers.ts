// Containers: CreateContainer (its work in container-create.ts), StartContainer, StopContainer
// (stop signal, grace period, SIGKILL), RemoveContainer, status with exit reasons, ExecSync,
// ReopenContainerLog. Records are written before the work so recovery can finish or undo it.
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { SkiffError } from '../common/errors.js';
import { failpoint } from '../common/failpoint.js';
import { logger } from '../common/log.js';
import { oomCounterFile } from './cgroups/paths.js';
import { bundlePaths, containerName, createContainerIn, socketDir, validateContainerConfig } from './container-create.js';
import type { PodContext } from './context.js';
import { readExitFile, watchExit, type ExitStatus } from './exits.js';
import { isSameProcess, waitGone } from './host.js';
import { nowNanos, type ContainerRecord, type SandboxRecord } from './records.js';
import { unmountRootfs } from './rootfs.js';
import { releaseBundleMounts } from './bundle-mounts.js';
import type { OciRuntime } from './runtime/oci.js';
import { reopenLog } from './runtime/monitor-ctl.js';
import { stopMonitor } from './runtime/monitor.js';
import { monitorExec, monitorExecSession, type ExecSession } from './runtime/monitor-exec.js';
import { monitorAttach, type AttachSession } from './runtime/monitor-attach.js';
import type { Sandboxes } from './sandboxes.js';
import { updateContainerResources } from './resources-update.js';
import { KeyedRWLock } from './store/rwlock.js';
import { fingerprint } from './store/names.js';

export { bundlePaths, socketDir } from './container-create.js';

const log = logger('container');
/** At most this much of an ExecSync stream is kept (kubelet caps probe output far lower). */
const EXEC_OUTPUT_MAX = 16 << 20;

/** CRI reason for an exit: kubelet shows it and restarts by it. */
export function exitReason(exitCode: number, oomKilled: boolean): string {
  if (oomKilled) return 'OOMKilled';
  return exitCode === 0 ? 'Completed' : 'Error';
}

export class Containers {
  private readonly watchers = new Map<string, () => void>();
  private readonly processSpecs = new Map<string, Record<string, unknown>>();
  private readonly updateLocks = new KeyedRWLock();

  constructor(
    private readonly ctx: PodContext,
    private readonly sandboxes: Sandboxes,
  ) {}

  /**
   * CreateContainer. The request's sandbox_config is not trusted over the sandbox's own record (as
   * in containerd): sysctls, namespaces and the cgroup parent are the pod's, fixed when it ran.
   */
  async create(sandboxId: string, config: v1.ContainerConfig__Output | null, _sandboxConfig?: v1.PodSandboxConfig__Output | null): Promise<string> {
    const found = this.sandboxes.find(sandboxId);
    if (!found) throw new SkiffError('SKIFF_NOT_FOUND', `sandbox "${sandboxId}" not found`);
    validateContainerConfig(config);
    return this.ctx.sandboxLocks.read(found.id, async () => {
      const sandbox = this.ctx.sandboxes.get(found.id);
      if (!sandbox) throw new SkiffError('SKIFF_NOT_FOUND', `sandbox "${sandboxId}" not found`);
      if (sandbox.phase !== 'ready') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `sandbox ${sandbox.id} is not ready`);
      // The container joins /proc/<pause>/ns/*: that pid must still be our pause, never a reused one.
      if (!(await isSameProcess(sandbox.pid, sandbox.pidStartTime))) {
        throw new SkiffError('SKIFF_FAILED_PRECONDITION', `sandbox ${sandbox.id}: its pause process is gone; stop and recreate the pod`);
      }
      return this.createChecked(sandbox, config);
    });
  }

  private async createChecked(sandbox: SandboxRecord, config: v1.ContainerConfig__Output): Promise<string> {
    const image = this.ctx.images.resolve(config.image!.image);
    if (!image) throw new SkiffError('SKIFF_NOT_FOUND', `image "${config.image!.image}" not found: pull it first`);
    const name = containerName(config.metadata!, sandbox.config.metadata!);
    const fp = fingerprint({ sandboxId: sandbox.id, config });
    const { id } = await this.ctx.containerNames.reserve(name, fp, async () => {
      const made = await createContainerIn(this.ctx, sandbox, name, fp, config, image);
      this.watch(made.id, made.exitFile);
      return made.id;
    });
    return id;
  }

  async start(idOrPrefix: string): Promise<void> {
    const found = this.mustFind(idOrPrefix);
    await this.ctx.sandboxLocks.read(found.sandboxId, () => this.startLocked(found.id));
  }

  private async startLocked(id: string): Promise<void> {
    const rec = this.mustFind(id);
    if (rec.phase !== 'created') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container ${rec.id} is ${rec.phase}, not created`);
    const runtime = this.runtimeOf(rec);
    // Taken before the process is released: a container that exits at once must not appear to
    // have finished before it started.
    const startedAt = nowNanos();
    try {
      await runtime.start(rec.id);
    } catch (err) {
      await this.ctx.containers.update(rec.id, (r) => {
        r.phase = 'exited';
        r.finishedAt = nowNanos();
        r.exitCode = 128;
        r.reason = 'StartError';
        r.message = (err as Error).message;
      });
      throw err;
    }
    await failpoint('container-after-start');
    await this.ctx.containers.update(rec.id, (r) => {
      if (r.phase === 'created') r.phase = 'running';
      r.startedAt = startedAt;
    });
    this.ctx.emit({ type: 'CONTAINER_STARTED_EVENT', containerId: rec.id, sandboxId: rec.sandboxId, createdAt: nowNanos() });
    // An exit that came before the record said "running" is applied now.
    const exit = await readExitFile(bundlePaths(rec.bundle).exitFile);
    if (exit) await this.onExit(rec.id, exit);
  }

  /** StopContainer: stop signal, `timeoutSec` grace, then SIGKILL. Unknown or stopped: done. */
  async stop(idOrPrefix: string, timeoutSec: number): Promise<void> {
    const rec = this.find(idOrPrefix);
    if (!rec || rec.phase === 'exited' || rec.phase === 'creating') return;
    const runtime = this.runtimeOf(rec);
    const exitFile = bundlePaths(rec.bundle).exitFile;
    if (rec.phase === 'created') {
      // Never started: the init waits in the runtime's create; kill it outright.
      await runtime.kill(rec.id, 'KILL').catch(() => undefined);
    } else if (timeoutSec > 0) {
      await runtime.kill(rec.id, rec.stopSignal).catch((err: unknown) => log.warn({ container: rec.id, err }, 'stop signal failed'));
      if (await this.waitExit(exitFile, rec, timeoutSec * 1000)) return;
    }
    await runtime.kill(rec.id, 'KILL', { all: true }).catch((err: unknown) => log.warn({ container: rec.id, err }, 'SIGKILL failed'));
    if (!(await this.waitExit(exitFile, rec, 10_000))) {
      throw new SkiffError('SKIFF_RUNTIME_FAILED', `container ${rec.id} did not exit after SIGKILL`);
    }
  }

  /** Waits for the exit file (woken by inotify, checking every 50 ms besides); false on timeout. */
  private async waitExit(exitFile: string, rec: ContainerRecord, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    let wake = (): void => undefined;
    const unwatch = watchExit(exitFile, () => wake());
    try {
      return await this.waitExitLoop(exitFile, rec, until, (t) => new Promise<void>((r) => {
        const timer = setTimeout(r, t);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      }));
    } finally {
      unwatch();
    }
  }

  private async waitExitLoop(exitFile: string, rec: ContainerRecord, until: number, pause: (ms: number) => Promise<void>): Promise<boolean> {
    for (;;) {
      const exit = await readExitFile(exitFile);
      if (exit) {
        await this.onExit(rec.id, exit);
        return true;
      }
      // No monitor left to write the exit file: once the container is gone too, its exit status
      // is lost; record it as unknown (255, as containerd does) rather than wait forever.
      if (!(await isSameProcess(rec.monitorPid, rec.monitorStartTime)) && !(await isSameProcess(rec.pid, rec.pidStartTime))) {
        await this.onExit(rec.id, { exitCode: 255, signal: 0, exitedAt: nowNanos() });
        await this.ctx.containers.update(rec.id, (r) => {
          r.message = 'the container monitor died; exit status unknown';
        });
        return true;
      }
      if (Date.now() > until) return false;
      await pause(Math.min(50, Math.max(1, until - Date.now())));
    }
  }

  /** RemoveContainer: stops it if needed, then deletes everything of it. Unknown: done. */
  async remove(idOrPrefix: string): Promise<void> {
    const rec = this.find(idOrPrefix);
    if (!rec) return;
    await this.stop(rec.id, 0);
    // The monitor exits right after writing the exit file; its bundle and sockets go only after it.
    if (!(await waitGone(rec.monitorPid ?? 0, rec.monitorStartTime, 5000))) {
      log.warn({ container: rec.id, pid: rec.monitorPid }, 'monitor still running 5 s after its container exited; killing it');
      await stopMonitor(rec.monitorPid!, rec.monitorStartTime);
    }
    const runtime = this.runtimeOf(rec);
    await runtime.delete(rec.id, { force: true });
    this.watchers.get(rec.id)?.();
    this.watchers.delete(rec.id);
    this.processSpecs.delete(rec.id);
    unmountRootfs(bundlePaths(rec.bundle).rootfs);
    await releaseBundleMounts(rec.bundle);
    await rm(rec.bundle, { recursive: true, force: true });
    await rm(socketDir(rec.bundle), { recursive: true, force: true });
    await rm(this.ctx.layerDir(rec.id), { recursive: true, force: true });
    await this.ctx.containers.delete(rec.id);
    this.ctx.containerNames.release(rec.name, rec.id);
    // The image may have been removed while this container ran: its snapshots are garbage now.
    if (!this.ctx.images.images.get(rec.imageId)) await this.ctx.images.gc();
    this.ctx.emit({ type: 'CONTAINER_DELETED_EVENT', containerId: rec.id, sandboxId: rec.sandboxId, createdAt: nowNanos() });
    log.info({ container: rec.id }, 'container removed');
  }

  /** Records an exit (once): exit code, reason, finish time. */
  async onExit(id: string, exit: ExitStatus): Promise<void> {
    const rec = this.ctx.containers.get(id);
    if (!rec || rec.phase === 'exited') return;
    // The monitor's word first; a cgroup counter read now covers exit files of older monitors.
    const oom = exit.oomKilled === true || (exit.oomKilled === undefined && exit.signal === 9 && (await this.oomKilled(rec)));
    let changed = false; // the watcher and a stop may both see the exit: only one records it
    await this.ctx.containers.update(id, (r) => {
      if (r.phase === 'exited') return;
      changed = true;
      r.phase = 'exited';
      r.exitCode = exit.exitCode;
      r.finishedAt = exit.exitedAt !== '0' ? exit.exitedAt : nowNanos();
      r.reason = exitReason(exit.exitCode, oom);
    });
    if (!changed) return;
    this.ctx.emit({ type: 'CONTAINER_STOPPED_EVENT', containerId: id, sandboxId: rec.sandboxId, createdAt: nowNanos() });
    log.info({ container: id, exitCode: exit.exitCode }, 'container exited');
  }

  /** The cgroup's OOM kill counter (v1 memory.oom_control, v2 memory.events) says so. */
  private async oomKilled(rec: ContainerRecord): Promise<boolean> {
    const file = oomCounterFile(this.ctx.cgroups, rec.cgroupsPath);
    if (!file) return false;
    const text = await readFile(file, 'utf8').catch(() => '');
    const m = /^oom_kill (\d+)$/m.exec(text);
    return m !== null && Number(m[1]) > 0;
  }

  watch(id: string, exitFile: string): void {
    if (this.watchers.has(id)) return;
    this.watchers.set(
      id,
      watchExit(exitFile, (s) => {
        this.watchers.delete(id);
        void this.onExit(id, s).catch((err: unknown) => log.error({ container: id, err }, 'recording exit failed'));
      }),
    );
  }

  /** Live view: a running record whose process is gone without an exit file is UNKNOWN. */
  async view(rec: ContainerRecord): Promise<ContainerRecord & { state: string }> {
    if (rec.phase === 'running' || rec.phase === 'created') {
      const exit = await readExitFile(bundlePaths(rec.bundle).exitFile);
      if (exit) {
        await this.onExit(rec.id, exit);
        const now = this.ctx.containers.get(rec.id) ?? rec;
        return { ...now, state: 'CONTAINER_EXITED' };
      }
      if (!(await isSameProcess(rec.pid, rec.pidStartTime))) return { ...rec, state: 'CONTAINER_UNKNOWN' };
    }
    const state = { creating: 'CONTAINER_UNKNOWN', created: 'CONTAINER_CREATED', running: 'CONTAINER_RUNNING', exited: 'CONTAINER_EXITED' }[rec.phase];
    return { ...rec, state };
  }

  /** ExecSync: runs `cmd` in the container with its process settings; returns output and code. */
  /**
   * ExecSync: the container's monitor runs the runtime's exec (so the process outlives neither the
   * deadline nor a vanished skiffd) and streams its output back; at the deadline it kills the
   * exec'd process and everything it started.
   */
  async execSync(idOrPrefix: string, cmd: string[], timeoutSec: number): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }> {
    const rec = this.mustFind(idOrPrefix);
    if (rec.phase !== 'running') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container ${rec.id} is not running`);
    if (cmd.length === 0) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'ExecSync: cmd must not be empty');
    const p = bundlePaths(rec.bundle);
    const tag = randomBytes(6).toString('hex');
    const processFile = join(rec.bundle, `exec-${tag}.json`);
    const pidFile = join(rec.bundle, `exec-${tag}.pid`);
    await writeFile(processFile, JSON.stringify({ ...(await this.processSpec(rec)), args: cmd, terminal: false }));
    try {
      const r = await monitorExec(p.ctlSocket, {
        argv: this.runtimeOf(rec).execArgv(rec.id, processFile, pidFile),
        pidFile,
        timeoutMs: timeoutSec > 0 ? timeoutSec * 1000 : 0,
        maxOutput: EXEC_OUTPUT_MAX,
      }).catch(async (err: unknown) => {
        // No monitor to ask: the container has exited (its exit file says so) or lost its monitor.
        if (!(await isSameProcess(rec.monitorPid, rec.monitorStartTime))) throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container ${rec.id} is not running`, { cause: err });
        throw err;
      });
      if (r.timedOut) {
        throw new SkiffError('SKIFF_DEADLINE_EXCEEDED', `ExecSync in container ${rec.id}: command ${JSON.stringify(cmd)} timed out after ${timeoutSec}s`);
      }
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    } finally {
      await Promise.all([rm(processFile, { force: true }), rm(pidFile, { force: true })]);
    }
  }

  /**
   * An interactive exec (the streaming server's): the monitor runs the runtime's exec with a stdin
   * pipe and/or a terminal, and relays it. The process file and pid file go when it ends.
   */
  async execSession(idOrPrefix: string, cmd: string[], o: { stdin: boolean; tty: boolean }): Promise<ExecSession> {
    const rec = this.mustFind(idOrPrefix);
    if (rec.phase !== 'running') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container ${rec.id} is not running`);
    const tag = randomBytes(6).toString('hex');
    const processFile = join(rec.bundle, `exec-${tag}.json`);
    const pidFile = join(rec.bundle, `exec-${tag}.pid`);
    const consoleSocket = o.tty ? join(socketDir(rec.bundle), `exec-${tag}.sock`) : undefined;
    await writeFile(processFile, JSON.stringify({ ...(await this.processSpec(rec)), args: cmd, terminal: o.tty }));
    const tidy = (): Promise<unknown> => Promise.all([rm(processFile, { force: true }), rm(pidFile, { force: true }), consoleSocket ? rm(consoleSocket, { force: true }) : undefined]);
    try {
      const session = await monitorExecSession(bundlePaths(rec.bundle).ctlSocket, {
        argv: this.runtimeOf(rec).execArgv(rec.id, processFile, pidFile, consoleSocket ? { consoleSocket } : {}),
        pidFile,
        timeoutMs: 0,
        stdin: o.stdin,
        tty: o.tty,
        ...(consoleSocket ? { consoleSocket } : {}),
      });
      void session.exited.finally(tidy);
      return session;
    } catch (err) {
      await tidy();
      throw err;
    }
  }

  /** Attaches to the container's own stdio through its monitor. */
  async attachSession(idOrPrefix: string, o: { stdin: boolean; stdout: boolean; stderr: boolean }): Promise<AttachSession> {
    const rec = this.mustFind(idOrPrefix);
    if (rec.phase !== 'running') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container ${rec.id} is not running`);
    return monitorAttach(bundlePaths(rec.bundle).ctlSocket, o);
  }

  /** The container's process from its config.json, read once per container (it never changes). */
  private async processSpec(rec: ContainerRecord): Promise<Record<string, unknown>> {
    let spec = this.processSpecs.get(rec.id);
    if (!spec) {
      spec = (JSON.parse(await readFile(bundlePaths(rec.bundle).config, 'utf8')) as { process: Record<string, unknown> }).process;
      this.processSpecs.set(rec.id, spec);
    }
    return spec;
  }

  /**
   * UpdateContainerResources (pod/resources-update.ts). One update of a container at a time, and
   * none while its pod is being stopped or removed.
   */
  async updateResources(idOrPrefix: string, linux: v1.LinuxContainerResources__Output): Promise<void> {
    const found = this.mustFind(idOrPrefix);
    await this.ctx.sandboxLocks.read(found.sandboxId, () =>
      this.updateLocks.write(found.id, async () => {
        const rec = this.mustFind(found.id);
        if (rec.phase === 'creating') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container ${rec.id} is still being created`);
        const gone = async (): Promise<boolean> => !['CONTAINER_RUNNING', 'CONTAINER_CREATED'].includes((await this.view(this.mustFind(rec.id))).state);
        await updateContainerResources(this.ctx, rec, this.runtimeOf(rec), linux, gone);
      }),
    );
  }

  async reopenLog(idOrPrefix: string): Promise<void> {
    const rec = this.mustFind(idOrPrefix);
    if (rec.phase !== 'running') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container ${rec.id} is not running`);
    await reopenLog(bundlePaths(rec.bundle).ctlSocket);
  }

  find(idOrPrefix: string): ContainerRecord | undefined {
    return this.ctx.containers.find(idOrPrefix);
  }


  mustFind(idOrPrefix: string): ContainerRecord {
    const rec = this.find(idOrPrefix);
    if (!rec) throw new SkiffError('SKIFF_NOT_FOUND', `container "${idOrPrefix}" not found`);
    return rec;
  }

  list(): ContainerRecord[] {
    return this.ctx.containers.list().filter((r) => r.phase !== 'creating');
  }

  /** The OCI runtime of the container's pod (its RuntimeClass handler). */
  private runtimeOf(rec: ContainerRecord): OciRuntime {
    return this.ctx.runtime(this.ctx.sandboxes.get(rec.sandboxId)?.runtimeHandler ?? '');
  }

  /** Live views of the containers of one sandbox. */
  views(sandboxId: string): Promise<(ContainerRecord & { state: string })[]> {
    return Promise.all(this.list().filter((c) => c.sandboxId === sandboxId).map((c) => this.view(c)));
  }
}
