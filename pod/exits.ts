// Learning that a container exited: its monitor writes an exit file (atomically) into the bundle;
// skiffd watches the bundle dir with inotify (fs.watch), and also reads the file whenever it looks
// at a running container, so an exit missed while skiffd was down is found at the next look.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { errnoCode } from '../common/errors.js';
import { logger } from '../common/log.js';
import { parseExitFile } from './runtime/monitor-protocol.js';

const log = logger('exits');

export interface ExitStatus {
  exitCode: number;
  signal: number;
  /** Nanoseconds since the epoch, decimal. */
  exitedAt: string;
  /** The monitor saw the container's cgroup count an OOM kill during its life. */
  oomKilled?: boolean;
}

export async function readExitFile(path: string): Promise<ExitStatus | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  const e = parseExitFile(text);
  return { exitCode: e.exitCode, signal: e.signal, exitedAt: e.exitedAtNs.toString(), oomKilled: e.oomKilled };
}

/** Calls `onExit` once when the exit file appears (or already exists). Returns a stop function. */
export function watchExit(exitFile: string, onExit: (s: ExitStatus) => void): () => void {
  let fired = false;
  let watcher: FSWatcher | undefined;
  const check = (): void => {
    if (fired) return;
    readExitFile(exitFile).then(
      (s) => {
        if (!s || fired) return;
        fired = true;
        watcher?.close();
        onExit(s);
      },
      (err: unknown) => log.warn({ err, exitFile }, 'unreadable exit file'),
    );
  };
  try {
    watcher = watch(dirname(exitFile), (_event, name) => {
      if (name === basename(exitFile)) check();
    });
    watcher.on('error', () => undefined);
  } catch (err) {
    log.warn({ err, exitFile }, 'cannot watch for the exit file; relying on status checks');
  }
  check();
  return () => {
    fired = true;
    watcher?.close();
  };
}
