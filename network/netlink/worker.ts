// The netlink worker thread (see netns.ts, its only user). It opens netlink sockets (and connects
// port-forward's loopback TCP sockets, pod-dial.ts) in the host's or a pod's network namespace —
// setns(CLONE_NEWNET) here moves this thread alone, and it goes home at once — and performs each
// request's blocking send/recv, so that the main thread never changes namespace and never blocks
// on the kernel. Descriptors are process-wide: the fds it opens are valid everywhere and are
// handed back to the main thread.
import { parentPort } from 'node:worker_threads';
import { closeSync, openSync } from 'node:fs';
import { CLONE_NEWNET, closeFd, connectLoopback, exchange, openNetlinkSocket, openTcpSocket, setns } from './socket.js';

export type WorkerRequest =
  /** A NETLINK_ROUTE socket in `netns` (a pinned namespace's path), or in the host's. */
  | { op: 'open'; id: number; netns?: string }
  /**
   * Requests sent one after the other, all by one deadline; the answers' bytes come back, up to
   * and including the first the kernel refused (the rest are not sent).
   */
  | { op: 'exchange'; id: number; fd: number; items: ExchangeItem[]; timeoutMs: number }
  /**
   * A TCP socket made in `netns` and connected, from there, to 127.0.0.1 or ::1 on `port` within
   * `timeoutMs` (the socket stays in that namespace; the thread goes home before it waits).
   */
  | { op: 'connect'; id: number; netns: string; family: 4 | 6; port: number; timeoutMs: number }
  /** Closes descriptors this worker handed out; no answer. */
  | { op: 'close'; fds: number[] };

export interface ExchangeItem {
  data: Uint8Array;
  seq: number;
  dump: boolean;
}

export interface WorkerError {
  code: string;
  errno: number;
  syscall: string;
  message: string;
}

export type WorkerReply =
  | { id: number; fd: number; nsFd?: number }
  | { id: number; answers: Uint8Array[] }
  | { id: number; error: WorkerError; fatal?: boolean };

const port = parentPort;
if (!port) throw new Error('network/netlink/worker.js runs as a worker thread');

// This thread starts in the process's network namespace, which the main thread never leaves.
const home = openSync('/proc/thread-self/ns/net', 'r');

// Node tracks the fds a worker opens through node:fs (and closes them when it exits): those must be
// closed through node:fs too, or Node warns when the kernel hands the same number out again.
const nsFds = new Set<number>();

function closeAny(fd: number): void {
  if (nsFds.delete(fd)) closeSync(fd);
  else closeFd(fd);
}

function toWorkerError(err: unknown): WorkerError {
  const e = err as Partial<WorkerError> & Error;
  return {
    code: typeof e.code === 'string' ? e.code : 'EIO',
    errno: typeof e.errno === 'number' ? Math.abs(e.errno) : 0,
    syscall: typeof e.syscall === 'string' ? e.syscall : '',
    message: e.message ?? String(err),
  };
}

/** Opens a socket inside the namespace pinned at `path`; the namespace's fd is kept for the caller. */
function openIn(path: string, open: () => number = openNetlinkSocket): { fd: number; nsFd: number } {
  const nsFd = openSync(path, 'r');
  nsFds.add(nsFd);
  try {
    setns(nsFd, CLONE_NEWNET, path);
  } catch (err) {
    closeAny(nsFd);
    throw err;
  }
  let fd: number;
  try {
    fd = open();
  } catch (err) {
    goHome([nsFd]);
    closeAny(nsFd);
    throw err;
  }
  goHome([fd, nsFd]);
  return { fd, nsFd };
}

/** A connected TCP socket of `req.netns`'s; closes whatever it opened when it fails. */
function connectIn(req: Extract<WorkerRequest, { op: 'connect' }>): number {
  const deadline = Date.now() + req.timeoutMs;
  const { fd, nsFd } = openIn(req.netns, () => openTcpSocket(req.family));
  closeAny(nsFd);
  try {
    connectLoopback(fd, req.family, req.port, deadline);
  } catch (err) {
    closeAny(fd);
    throw err;
  }
  return fd;
}

/** Back to the host's namespace; a thread that cannot go home must not serve another request. */
function goHome(opened: number[]): void {
  try {
    setns(home, CLONE_NEWNET);
  } catch (err) {
    for (const fd of opened) closeAny(fd);
    port?.postMessage({ id: -1, error: toWorkerError(err), fatal: true } satisfies WorkerReply);
    process.exit(1); // ends this thread only; the main thread starts a new worker
  }
}

port.on('message', (req: WorkerRequest) => {
  if (req.op === 'close') {
    for (const fd of req.fds) closeAny(fd);
    return;
  }
  let reply: WorkerReply;
  try {
    if (req.op === 'open') {
      reply = req.netns === undefined ? { id: req.id, fd: openNetlinkSocket() } : { id: req.id, ...openIn(req.netns) };
    } else if (req.op === 'connect') {
      reply = { id: req.id, fd: connectIn(req) };
    } else {
      const deadline = Date.now() + req.timeoutMs;
      const answers: Uint8Array[] = [];
      for (const item of req.items) {
        const data = Buffer.from(item.data.buffer, item.data.byteOffset, item.data.byteLength);
        const answer = exchange(req.fd, data, item.seq, item.dump, deadline);
        answers.push(answer.data);
        if (answer.failed) break;
      }
      reply = { id: req.id, answers };
    }
  } catch (err) {
    reply = { id: req.id, error: toWorkerError(err) };
  }
  port.postMessage(reply);
});
