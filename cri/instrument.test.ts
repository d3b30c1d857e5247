// The CRI handler wrapper: the error → status table, and unary()/serverStream() served by a real
// grpc-js server on a temp unix socket (a hand-made JSON service, so no proto is involved): the
// ready check, status mapping, the handler's AbortSignal on deadline and cancel, backpressure on
// server streams, the observer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http2 from 'node:http2';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { SkiffError, Status, type ErrorCode, type StatusCode } from '../common/errors.js';
import { serverStream, toStatus, unary, unimplemented, type CallContext, type InstrumentOptions, type StreamHandler, type UnaryHandler } from './instrument.js';

type Msg = Record<string, unknown>;

const json = {
  serialize: (v: Msg): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): Msg => JSON.parse(b.toString('utf8')) as Msg,
};

const definition: grpc.ServiceDefinition = {
  Call: {
    path: '/skiff.test.Test/Call',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
  Watch: {
    path: '/skiff.test.Test/Watch',
    requestStream: false,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

const TestClient = grpc.makeGenericClientConstructor(definition, 'Test');

interface Calls {
  /** Observer records: [method, code]. */
  observed: [string, StatusCode][];
  client: grpc.Client;
  /** The server's unix socket path. */
  socket: string;
}

async function withServer(
  handlers: {
    call?: UnaryHandler<Msg, Msg>;
    watch?: StreamHandler<Msg, Msg>;
    /** Sees the server side of each Watch call before the wrapper does. */
    watchCall?: (call: grpc.ServerWritableStream<Msg, Msg>) => void;
  },
  ready: boolean,
  fn: (c: Calls) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-instrument-'));
  const observed: [string, StatusCode][] = [];
  const opts: InstrumentOptions = { isReady: () => ready, observer: { onCall: (m, code) => observed.push([m, code]) } };
  const watch = serverStream('Watch', handlers.watch ?? (async () => undefined), opts);
  const server = new grpc.Server();
  server.addService(definition, {
    Call: unary('Call', handlers.call ?? (async () => ({})), opts),
    Watch: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      handlers.watchCall?.(call);
      watch(call);
    },
  });
  const socket = join(dir, 'test.sock');
  const endpoint = `unix://${socket}`;
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(endpoint, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  const client = new TestClient(endpoint, grpc.credentials.createInsecure());
  try {
    await fn({ observed, client, socket });
  } finally {
    client.close();
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  }
}

type UnaryMethod = (req: Msg, meta: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<Msg>) => grpc.ClientUnaryCall;

/** Starts Call; `call` is the client call (to cancel it), `done` its outcome. */
function start(client: grpc.Client, req: Msg, opts: grpc.CallOptions = {}): { call: grpc.ClientUnaryCall; done: Promise<Msg> } {
  let call!: grpc.ClientUnaryCall;
  const done = new Promise<Msg>((resolve, reject) => {
    const method = (client as unknown as { Call: UnaryMethod }).Call.bind(client);
    call = method(req, new grpc.Metadata(), opts, (err, res) => (err ? reject(err) : resolve(res ?? {})));
  });
  return { call, done };
}

async function statusOf(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  return { code: Status.OK, details: '' };
}

/** A handler that waits for its signal and hands over the reason. */
function waitForAbort(): { handler: UnaryHandler<Msg, Msg>; reason: Promise<unknown>; ctx: Promise<CallContext> } {
  let gotReason!: (r: unknown) => void;
  let gotCtx!: (c: CallContext) => void;
  const reason = new Promise<unknown>((r) => (gotReason = r));
  const ctx = new Promise<CallContext>((r) => (gotCtx = r));
  const handler: UnaryHandler<Msg, Msg> = (_req, c) =>
    new Promise((_resolve, reject) => {
      gotCtx(c);
      c.signal.addEventListener('abort', () => {
        gotReason(c.signal.reason);
        reject(c.signal.reason as Error);
      });
    });
  return { handler, reason, ctx };
}

test('toStatus maps SkiffError codes by the table and anything else to INTERNAL with its message', () => {
  const table: [ErrorCode, StatusCode][] = [
    ['SKIFF_IMAGE_NOT_FOUND', Status.NOT_FOUND],
    ['SKIFF_NOT_FOUND', Status.NOT_FOUND],
    ['SKIFF_INVALID_ARGUMENT', Status.INVALID_ARGUMENT],
    ['SKIFF_IMAGE_REF_INVALID', Status.INVALID_ARGUMENT],
    ['SKIFF_NOT_READY', Status.UNAVAILABLE],
    ['SKIFF_PULL_STALLED', Status.UNAVAILABLE],
    ['SKIFF_CANCELLED', Status.CANCELLED],
    ['SKIFF_DEADLINE_EXCEEDED', Status.DEADLINE_EXCEEDED],
    ['SKIFF_DIGEST_MISMATCH', Status.DATA_LOSS],
    ['SKIFF_REGISTRY_UNAUTHORIZED', Status.UNAUTHENTICATED],
    ['SKIFF_REGISTRY_DENIED', Status.PERMISSION_DENIED],
    ['SKIFF_REGISTRY_ERROR', Status.UNKNOWN],
    ['SKIFF_IMAGE_IN_USE', Status.FAILED_PRECONDITION],
    ['SKIFF_UNIMPLEMENTED', Status.UNIMPLEMENTED],
    ['SKIFF_INTERNAL', Status.INTERNAL],
    ['SKIFF_NO_SPACE', Status.RESOURCE_EXHAUSTED],
  ];
  for (const [code, want] of table) {
    assert.deepEqual(toStatus(new SkiffError(code, `${code} happened`)), { code: want, details: `${code} happened` }, code);
  }
  assert.deepEqual(toStatus(new Error('boom')), { code: Status.INTERNAL, details: 'internal error: boom' });
  // kubernetes#46469: a Node system error's string code must not leak out as UNKNOWN.
  const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: 'ENOENT' });
  assert.deepEqual(toStatus(enoent), { code: Status.INTERNAL, details: "internal error: ENOENT: no such file or directory, open '/x'" });
  assert.deepEqual(toStatus('a string'), { code: Status.INTERNAL, details: 'internal error: a string' });
  assert.deepEqual(toStatus(undefined), { code: Status.INTERNAL, details: 'internal error: undefined' });
});

test('a call before the daemon is ready is UNAVAILABLE, says it is starting up, and never reaches the handler', async () => {
  let reached = false;
  await withServer({ call: async () => ((reached = true), {}) }, false, async ({ client, observed }) => {
    const s = await statusOf(start(client, {}).done);
    assert.equal(s.code, grpc.status.UNAVAILABLE);
    assert.match(s.details, /starting up/);
    assert.match(s.details, /Call/);
    assert.equal(reached, false);
    assert.deepEqual(observed, [['Call', Status.UNAVAILABLE]]);
  });
});

test('a handler\'s answer reaches the client and the observer sees OK', async () => {
  await withServer({ call: async (req) => ({ echo: req.text }) }, true, async ({ client, observed }) => {
    assert.deepEqual(await start(client, { text: 'hi' }).done, { echo: 'hi' });
    assert.deepEqual(observed, [['Call', Status.OK]]);
  });
});

test('a SkiffError becomes its status with its message unchanged', async () => {
  const call: UnaryHandler<Msg, Msg> = async () => {
    throw new SkiffError('SKIFF_IMAGE_NOT_FOUND', 'image "docker.io/library/nope:latest" not found');
  };
  await withServer({ call }, true, async ({ client, observed }) => {
    const s = await statusOf(start(client, {}).done);
    assert.deepEqual(s, { code: grpc.status.NOT_FOUND, details: 'image "docker.io/library/nope:latest" not found' });
    assert.deepEqual(observed, [['Call', Status.NOT_FOUND]]);
  });
});

test('a plain throw becomes INTERNAL with its message', async () => {
  const call: UnaryHandler<Msg, Msg> = async () => {
    throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  };
  await withServer({ call }, true, async ({ client, observed }) => {
    const s = await statusOf(start(client, {}).done);
    assert.deepEqual(s, { code: grpc.status.INTERNAL, details: 'internal error: EACCES: permission denied' });
    assert.deepEqual(observed, [['Call', Status.INTERNAL]]);
  });
});

test('the client\'s deadline fires the handler\'s signal with DEADLINE_EXCEEDED', async () => {
  const w = waitForAbort();
  await withServer({ call: w.handler }, true, async ({ client, observed }) => {
    const deadline = new Date(Date.now() + 300);
    const status = statusOf(start(client, {}, { deadline }).done);
    const ctx = await w.ctx;
    assert.ok(ctx.deadline, 'the handler sees the deadline');
    assert.ok(Math.abs(ctx.deadline.getTime() - deadline.getTime()) < 1000, `${ctx.deadline.toISOString()} ~ ${deadline.toISOString()}`);
    const reason = await w.reason;
    assert.ok(reason instanceof SkiffError && reason.code === 'SKIFF_DEADLINE_EXCEEDED', `got ${String(reason)}`);
    assert.equal((await status).code, grpc.status.DEADLINE_EXCEEDED);
    await waitFor(() => observed.length === 1);
    assert.deepEqual(observed, [['Call', Status.DEADLINE_EXCEEDED]]);
  });
});

test('a client cancel fires the handler\'s signal with CANCELLED', async () => {
  const w = waitForAbort();
  await withServer({ call: w.handler }, true, async ({ client, observed }) => {
    const { call, done } = start(client, {}, { deadline: new Date(Date.now() + 60_000) });
    const status = statusOf(done);
    const ctx = await w.ctx;
    assert.equal(ctx.signal.aborted, false);
    call.cancel();
    const reason = await w.reason;
    assert.ok(reason instanceof SkiffError && reason.code === 'SKIFF_CANCELLED', `got ${String(reason)}`);
    assert.equal((await status).code, grpc.status.CANCELLED);
    await waitFor(() => observed.length === 1);
    assert.deepEqual(observed, [['Call', Status.CANCELLED]]);
  });
});

test('a call without a deadline gives the handler none, and its signal stays quiet', async () => {
  let seen: CallContext | undefined;
  await withServer({ call: async (_req, ctx) => ((seen = ctx), {}) }, true, async ({ client }) => {
    await start(client, {}).done;
    assert.equal(seen?.deadline, undefined);
    assert.equal(seen?.signal.aborted, false);
  });
});

test('unimplemented() answers UNIMPLEMENTED naming the service and method', async () => {
  await assert.rejects(unimplemented('runtime.v1.RuntimeService', 'Attach')({}, { signal: new AbortController().signal }), (e: unknown) => {
    assert.ok(e instanceof SkiffError);
    assert.equal(e.code, 'SKIFF_UNIMPLEMENTED');
    assert.equal(e.message, 'runtime.v1.RuntimeService.Attach is not implemented by skiff yet');
    return true;
  });
  await withServer({ call: unimplemented('skiff.test.Test', 'Call') }, true, async ({ client }) => {
    assert.deepEqual(await statusOf(start(client, {}).done), {
      code: grpc.status.UNIMPLEMENTED,
      details: 'skiff.test.Test.Call is not implemented by skiff yet',
    });
  });
});

test('a server stream sends each message, and its failure or not-ready becomes the final status', async () => {
  const watch: StreamHandler<Msg, Msg> = async (req, send) => {
    await send({ n: 1 });
    await send({ n: 2 });
    if (req.fail) throw new SkiffError('SKIFF_NOT_FOUND', 'container "3f2a" not found');
  };
  const read = async (client: grpc.Client, req: Msg): Promise<{ got: Msg[]; status: { code: number; details: string } }> => {
    const stream = (client as unknown as { Watch: (r: Msg) => grpc.ClientReadableStream<Msg> }).Watch(req);
    const got: Msg[] = [];
    const status = await statusOf(
      (async () => {
        for await (const m of stream) got.push(m as Msg);
      })(),
    );
    return { got, status };
  };
  await withServer({ watch }, true, async ({ client, observed }) => {
    assert.deepEqual(await read(client, {}), { got: [{ n: 1 }, { n: 2 }], status: { code: Status.OK, details: '' } });
    assert.deepEqual(await read(client, { fail: true }), {
      got: [{ n: 1 }, { n: 2 }],
      status: { code: grpc.status.NOT_FOUND, details: 'container "3f2a" not found' },
    });
    assert.deepEqual(observed, [
      ['Watch', Status.OK],
      ['Watch', Status.NOT_FOUND],
    ]);
  });
  await withServer({ watch }, false, async ({ client }) => {
    const { got, status } = await read(client, {});
    assert.deepEqual(got, []);
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.match(status.details, /starting up/);
  });
});

/**
 * Starts Watch over a bare HTTP/2 connection that never reads the response, so that the server
 * meets backpressure (grpc-js's own client keeps reading into an unbounded buffer).
 */
function stalledWatch(socket: string): { cancel: () => void; close: () => void } {
  const session = http2.connect('http://localhost', { createConnection: () => connect(socket) });
  session.on('error', () => undefined);
  const body = json.serialize({});
  const frame = Buffer.alloc(5 + body.length); // gRPC message: uncompressed flag, length, bytes
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  const req = session.request({ ':method': 'POST', ':path': '/skiff.test.Test/Watch', 'content-type': 'application/grpc', te: 'trailers' });
  req.on('error', () => undefined);
  req.end(frame);
  return { cancel: () => req.close(http2.constants.NGHTTP2_CANCEL), close: () => session.destroy() };
}

test('a server stream blocked on backpressure stops waiting when the client cancels', async () => {
  const pad = 'x'.repeat(64 * 1024);
  let blocked!: () => void;
  const isBlocked = new Promise<void>((r) => (blocked = r));
  let sendError: unknown;
  let finished = false;
  let drainListeners = -1;
  let call: grpc.ServerWritableStream<Msg, Msg> | undefined;
  const watch: StreamHandler<Msg, Msg> = async (_req, send) => {
    try {
      for (;;) {
        let settled = false;
        const p = send({ pad });
        p.then(
          () => (settled = true),
          () => (settled = true),
        );
        await new Promise((r) => setTimeout(r, 20));
        if (!settled) blocked();
        await p;
      }
    } catch (err) {
      sendError = err;
      throw err;
    } finally {
      finished = true;
      drainListeners = call?.listenerCount('drain') ?? -1;
    }
  };
  await withServer({ watch, watchCall: (c) => (call = c) }, true, async ({ socket, observed }) => {
    const client = stalledWatch(socket);
    try {
      await isBlocked;
      client.cancel();
      await waitFor(() => finished);
    } finally {
      client.close();
    }
    assert.ok(sendError instanceof SkiffError && sendError.code === 'SKIFF_CANCELLED', `got ${String(sendError)}`);
    assert.equal(drainListeners, 0, 'the drain listener is removed');
    await waitFor(() => observed.length === 1);
    assert.deepEqual(observed, [['Watch', Status.CANCELLED]]);
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
