// Starting a container's monitor (native/monitor.c, the conmon role): skiffd spawns it detached in
// its own session with a sync pipe on fd 3; the monitor runs the runtime's `create`, reports the
// container pid (or the failure) on that pipe, and then lives on without skiffd — parent of the
// container, holder of its stdio, writer of its log and of its exit file.
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { SkiffError } from '../../common/errors.js';
import { isSameProcess, waitGone } from '../host.js';
import { formatMonitorArgs, parseSyncLine } from './monitor-protocol.js';

export interface MonitorOptions {
  binary: string;
  id: string;
  logPath: string;
  exitFile: string;
  pidFile: string;
  ctlSocket: string;
  /** The monitor's own diagnostics. */
  monitorLog: string;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  /** The container's memory cgroup counter file (memory.oom_control or memory.events). */
  oomFile?: string;
  runtimeArgv: string[];
}

/** Spawns the monitor and waits for its sync message: the container pid, or why create failed. */
export async function startMonitor(
  o: MonitorOptions,
  onSpawn: (monitorPid: number) => Promise<void> = async () => undefined,
  timeoutMs = 60_000,
): Promise<{ pid: number; monitorPid: number }> {
  const logFile = await open(o.monitorLog, 'a', 0o600);
  let child;
  try {
    const args = formatMonitorArgs({
      id: o.id,
      log: o.logPath,
      exitFile: o.exitFile,
      pidFile: o.pidFile,
      ctl: o.ctlSocket,
      syncFd: 3,
      tty: o.tty,
      stdin: o.stdin,
      stdinOnce: o.stdinOnce,
      oomFile: o.oomFile,
      runtimeArgv: o.runtimeArgv,
    });
    child = spawn(o.binary, args, { detached: true, stdio: ['ignore', logFile.fd, logFile.fd, 'pipe'] });
  } finally {
    await logFile.close();
  }
  const sync = child.stdio[3] as Readable;
  const monitorPid = child.pid ?? 0;
  // Listeners first, synchronously: a failed spawn (ENOENT, EAGAIN) is emitted on the next tick.
  let timer: NodeJS.Timeout | undefined;
  const answered = new Promise<string>((resolve, reject) => {
    let buf = '';
    timer = setTimeout(() => reject(new SkiffError('SKIFF_RUNTIME_FAILED', `container ${o.id}: monitor gave no answer in ${timeoutMs} ms`)), timeoutMs);
    sync.on('data', (b: Buffer) => (buf += b.toString('utf8')));
    sync.once('close', () => resolve(buf.trim()));
    child.once('error', (e) => reject(new SkiffError('SKIFF_RUNTIME_FAILED', `container ${o.id}: cannot start monitor: ${e.message}`, { cause: e })));
  });
  answered.catch(() => undefined);
  try {
    // Recorded before waiting: a skiffd killed from here on finds the monitor and stops it.
    if (monitorPid) await onSpawn(monitorPid);
    const line = await answered;
    let msg;
    try {
      msg = parseSyncLine(line);
    } catch {
      throw new SkiffError('SKIFF_RUNTIME_FAILED', `container ${o.id}: monitor exited without reporting (see ${o.monitorLog})`);
    }
    if ('error' in msg) {
      const output = msg.output.trim();
      throw new SkiffError('SKIFF_RUNTIME_FAILED', `container ${o.id}: ${msg.error}${output ? `: ${output}` : ''}`);
    }
    return { pid: msg.pid, monitorPid };
  } finally {
    if (timer) clearTimeout(timer);
    sync.destroy();
    child.unref();
  }
}

/**
 * Kills a monitor and everything in its session (the runtime it may still be running): used when
 * a create is rolled back, never for a container that was created.
 */
export async function stopMonitor(pid: number, startTime: string | undefined): Promise<void> {
  if (!(await isSameProcess(pid, startTime))) return;
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  await waitGone(pid, startTime, 5000);
}
