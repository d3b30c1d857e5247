// Recovery at skiffd start. Assumptions, in the spirit of containerd's podsandbox/recover.go:
// - Records are the truth for what exists; a record in phase "creating" is an operation a crash
//   interrupted, and it is undone (never finished): kubelet retries the call.
// - Pause processes and container monitors outlive skiffd; a live one is matched to its record by
//   pid *and* start time, so a reused pid is never mistaken for ours.
// - A container exit that happened while skiffd was down is in its exit file, written by the monitor.
// - What is on disk under the state dir with no record (bundles, netns pins, sandbox dirs) is an
//   orphan of a crash between "made" and "recorded", and is removed.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../common/log.js';
import type { Containers } from './containers.js';
import { bundlePaths, socketDir } from './containers.js';
import type { PodContext } from './context.js';
import { runHelper } from './host.js';
import { stopMonitor } from './runtime/monitor.js';
import { unmountRootfs } from './rootfs.js';
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

  for (const c of ctx.containers.list()) {
    if (c.phase === 'creating') {
      log.warn({ container: c.id }, 'rolling back a container whose creation was interrupted');
      if (c.monitorPid) await stopMonitor(c.monitorPid, c.monitorStartTime);
      await undoContainer(ctx, c.id, c.bundle, c.sandboxId);
      rolledBack++;
      continue;
    }
    ctx.containerNames.restore(c.name, c.id, c.fingerprint);
    if (c.phase === 'created' || c.phase === 'running') containers.watch(c.id, bundlePaths(c.bundle).exitFile);
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
  const report = { sandboxes: ctx.sandboxes.list().length, containers: ctx.containers.list().length, rolledBack, orphans };
  log.info(report, 'pods recovered');
  return report;
}

async function undoContainer(ctx: PodContext, id: string, bundle: string, sandboxId: string): Promise<void> {
  const handler = ctx.sandboxes.get(sandboxId)?.runtimeHandler ?? '';
  try {
    await ctx.runtime(handler).delete(id, { force: true });
  } catch (err) {
    log.warn({ container: id, err }, 'runtime delete during rollback failed');
  }
  unmountRootfs(bundlePaths(bundle).rootfs);
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
    await ctx.runtime('').delete(id, { force: true }).catch(() => undefined);
    unmountRootfs(bundlePaths(join(ctx.stateDir, 'containers', id)).rootfs);
    await rm(join(ctx.stateDir, 'containers', id), { recursive: true, force: true });
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
    await runHelper(ctx.native.ns, ['netns-unpin', join(ctx.stateDir, 'netns', id)], 'unpin orphaned netns').catch(() => undefined);
    n++;
  }
  for (const id of await readdir(join(ctx.stateDir, 'sandboxes')).catch(() => [] as string[])) {
    if (known(id)) continue;
    unmount(join(ctx.stateDir, 'sandboxes', id, 'shm'));
    await rm(join(ctx.stateDir, 'sandboxes', id), { recursive: true, force: true });
    n++;
  }
  return n;
}
