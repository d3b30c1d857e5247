// One skiffd per root, state dir and socket. The root and state dirs are held by flock(2) on a
// lock file: the kernel drops the lock when the process dies, so a crash never leaves a lock that
// blocks the next start. A socket file that nobody answers on is a crashed daemon's and is
// replaced; one that answers belongs to a live daemon and is left alone.
import { closeSync, openSync } from 'node:fs';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { SkiffError, errnoCode } from '../common/errors.js';
import { LOCK_EX, LOCK_NB, linuxSyscalls, type Syscalls } from '../native/sys.js';

export interface Held {
  release(): void;
}

/** Locks `<dir>/skiffd.lock`; throws SKIFF_ALREADY_RUNNING when another process holds it. */
export async function lockDir(dir: string, what: string, sys: Syscalls = linuxSyscalls): Promise<Held> {
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const path = join(dir, 'skiffd.lock');
  const fd = openSync(path, 'a', 0o600);
  try {
    sys.flock(fd, LOCK_EX | LOCK_NB);
  } catch (err) {
    closeSync(fd);
    if (errnoCode(err) === 'EWOULDBLOCK' || errnoCode(err) === 'EAGAIN') {
      throw new SkiffError('SKIFF_ALREADY_RUNNING', `another skiffd is using ${what} ${dir} (${path} is locked)`);
    }
    throw err;
  }
  return { release: () => closeSync(fd) };
}

/** True when something accepts connections on the unix socket at `path`. */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (v: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // a hung peer is still a peer
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Makes `path` free for a new socket: refuses if a live daemon serves it, removes a stale one. */
export async function claimSocket(path: string): Promise<'fresh' | 'replaced-stale'> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'fresh';
    throw err;
  }
  if (!st.isSocket()) {
    throw new SkiffError('SKIFF_ALREADY_RUNNING', `${path} exists and is not a socket; refusing to replace it`);
  }
  if (await socketAnswers(path)) {
    throw new SkiffError('SKIFF_ALREADY_RUNNING', `another skiffd is already serving ${path}`);
  }
  await unlink(path);
  return 'replaced-stale';
}
