// The port-forward dialer: a TCP connection to localhost:port *inside* a pod's network namespace,
// as kubelet's streaming server needs for `kubectl port-forward` (CRI-O `PortForwardContainer`
// dials localhost from within the namespace, IPv4 first, then IPv6). A socket's namespace is fixed
// when it is made, and the main thread never changes namespace, so the netns worker makes the
// socket in the pod, goes home and connects it there (Node cannot connect a socket it is handed by
// fd); the connected fd, valid process-wide, is wrapped here in a net.Socket.
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { syscallError } from '../native/sys.js';
import { errnoCode, SkiffError } from '../common/errors.js';
import { logger } from '../common/log.js';
import { connectInNetns } from './netlink/netns.js';
import type { WorkerError } from './netlink/worker.js';

const log = logger('portforward');

/** How long a dial may take, queueing behind other dials included. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5000;

export interface DialOptions {
  /** Bound on the whole dial (both families); default DEFAULT_DIAL_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Only 127.0.0.1 (4) or only ::1 (6); by default ::1 is tried when 127.0.0.1 fails. */
  family?: 4 | 6;
  /** As for net.connect: keep writing after the pod's side ends (default false). */
  allowHalfOpen?: boolean;
}

/**
 * A connected socket to 127.0.0.1:`port` (or [::1]:`port`) in the network namespace pinned at
 * `netnsPath`. Rejects with SKIFF_INVALID_ARGUMENT for a bad port or a path that is not a network
 * namespace, and SKIFF_NETWORK_FAILED when nothing accepts the connection in time (errno in
 * `cause`: ECONNREFUSED, ETIMEDOUT…).
 */
export async function dialPodPort(netnsPath: string, port: number, opts: DialOptions = {}): Promise<Socket> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `port-forward: invalid port ${port} (want 1-65535)`);
  }
  if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `port-forward: invalid timeout ${timeoutMs} ms`);
  }
  const deadline = Date.now() + timeoutMs;
  const families: (4 | 6)[] = opts.family ? [opts.family] : [4, 6];
  const failures: { family: 4 | 6; error: WorkerError }[] = [];
  for (const family of families) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const r = await connectInNetns(netnsPath, family, port, left).catch((err: unknown) => {
      // The worker did not answer by the deadline (or died): its error says which.
      if (errnoCode((err as { cause?: unknown }).cause) === 'ETIMEDOUT') return { error: timedOut() };
      throw err;
    });
    if ('fd' in r) {
      log.trace({ netns: netnsPath, port, family }, 'port-forward connected');
      return wrap(r.fd, opts.allowHalfOpen ?? false);
    }
    invalidPath(netnsPath, r.error);
    failures.push({ family, error: r.error });
    if (r.error.code === 'ETIMEDOUT') break;
  }
  throw dialError(netnsPath, port, timeoutMs, failures);
}

function timedOut(): WorkerError {
  return { code: 'ETIMEDOUT', errno: 110, syscall: 'connect', message: 'ETIMEDOUT: connect failed (errno 110)' };
}

function invalidPath(netnsPath: string, e: WorkerError): void {
  if (e.code === 'ENOENT' && e.syscall === 'open') throw new SkiffError('SKIFF_INVALID_ARGUMENT', `network namespace ${netnsPath} does not exist`);
  if (e.code === 'EINVAL' && e.syscall === 'setns') throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${netnsPath} is not a network namespace`);
}

const loopback = { 4: '127.0.0.1', 6: '::1' } as const;

/**
 * The error for a dial that failed: refused if 127.0.0.1 refused (whatever ::1 said — a pod
 * without IPv6 cannot listen there), else the last family's errno.
 */
function dialError(netnsPath: string, port: number, timeoutMs: number, failures: { family: 4 | 6; error: WorkerError }[]): SkiffError {
  const prefix = `port-forward to port ${port} in ${netnsPath}`;
  const tried = failures.map((f) => loopback[f.family]).join(' and ');
  const refused = failures.find((f) => f.error.code === 'ECONNREFUSED');
  const last = failures.at(-1)?.error ?? timedOut();
  const cause = syscallError(last.syscall || 'connect', last.errno, undefined, last.code);
  if (last.code === 'ETIMEDOUT') {
    return new SkiffError('SKIFF_NETWORK_FAILED', `${prefix}: timed out after ${timeoutMs} ms connecting to port ${port} in the pod`, { cause });
  }
  if (refused) {
    return new SkiffError('SKIFF_NETWORK_FAILED', `${prefix}: connection refused on port ${port} in the pod (${tried})`, {
      cause: syscallError('connect', refused.error.errno, undefined, 'ECONNREFUSED'),
    });
  }
  const detail = failures.map((f) => `${loopback[f.family]}: ${f.error.code}`).join(', ');
  return new SkiffError('SKIFF_NETWORK_FAILED', `${prefix}: cannot connect to port ${port} in the pod (${detail})`, { cause });
}

/** The connected fd as a net.Socket, which owns it from then on. */
function wrap(fd: number, allowHalfOpen: boolean): Socket {
  try {
    return new Socket({ fd, readable: true, writable: true, allowHalfOpen });
  } catch (err) {
    closeSync(fd);
    throw new SkiffError('SKIFF_INTERNAL', `port-forward: cannot use the connected socket: ${String(err)}`, { cause: err });
  }
}
