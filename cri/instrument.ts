// The one wrapper around every CRI handler (containerd `instrument/instrumented_service.go`):
// refuses calls until the daemon is ready, turns the call's cancellation and deadline into an
// AbortSignal for the handler, logs and times each call, and maps errors to gRPC statuses by the
// code table in common/errors.ts. Handlers never build a gRPC status themselves.
import * as grpc from '@grpc/grpc-js';
import { ErrorTable, SkiffError, Status, errorMessage, type StatusCode } from '../common/errors.js';
import { logger } from '../common/log.js';

const log = logger('cri');

export interface CallContext {
  /** Fires when the client cancels or the call's deadline passes; its reason is a SkiffError. */
  signal: AbortSignal;
  /** The client's deadline, when it set one. */
  deadline?: Date;
}

export type UnaryHandler<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res>;
export type StreamHandler<Req, Res> = (req: Req, send: (res: Res) => Promise<void>, ctx: CallContext) => Promise<void>;

export interface Observer {
  /** Called once per finished call (metrics hook). */
  onCall(method: string, code: StatusCode, seconds: number): void;
}

export interface InstrumentOptions {
  isReady(): boolean;
  observer?: Observer;
}

/** Maps any thrown value to a gRPC status and a message a human can act on. */
export function toStatus(err: unknown): { code: StatusCode; details: string } {
  if (err instanceof SkiffError) return { code: ErrorTable[err.code], details: err.message };
  return { code: Status.INTERNAL, details: `internal error: ${errorMessage(err)}` };
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): Date | undefined {
  const d = call.getDeadline();
  if (d instanceof Date) return d;
  if (typeof d === 'number' && Number.isFinite(d)) return new Date(d);
  return undefined;
}

function contextFor(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): {
  ctx: CallContext;
  done: () => void;
} {
  const controller = new AbortController();
  const deadline = deadlineOf(call);
  let timer: NodeJS.Timeout | undefined;
  if (deadline) {
    const ms = deadline.getTime() - Date.now();
    const fire = (): void =>
      controller.abort(new SkiffError('SKIFF_DEADLINE_EXCEEDED', `deadline of ${deadline.toISOString()} exceeded`));
    if (ms <= 0) fire();
    else timer = setTimeout(fire, ms);
  }
  const onCancel = (): void => {
    if (controller.signal.aborted) return;
    const past = deadline && deadline.getTime() <= Date.now() + 5;
    controller.abort(
      past
        ? new SkiffError('SKIFF_DEADLINE_EXCEEDED', `deadline of ${deadline.toISOString()} exceeded`)
        : new SkiffError('SKIFF_CANCELLED', 'call cancelled by the client'),
    );
  };
  call.on('cancelled', onCancel);
  return {
    ctx: { signal: controller.signal, ...(deadline ? { deadline } : {}) },
    done: () => {
      if (timer) clearTimeout(timer);
      call.removeListener('cancelled', onCancel);
    },
  };
}

function finish(method: string, started: bigint, err: unknown, opts: InstrumentOptions): grpc.ServiceError | null {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (err === undefined) {
    log.debug({ method, ms: Math.round(seconds * 1000) }, 'call ok');
    opts.observer?.onCall(method, Status.OK, seconds);
    return null;
  }
  const { code, details } = toStatus(err);
  const entry = { method, code: grpc.status[code], ms: Math.round(seconds * 1000), err: details };
  if (code === Status.INTERNAL || code === Status.UNKNOWN) log.error({ ...entry, stack: (err as Error).stack }, 'call failed');
  else log.info(entry, 'call failed');
  opts.observer?.onCall(method, code, seconds);
  const e = new Error(details) as grpc.ServiceError;
  e.code = code;
  e.details = details;
  e.metadata = new grpc.Metadata();
  return e;
}

function notReady(method: string): SkiffError {
  return new SkiffError('SKIFF_NOT_READY', `skiffd is starting up; ${method} is not served yet`);
}

export function unary<Req, Res>(method: string, handler: UnaryHandler<Req, Res>, opts: InstrumentOptions): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    log.trace({ method, req: call.request }, 'call');
    if (!opts.isReady()) {
      callback(finish(method, started, notReady(method), opts));
      return;
    }
    const { ctx, done } = contextFor(call);
    handler(call.request, ctx).then(
      (res) => {
        done();
        callback(finish(method, started, undefined, opts), res);
      },
      (err: unknown) => {
        done();
        callback(finish(method, started, err, opts));
      },
    );
  };
}

export function serverStream<Req, Res>(
  method: string,
  handler: StreamHandler<Req, Res>,
  opts: InstrumentOptions,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const started = process.hrtime.bigint();
    if (!opts.isReady()) {
      // grpc-js turns an 'error' event on a server stream into the call's final status.
      call.emit('error', finish(method, started, notReady(method), opts));
      return;
    }
    const { ctx, done } = contextFor(call);
    const send = (res: Res): Promise<void> =>
      new Promise((resolve, reject) => {
        const { signal } = ctx;
        if (signal.aborted) {
          reject(signal.reason as Error);
          return;
        }
        if (call.write(res)) {
          resolve();
          return;
        }
        // Backpressure: wait for 'drain' — or for the client to go away, since a cancelled call
        // never drains and the handler would wait forever.
        const settle = (): void => {
          call.removeListener('drain', onDrain);
          signal.removeEventListener('abort', onAbort);
        };
        const onDrain = (): void => {
          settle();
          resolve();
        };
        const onAbort = (): void => {
          settle();
          reject(signal.reason as Error);
        };
        call.once('drain', onDrain);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    handler(call.request, send, ctx).then(
      () => {
        done();
        finish(method, started, undefined, opts);
        call.end();
      },
      (err: unknown) => {
        done();
        const e = finish(method, started, err, opts);
        if (e) call.emit('error', e);
      },
    );
  };
}

/** The answer of every rpc a later issue implements. */
export function unimplemented(service: string, method: string): UnaryHandler<unknown, never> {
  return async () => {
    throw new SkiffError('SKIFF_UNIMPLEMENTED', `${service}.${method} is not implemented by skiff yet`);
  };
}
