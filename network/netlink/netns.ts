// The main thread's way to rtnetlink, in the host's or a pod's network namespace. Every blocking
// call runs on a persistent worker thread (worker.ts; one per lane, started on first use):
// setns(CLONE_NEWNET) moves only the calling thread (ARCHITECTURE.md), and a send can wait on the
// kernel's rtnl lock for as long as another holder keeps it. Every request is bounded: its promise
// settles by its deadline whatever the kernel does. A worker still busy a grace period after a
// deadline is declared stuck and replaced, its sockets abandoned (their fds leak, rather than risk
// closing a number that thread may still use).
import { Worker } from 'node:worker_threads';
import { syscallError } from '../../native/sys.js';
import { errnoCode, errorMessage, SkiffError } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { collectReply, decodeMessages, encodeMessage, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, type NetlinkMessage, type Reply } from './codec.js';
import type { Request } from './rtnl.js';
import type { WorkerError, WorkerReply, WorkerRequest } from './worker.js';

const log = logger('netlink');

/** How long one request may take, queueing on the worker included. */
export const DEFAULT_TIMEOUT_MS = 5000;
/** How long after a deadline a busy worker is given before it is declared stuck. */
const GRACE_MS = 1000;
/** Stuck workers (each a thread blocked in the kernel) tolerated before requests fail at once. */
const MAX_STUCK = 4;
/** A dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried this often. */
const DUMP_RETRIES = 3;

type Call = Exclude<WorkerRequest, { op: 'close' }>;
type CallBody = Call extends infer C ? (C extends Call ? Omit<C, 'id'> : never) : never;

interface Job {
  body: CallBody;
  what: string;
  deadline: number;
  timeoutMs: number;
  resolve: (r: WorkerReply) => void;
  reject: (err: Error) => void;
  settled: boolean;
  timer?: NodeJS.Timeout;
  id?: number;
}

/**
 * Which worker thread runs a request. Deleting a link waits in the kernel for RCU (15-30 ms per
 * veth, after the rtnl lock is released): on a lane of its own, pod teardown never holds up an
 * attach queued behind it. Port-forward's connects (connectInNetns) wait on pods' listeners, so they
 * have theirs too.
 */
export type Lane = 'default' | 'teardown' | 'dial';

const stuck = new Set<Worker>();
const lanes = new Map<Lane, NetlinkWorker>();
let seqCounter = Math.floor(Math.random() * 0x7fffffff);

function nextSeq(): number {
  seqCounter = (seqCounter + 1) >>> 0 || 1;
  return seqCounter;
}

/** One worker thread and its queue: one call in flight at a time, each with its own deadline. */
class NetlinkWorker {
  private readonly worker: Worker;
  private readonly queue: Job[] = [];
  private inFlight: Job | undefined;
  private nextId = 1;
  dead: Error | undefined;

  constructor(private readonly lane: Lane) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url));
    this.worker.on('message', (r: WorkerReply) => this.onReply(r));
    this.worker.on('error', (err) => this.kill(new SkiffError('SKIFF_NETWORK_FAILED', `netlink worker failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => {
      stuck.delete(this.worker);
      this.kill(new SkiffError('SKIFF_NETWORK_FAILED', `netlink worker exited (code ${code})`));
    });
    // A pending request's timer keeps the process alive, the worker never does. (After the
    // listeners: adding a 'message' listener refs the port again.)
    this.worker.unref();
  }

  call(body: CallBody, what: string, timeoutMs: number): Promise<WorkerReply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const job: Job = { body, what, deadline: Date.now() + timeoutMs, timeoutMs, resolve, reject, settled: false };
      job.timer = setTimeout(() => this.onDeadline(job), timeoutMs);
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** Fire and forget, in order after whatever is queued before it. */
  close(fds: number[]): void {
    if (!this.dead) this.worker.postMessage({ op: 'close', fds } satisfies WorkerRequest);
  }

  private dispatch(): void {
    if (this.inFlight || this.dead) return;
    const job = this.queue.shift();
    if (!job) return;
    job.id = this.nextId++;
    this.inFlight = job;
    const left = Math.max(1, job.deadline - Date.now());
    const timed = job.body.op === 'exchange' || job.body.op === 'connect';
    const msg = { ...job.body, id: job.id, ...(timed ? { timeoutMs: left } : {}) } as WorkerRequest;
    this.worker.postMessage(msg);
  }

  private onReply(r: WorkerReply): void {
    if ('fatal' in r && r.fatal) {
      this.kill(new SkiffError('SKIFF_NETWORK_FAILED', `netlink worker could not return to the host network namespace: ${r.error.message}`));
      return;
    }
    const job = this.inFlight;
    if (!job || job.id !== r.id) return;
    this.inFlight = undefined;
    clearTimeout(job.timer);
    if (!job.settled) {
      job.settled = true;
      job.resolve(r);
    } else if ('fd' in r) {
      // An open whose caller gave up waiting: nobody will close what it made.
      this.close(r.nsFd === undefined ? [r.fd] : [r.fd, r.nsFd]);
    }
    this.dispatch();
  }

  private onDeadline(job: Job): void {
    if (!job.settled) {
      job.settled = true;
      job.reject(timeoutError(job.what, job.timeoutMs));
    }
    const queued = this.queue.indexOf(job);
    if (queued !== -1) {
      this.queue.splice(queued, 1);
      return;
    }
    if (this.inFlight === job) {
      // The worker enforces the same deadline on its receive; only a send blocked in the kernel
      // keeps it longer.
      job.timer = setTimeout(() => {
        if (this.inFlight !== job) return;
        log.error({ request: job.what, timeoutMs: job.timeoutMs }, 'netlink worker stuck in the kernel; starting another');
        stuck.add(this.worker);
        this.kill(new SkiffError('SKIFF_NETWORK_FAILED', `netlink worker stuck on "${job.what}"; restarted`));
      }, GRACE_MS);
    }
  }

  private kill(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    if (lanes.get(this.lane) === this) lanes.delete(this.lane);
    for (const job of [...(this.inFlight ? [this.inFlight] : []), ...this.queue.splice(0)]) {
      clearTimeout(job.timer);
      if (!job.settled) {
        job.settled = true;
        job.reject(err);
      }
    }
    this.inFlight = undefined;
    this.worker.terminate().catch(() => undefined); // takes effect when its syscall returns
  }
}

function timeoutError(what: string, ms: number): SkiffError {
  return new SkiffError('SKIFF_NETWORK_FAILED', `${what}: the kernel did not answer within ${ms} ms`, {
    cause: syscallError('netlink', 110 /* ETIMEDOUT */),
  });
}

function worker(lane: Lane): NetlinkWorker {
  const w = lanes.get(lane);
  if (w && !w.dead) return w;
  if (stuck.size >= MAX_STUCK) {
    throw new SkiffError('SKIFF_NETWORK_FAILED', `the kernel is not answering netlink requests (${stuck.size} worker threads stuck)`);
  }
  const fresh = new NetlinkWorker(lane);
  lanes.set(lane, fresh);
  return fresh;
}

const failedItem = new WeakMap<object, number>();

/** Which element of a RouteSocket.batch the kernel refused (the earlier ones took effect). */
export function failedBatchIndex(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? failedItem.get(err) : undefined;
}

/** The errno name ('ENODEV', 'EEXIST'…) behind a netlink failure, if it was one. */
export function errnoOf(err: unknown): string | undefined {
  return err instanceof SkiffError ? errnoCode(err.cause) : errnoCode(err);
}

function replyError(what: string, r: WorkerReply, timeoutMs: number): SkiffError | undefined {
  if (!('error' in r)) return undefined;
  const e = r.error;
  if (e.code === 'ETIMEDOUT') return timeoutError(what, timeoutMs);
  const cause = syscallError(e.syscall || 'netlink', e.errno, undefined, e.code);
  return new SkiffError('SKIFF_NETWORK_FAILED', `${what}: ${e.message}`, { cause });
}

export interface CallOptions {
  /** This call's bound instead of the socket's. */
  timeoutMs?: number;
}

export interface RouteSocketOptions {
  /** Per-request bound; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  lane?: Lane;
}

/** A NETLINK_ROUTE socket in one network namespace; every request is bounded. */
export class RouteSocket {
  private closed = false;

  constructor(
    private readonly owner: NetlinkWorker,
    readonly fd: number,
    /** The namespace's open fd (for IFLA_NET_NS_FD); undefined for the host's socket. */
    readonly nsFd: number | undefined,
    /** The pinned path, for messages; undefined for the host. */
    readonly netns: string | undefined,
    readonly timeoutMs: number,
  ) {}

  /**
   * One request with NLM_F_ACK: resolves with the data messages answering it (for a GET, the
   * object), rejects with SKIFF_NETWORK_FAILED naming `what` and the kernel's errno (see errnoOf).
   */
  async request(req: Request, what: string, opts: CallOptions = {}): Promise<NetlinkMessage[]> {
    return (await this.batch([{ req, what }], opts))[0];
  }

  /** A dump (NLM_F_DUMP): every message until NLMSG_DONE, retried when the kernel interrupts it. */
  async dump(req: Request, what: string, opts: CallOptions = {}): Promise<NetlinkMessage[]> {
    for (let attempt = 0; ; attempt++) {
      const [r] = await this.exchange([{ req, what, dump: true }], opts.timeoutMs ?? this.timeoutMs);
      if (!r.interrupted || attempt >= DUMP_RETRIES) return r.messages;
    }
  }

  /**
   * Several requests in one trip to the worker, sent in order; the first refused one rejects the
   * whole batch (naming its `what`; failedBatchIndex tells which) and those after it are not
   * sent. All share one deadline.
   */
  async batch(items: { req: Request; what: string; dump?: boolean }[], opts: CallOptions = {}): Promise<NetlinkMessage[][]> {
    return (await this.exchange(items, opts.timeoutMs ?? this.timeoutMs)).map((r) => r.messages);
  }

  /** Closes the socket (and the namespace fd); later requests fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.close(this.nsFd === undefined ? [this.fd] : [this.fd, this.nsFd]);
  }

  private where(what: string): string {
    return this.netns === undefined ? what : `${what} in ${this.netns}`;
  }

  private async exchange(items: { req: Request; what: string; dump?: boolean }[], timeoutMs: number): Promise<Reply[]> {
    const first = this.where(items.map((i) => i.what).join(', '));
    if (this.closed) throw new SkiffError('SKIFF_INTERNAL', `${first}: netlink socket is closed`);
    if (this.owner.dead) throw new SkiffError('SKIFF_NETWORK_FAILED', `${first}: netlink socket lost (${this.owner.dead.message})`);
    const sent = items.map(({ req, dump = false }) => {
      const seq = nextSeq();
      const flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK) | req.flags;
      return { data: encodeMessage({ type: req.type, flags, seq, payload: req.payload }), seq, dump };
    });
    const r = await this.owner.call({ op: 'exchange', fd: this.fd, items: sent, timeoutMs }, first, timeoutMs);
    const err = replyError(first, r, timeoutMs);
    if (err) throw err;
    if (!('answers' in r)) throw new SkiffError('SKIFF_INTERNAL', `${first}: netlink worker answered without data`);
    return r.answers.map((bytes, i) => {
      const where = this.where(items[i].what);
      const reply = collectReply(decodeMessages(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)), sent[i].seq, sent[i].dump);
      if (reply.ack.errno !== 0) {
        const cause = syscallError('netlink', reply.ack.errno);
        const detail = reply.ack.message ? ` (${reply.ack.message})` : '';
        const err = new SkiffError('SKIFF_NETWORK_FAILED', `${where}: ${cause.code}${detail}`, { cause });
        failedItem.set(err, i);
        throw err;
      }
      log.trace({ request: where, type: items[i].req.type, messages: reply.messages.length }, 'netlink');
      return reply;
    });
  }
}

/**
 * A new socket in the namespace pinned at `netnsPath` (the caller closes it), opened by the worker
 * thread inside that namespace. Fails with SKIFF_INVALID_ARGUMENT when the path is missing or is
 * not a network namespace.
 */
export async function openRouteSocket(netnsPath: string, opts: RouteSocketOptions = {}): Promise<RouteSocket> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const w = worker(opts.lane ?? 'default');
  const what = `open netlink socket in ${netnsPath}`;
  const r = await w.call({ op: 'open', netns: netnsPath }, what, timeoutMs);
  if ('error' in r) {
    const code = r.error.code;
    if (code === 'ENOENT') throw new SkiffError('SKIFF_INVALID_ARGUMENT', `network namespace ${netnsPath} does not exist`);
    if (code === 'EINVAL' && r.error.syscall === 'setns') {
      throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${netnsPath} is not a network namespace`);
    }
    throw new SkiffError('SKIFF_NETWORK_FAILED', `${what}: ${r.error.message}`, { cause: syscallError(r.error.syscall, r.error.errno, netnsPath, code) });
  }
  if (!('fd' in r)) throw new SkiffError('SKIFF_INTERNAL', `${what}: netlink worker answered without a socket`);
  return new RouteSocket(w, r.fd, r.nsFd, netnsPath, timeoutMs);
}

const hosts = new Map<Lane, { worker: NetlinkWorker; socket: Promise<RouteSocket> }>();

/** The shared socket in the host's namespace of a lane (opened once per worker; never close it). */
export async function hostRouteSocket(lane: Lane = 'default'): Promise<RouteSocket> {
  const w = worker(lane);
  let host = hosts.get(lane);
  if (host?.worker !== w) {
    const socket = w.call({ op: 'open' }, 'open netlink socket', DEFAULT_TIMEOUT_MS).then((r) => {
      if ('error' in r) throw new SkiffError('SKIFF_NETWORK_FAILED', `open netlink socket: ${r.error.message}`);
      if (!('fd' in r)) throw new SkiffError('SKIFF_INTERNAL', 'open netlink socket: netlink worker answered without a socket');
      return new RouteSocket(w, r.fd, undefined, undefined, DEFAULT_TIMEOUT_MS);
    });
    host = { worker: w, socket };
    hosts.set(lane, host);
    socket.catch((err: unknown) => {
      log.warn({ err: errorMessage(err) }, 'cannot open the host netlink socket');
      if (hosts.get(lane)?.socket === socket) hosts.delete(lane);
    });
  }
  return host.socket;
}

/**
 * A TCP socket made in the namespace pinned at `netnsPath` and connected there to 127.0.0.1 (or
 * ::1) on `port`, by the worker of the 'dial' lane within `timeoutMs`: its fd (the caller's to
 * close), or the worker's error (the errno of socket, setns or connect; ETIMEDOUT at the deadline).
 * Rejects only when the worker itself fails or does not answer in time.
 */
export async function connectInNetns(netnsPath: string, family: 4 | 6, port: number, timeoutMs: number): Promise<{ fd: number } | { error: WorkerError }> {
  const what = `connect to port ${port} in ${netnsPath}`;
  const r = await worker('dial').call({ op: 'connect', netns: netnsPath, family, port, timeoutMs }, what, timeoutMs);
  if ('error' in r) return { error: r.error };
  if (!('fd' in r)) throw new SkiffError('SKIFF_INTERNAL', `${what}: netlink worker answered without a socket`);
  return { fd: r.fd };
}
