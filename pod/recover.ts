// Recovery at skiffd start. Assumptions, in the spirit of containerd's podsandbox/recover.go:
// - Records are the truth for what exists; a record in phase "creating" is an operation a crash
//   interrupted, and it is undone (never finished): kubelet retries the call.
// - Pause processes and container monitors outlive skiffd; a live one is matched to its record by
//   pid *and* start time, so a reused pid is never mistaken for ours.
// - A container exit that happened while skiffd was down is in its exit file, written by the monitor.
// - What is on disk under the state dir with no record (bundles, netns pins, sandbox dirs) is an
//   orphan of a crash between "made" and "recorded", and is removed.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../common/log.js';
import type { Containers } from './containers.js';
import { bundlePaths, socketDir } from './containers.js';
import type { PodContext } from './context.js';
import { findMonitors, processStartTime, removeCgroup, unpinNamespace, waitGone } from './host.js';
import { nowNanos, type ContainerRecord } from './records.js';
import { stopMonitor } from './runtime/monitor.js';
import { unmountRootfs } from './rootfs.js';
import { releaseBundleMounts } from './bundle-mounts.js';
import type { Sandboxes } from './sandboxes.js';
import { unmount } from '../native/sys.js';

const log = logger('recover');

export interface RecoveryReport {
  sandboxes: number;
  containers: number;
  rolledBack: number;
  orphans: number;
}

export async function recover(ctx: PodContext, sandboxes: Sandboxes, containers: Containers): Promise<RecoveryReport> {
  await ctx.sandboxes.load();
  await ctx.containers.load();
  let rolledBack = 0;

  const monitors = await findMonitors(join(ctx.stateDir, 'containers'));
  for (const c of ctx.containers.list()) {
    if (c.phase === 'creating') {
      log.warn({ container: c.id }, 'rolling back a container whose creation was interrupted');
      const monitorPid = monitors.get(c.id);
      if (monitorPid) await stopMonitor(monitorPid, await processStartTime(monitorPid));
      await undoContainer(ctx, c.id, c.bundle, c.sandboxId, c.cgroupsPath);
      rolledBack++;
      continue;
    }
    ctx.containerNames.restore(c.name, c.id, c.fingerprint);
    if (c.phase === 'created') await reconcileCreated(ctx, c);
    if (c.phase === 'created' || c.phase === 'running') containers.watch(c.id, bundlePaths(c.bundle).exitFile);
  }
  // A monitor whose container has no record (killed between its spawn and the record, or its
  // record removed by hand) supervises nothing skiffd knows: stop it and what it runs.
  for (const [id, pid] of monitors) {
    if (ctx.containers.has(id)) continue;
    log.warn({ container: id, pid }, 'stopping an orphaned monitor');
    await stopMonitor(pid, await processStartTime(pid));
  }
  for (const s of ctx.sandboxes.list()) {
    if (s.phase === 'creating') {
      log.warn({ sandbox: s.id }, 'rolling back a sandbox whose creation was interrupted');
      try {
        await sandboxes.tearDown(s);
        await rm(s.dir, { recursive: true, force: true });
        await ctx.sandboxes.delete(s.id);
        rolledBack++;
      } catch (err) {
        // One stuck pod must never keep skiffd from starting: keep its record (NOTREADY) so a
        // later RemovePodSandbox can finish the job, and say what is left.
        log.error({ sandbox: s.id, err }, 'rollback of an interrupted sandbox failed; it stays NOTREADY');
        await ctx.sandboxes.update(s.id, (r) => {
          r.phase = 'notready';
        });
        ctx.sandboxNames.restore(s.name, s.id, s.fingerprint);
      }
      continue;
    }
    ctx.sandboxNames.restore(s.name, s.id, s.fingerprint);
  }
  const orphans = await removeOrphans(ctx);
  // Network state of pods that have no record (any more): addresses, veths, rules, CNI attachments.
  await ctx.network.reconcile(new Set(ctx.sandboxes.list().map((s) => s.id))).catch((err: unknown) => log.error({ err }, 'pod network state not reconciled'));
  const report = { sandboxes: ctx.sandboxes.list().length, containers: ctx.containers.list().length, rolledBack, orphans };
  log.info(report, 'pods recovered');
  return report;
}

/**
 * A container recorded "created" whose StartContainer was cut short after the runtime started it:
 * the runtime's state says so, and the record catches up (started at the process's start time).
 */
async function reconcileCreated(ctx: PodContext, c: ContainerRecord): Promise<void> {
  const handler = ctx.sandboxes.get(c.sandboxId)?.runtimeHandler ?? '';
  const state = await ctx.runtime(handler).state(c.id).catch((err: unknown) => {
    log.warn({ container: c.id, err }, 'runtime state during recovery failed');
    return undefined;
  });
  if (state?.status !== 'running') return;
  // The start removed the runtime's exec fifo: its state dir's mtime is the start, within the
  // bounds of what the record knows.
  const now = BigInt(nowNanos());
  const changed = (await ctx.runtime(handler).stateChangedAt(c.id)) ?? now;
  const startedAt = (changed < BigInt(c.createdAt) ? BigInt(c.createdAt) : changed > now ? now : changed).toString();
  log.warn({ container: c.id }, 'container was started before skiffd went down; recording it running');
  await ctx.containers.update(c.id, (r) => {
    r.phase = 'running';
    r.startedAt = startedAt;
  });
  c.phase = 'running';
}

async function undoContainer(ctx: PodContext, id: string, bundle: string, sandboxId: string, cgroupsPath: string): Promise<void> {
  const handler = ctx.sandboxes.get(sandboxId)?.runtimeHandler ?? '';
  try {
    await ctx.runtime(handler).delete(id, { force: true });
  } catch (err) {
    log.warn({ container: id, err }, 'runtime delete during rollback failed');
  }
  // The runtime removes the cgroup it made; one it had not recorded yet would be left.
  if (cgroupsPath) await removeCgroup(ctx.cgroups, cgroupsPath).catch((err: unknown) => log.warn({ container: id, err }, 'cannot remove the cgroup of a rolled-back container'));
  unmountRootfs(bundlePaths(bundle).rootfs);
  await releaseBundleMounts(bundle);
  await rm(bundle, { recursive: true, force: true });
  await rm(socketDir(bundle), { recursive: true, force: true });
  await rm(ctx.layerDir(id), { recursive: true, force: true });
  await ctx.containers.delete(id);
}

async function removeOrphans(ctx: PodContext): Promise<number> {
  let n = 0;
  const known = (id: string): boolean => ctx.sandboxes.has(id) || ctx.containers.has(id);
  for (const id of await readdir(join(ctx.stateDir, 'containers')).catch(() => [] as string[])) {
    if (known(id)) continue;
    log.warn({ container: id }, 'removing an orphaned bundle');
    const bundle = join(ctx.stateDir, 'containers', id);
    for (const rt of ctx.runtimes.values()) await rt.delete(id, { force: true }).catch(() => undefined);
    const cgroupsPath = await readFile(bundlePaths(bundle).config, 'utf8')
      .then((t) => (JSON.parse(t) as { linux?: { cgroupsPath?: string } }).linux?.cgroupsPath ?? '')
      .catch(() => '');
    if (cgroupsPath.startsWith('/')) await removeCgroup(ctx.cgroups, cgroupsPath).catch((err: unknown) => log.warn({ container: id, err }, 'cannot remove an orphaned cgroup'));
    unmountRootfs(bundlePaths(bundle).rootfs);
    await releaseBundleMounts(bundle);
    await rm(bundle, { recursive: true, force: true });
    await rm(ctx.layerDir(id), { recursive: true, force: true });
    n++;
  }
  const live = new Set(ctx.containers.list().map((c) => c.id.slice(0, 32)));
  for (const short of await readdir(join(ctx.stateDir, 's')).catch(() => [] as string[])) {
    if (live.has(short)) continue;
    await rm(join(ctx.stateDir, 's', short), { recursive: true, force: true });
    n++;
  }
  for (const id of await readdir(join(ctx.rootDir, 'containers')).catch(() => [] as string[])) {
    if (known(id) || !/^[a-f0-9]{64}$/.test(id)) continue;
    await rm(ctx.layerDir(id), { recursive: true, force: true });
    n++;
  }
  for (const id of await readdir(join(ctx.stateDir, 'netns')).catch(() => [] as string[])) {
    if (known(id)) continue;
    log.warn({ sandbox: id }, 'removing an orphaned network namespace pin');
    await unpinNamespace(join(ctx.stateDir, 'netns', id)).catch((err: unknown) => log.error({ sandbox: id, err }, 'cannot unpin an orphaned netns'));
    n++;
  }
  for (const id of await readdir(join(ctx.stateDir, 'sandboxes')).catch(() => [] as string[])) {
    if (known(id)) continue;
    log.warn({ sandbox: id }, 'removing an orphaned sandbox dir');
    const dir = join(ctx.stateDir, 'sandboxes', id);
    await killOrphanPause(dir);
    unmount(join(dir, 'shm'));
    for (const pin of ['ipc.ns', 'uts.ns', 'user.ns']) await unpinNamespace(join(dir, pin)).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    n++;
  }
  return n;
}

/** The pause of a sandbox dir without a record, from its pause.pid, if that pid is still a skiff-pause. */
async function killOrphanPause(dir: string): Promise<void> {
  const pid = Number((await readFile(join(dir, 'pause.pid'), 'utf8').catch(() => '')).trim());
  if (!(pid > 0) || (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() !== 'skiff-pause') return;
  const start = await processStartTime(pid);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitGone(pid, start, 5000);
}
