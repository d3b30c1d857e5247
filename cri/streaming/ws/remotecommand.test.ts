// exec over WebSocket end to end: an http server on 127.0.0.1 upgrades with ws and runs a fake
// command on a RemoteCommandSession; a raw `ws` client speaks the protocol byte by byte.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { REMOTECOMMAND_PROTOCOLS } from './channel.js';
import { RemoteCommandSession } from './remotecommand.js';
import { acceptChannelWebSocket } from './upgrade.js';
import { Inbox, listenUpgrades, within, type Loopback } from './loopback-fixture.js';

interface Served {
  readonly session: RemoteCommandSession;
  readonly ws: WebSocket;
  /** Resolves when the fake command saw stdin end. */
  readonly stdinEnded: Promise<void>;
  /** Bytes the fake command produced or consumed, for the flow-control tests. */
  readonly counters: { produced: number; consumed: number; maxBufferedAmount: number };
}

const flag = (q: URLSearchParams, name: string): boolean => ['1', 'true'].includes(q.get(name) ?? '');

/**
 * The fake commands: `echo N` copies stdin to stdout, reports resizes and stdin's end on stderr,
 * then exits N; `exit N` exits N at once; `flood MB` writes MB mebibytes of a pattern to stdout
 * honouring backpressure; `sink` reads stdin only when told, counting bytes.
 */
function runFake(served: Served, command: string[], startSink: Promise<void>, onEnd: () => void): void {
  const { session, counters } = served;
  const [name, arg] = command;
  const code = Number(arg ?? 0);
  switch (name) {
    case 'echo':
      session.on('resize', (s) => session.stderr?.write(`resize ${s.width}x${s.height}\n`));
      session.stdin?.on('data', (d: Buffer) => session.stdout?.write(d));
      session.stdin?.on('end', () => {
        onEnd();
        session.stderr?.write('eof\n');
        void session.finish({ exitCode: code });
      });
      return;
    case 'exit':
      void session.finish({ exitCode: code });
      return;
    case 'flood': {
      const total = code << 20;
      const source = Readable.from(
        (function* () {
          for (let sent = 0; sent < total; sent += 64 << 10) {
            counters.produced += 64 << 10;
            counters.maxBufferedAmount = Math.max(counters.maxBufferedAmount, served.ws.bufferedAmount);
            yield Buffer.alloc(64 << 10, sent >> 16);
          }
        })(),
      );
      source.pipe(session.stdout!, { end: false });
      source.on('end', () => void session.finish({}));
      return;
    }
    case 'sink':
      session.stdin?.pause();
      session.stdin?.on('data', (d: Buffer) => (counters.consumed += d.length));
      session.stdin?.on('end', () => {
        onEnd();
        void session.finish({});
      });
      void startSink.then(() => session.stdin?.resume());
      return;
    default:
      void session.finish({ error: `unknown fake command ${name}` });
  }
}

async function startExecServer(t: TestContext): Promise<{ server: Loopback; served: Served[]; startSink: () => void }> {
  const served: Served[] = [];
  let startSink!: () => void;
  const sinkGate = new Promise<void>((resolve) => (startSink = resolve));
  const server = await listenUpgrades(async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const accepted = await acceptChannelWebSocket(req, socket, head, REMOTECOMMAND_PROTOCOLS);
    if (!accepted) return;
    const session = new RemoteCommandSession(accepted.ws, accepted.protocol, {
      stdin: flag(q, 'stdin'),
      stdout: flag(q, 'stdout'),
      stderr: flag(q, 'stderr'),
      tty: flag(q, 'tty'),
    });
    let ended!: () => void;
    const stdinEnded = new Promise<void>((resolve) => (ended = resolve));
    const s: Served = { session, ws: accepted.ws, stdinEnded, counters: { produced: 0, consumed: 0, maxBufferedAmount: 0 } };
    served.push(s);
    runFake(s, q.getAll('command'), sinkGate, ended);
  });
  t.after(() => server.close());
  return { server, served, startSink };
}

function client(t: TestContext, server: Loopback, query: string, protocols: string[]): Inbox {
  const ws = new WebSocket(server.url(`/exec?${query}`), protocols);
  t.after(() => ws.terminate());
  return new Inbox(ws);
}

const frame = (channel: number, text: string | Buffer): Buffer => Buffer.concat([Buffer.from([channel]), Buffer.from(text)]);

test('v5 exec: stdin echoes to stdout, resize and EOF reach the command, exit 3 is NonZeroExitCode', async (t) => {
  const { server, served } = await startExecServer(t);
  const inbox = client(t, server, 'stdin=1&stdout=1&stderr=1&command=echo&command=3', ['v5.channel.k8s.io']);
  await inbox.opened;
  assert.equal(inbox.ws.protocol, 'v5.channel.k8s.io');
  assert.deepEqual((await inbox.next()).data, Buffer.from([1]), 'kubelet opens with an empty stdout message');

  inbox.ws.send(frame(0, 'hello\n'));
  const echoed = await inbox.next();
  assert.equal(echoed.binary, true);
  assert.deepEqual(echoed.data, frame(1, 'hello\n'));

  inbox.ws.send(frame(4, '{"Width":80,"Height":24}'));
  assert.deepEqual((await inbox.next()).data, frame(2, 'resize 80x24\n'), 'resize reported on stderr, not stdout');

  inbox.ws.send(Buffer.from([255, 0]));
  await within(served[0].stdinEnded, 2000, 'stdin EOF from the close signal');
  assert.deepEqual((await inbox.next()).data, frame(2, 'eof\n'));
  const status = await inbox.next();
  assert.deepEqual(
    status.data,
    frame(3, '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}'),
  );
  assert.equal((await inbox.closed).code, 1000);
  assert.equal(await served[0].session.closed, 1000);
});

test('v4 exec without stdout opens on stderr and ends with the Success status', async (t) => {
  const { server } = await startExecServer(t);
  const inbox = client(t, server, 'stderr=1&command=exit&command=0', ['v4.channel.k8s.io']);
  await inbox.opened;
  assert.equal(inbox.ws.protocol, 'v4.channel.k8s.io');
  assert.deepEqual((await inbox.next()).data, Buffer.from([2]));
  assert.deepEqual((await inbox.next()).data, frame(3, '{"metadata":{},"status":"Success"}'));
  assert.equal((await inbox.closed).code, 1000);
});

test('with a tty there is no stderr: the first message is on stdout even if stderr was asked for', async (t) => {
  const { server, served } = await startExecServer(t);
  const inbox = client(t, server, 'stdout=1&stderr=1&tty=1&command=exit&command=0', ['v5.channel.k8s.io']);
  await inbox.opened;
  assert.deepEqual((await inbox.next()).data, Buffer.from([1]));
  assert.equal(served[0].session.stderr, undefined);
  assert.equal((await inbox.closed).code, 1000);
});

test('v4.base64 exec round-trips arbitrary bytes as text messages', async (t) => {
  const { server } = await startExecServer(t);
  const inbox = client(t, server, 'stdin=1&stdout=1&command=echo&command=0', ['v4.base64.channel.k8s.io']);
  await inbox.opened;
  assert.equal(inbox.ws.protocol, 'v4.base64.channel.k8s.io');
  const first = await inbox.next();
  assert.equal(first.binary, false);
  assert.equal(first.data.toString(), '1');
  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0a, 0xc3]);
  inbox.ws.send(`0${bytes.toString('base64')}`);
  const echoed = await inbox.next();
  assert.equal(echoed.binary, false);
  assert.equal(echoed.data.toString(), `1${bytes.toString('base64')}`);
  inbox.ws.close(); // v4 has no close signal: closing the socket is stdin's end
  await inbox.closed;
});

test('channel.k8s.io and no subprotocol report a failure as plain text, and success as nothing', async (t) => {
  const { server } = await startExecServer(t);
  for (const protocols of [['channel.k8s.io'], []]) {
    const failing = client(t, server, 'stdout=1&command=exit&command=3', protocols);
    await failing.opened;
    assert.equal(failing.ws.protocol, protocols[0] ?? '');
    assert.deepEqual((await failing.next()).data, Buffer.from([1]));
    assert.deepEqual((await failing.next()).data, frame(3, 'command terminated with non-zero exit code: exit status 3'));
    assert.equal((await failing.closed).code, 1000);

    const ok = client(t, server, 'stdout=1&command=exit&command=0', protocols);
    await ok.opened;
    assert.deepEqual((await ok.next()).data, Buffer.from([1]));
    assert.equal((await ok.closed).code, 1000);
    assert.equal(ok.pending.length, 0, 'no error message on success before v4');
  }
});

test('the server picks v5 even when the client lists older protocols first', async (t) => {
  const { server } = await startExecServer(t);
  const inbox = client(t, server, 'stdout=1&command=exit&command=0', ['channel.k8s.io', 'v4.base64.channel.k8s.io', 'v4.channel.k8s.io', 'v5.channel.k8s.io']);
  await inbox.opened;
  assert.equal(inbox.ws.protocol, 'v5.channel.k8s.io');
  await inbox.closed;
});

test('an unknown subprotocol is refused with 403 and a body naming what is supported', async (t) => {
  const { server, served } = await startExecServer(t);
  const ws = new WebSocket(server.url('/exec?stdout=1&command=exit'), ['v9.channel.k8s.io']);
  t.after(() => ws.terminate());
  const refused = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
    ws.on('open', () => reject(new Error('upgrade accepted')));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
  });
  assert.equal(refused.status, 403);
  assert.equal(refused.body, 'websocket subprotocol(s) not supported: v9.channel.k8s.io; this endpoint speaks v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io, channel.k8s.io, base64.channel.k8s.io, (none)\n');
  assert.equal(served.length, 0);
});

test('a plain HTTP request on the upgrade path is answered 400', async (t) => {
  const { server } = await startExecServer(t);
  // Not an upgrade at all, so the http server's request handler (404) answers; an upgrade to
  // something else reaches acceptChannelWebSocket.
  const res = await fetch(server.url('/exec', 'http'));
  assert.equal(res.status, 404);
  await res.text();
  const { request } = await import('node:http');
  const status = await new Promise<number | undefined>((resolve, reject) => {
    const req = request(server.url('/exec', 'http'), { headers: { Connection: 'Upgrade', Upgrade: 'h2c' } });
    req.on('response', (r) => {
      r.resume();
      resolve(r.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 400);
});

test('closing the socket ends stdin for the command', async (t) => {
  const { server, served } = await startExecServer(t);
  const inbox = client(t, server, 'stdin=1&stdout=1&command=echo&command=0', ['v4.channel.k8s.io']);
  await inbox.opened;
  await inbox.next();
  inbox.ws.terminate();
  await within(served[0].stdinEnded, 2000, 'stdin EOF after the socket closed');
  assert.equal(await served[0].session.closed, 1006);
});

for (const [name, protocol, message] of [
  ['a message for an unknown channel', 'v5.channel.k8s.io', Buffer.from([9, 1, 2])],
  ['an empty message', 'v5.channel.k8s.io', Buffer.alloc(0)],
  ['a close signal without its channel byte', 'v5.channel.k8s.io', Buffer.from([255])],
  ['channel 255 before v5', 'v4.channel.k8s.io', Buffer.from([255, 0])],
  ['bad base64', 'v4.base64.channel.k8s.io', '0%%%%'],
  ['an unknown base64 channel character', 'v4.base64.channel.k8s.io', 'zAA=='],
] as const) {
  test(`${name} closes the socket with 1002 and the server carries on`, async (t) => {
    const { server, served } = await startExecServer(t);
    const bad = client(t, server, 'stdin=1&stdout=1&command=echo&command=0', [protocol]);
    await bad.opened;
    await bad.next();
    bad.ws.send(message);
    assert.equal((await within(bad.closed, 2000, 'close after garbage')).code, 1002);
    await within(served[0].stdinEnded, 2000, 'stdin EOF after a protocol error');
    const good = client(t, server, 'stdout=1&command=exit&command=0', ['v5.channel.k8s.io']);
    await good.opened;
    assert.equal((await good.closed).code, 1000);
  });
}

test('stdout waits for a slow client instead of buffering without bound', async (t) => {
  const { server, served } = await startExecServer(t);
  const inbox = client(t, server, 'stdout=1&command=flood&command=64', ['v5.channel.k8s.io']);
  await inbox.opened;
  inbox.ws.pause(); // the client stops reading: the kernel buffers fill, then ws's, then ours
  await sleep(500);
  const { counters } = served[0];
  t.diagnostic(`client paused: ${counters.produced} bytes produced, ws bufferedAmount peaked at ${counters.maxBufferedAmount}`);
  assert.ok(counters.produced < 16 << 20, `the command ran ahead: ${counters.produced} bytes produced while the client read nothing`);
  assert.ok(counters.maxBufferedAmount <= (256 + 64 + 1) << 10, `ws buffered ${counters.maxBufferedAmount} bytes`);
  const hash = createHash('sha256');
  let received = 0;
  inbox.ws.on('message', (data: Buffer) => {
    if (data[0] !== 1) return;
    received += data.length - 1;
    hash.update(data.subarray(1));
  });
  // Messages the Inbox already queued count too.
  for (const m of inbox.take()) {
    if (m.data[0] !== 1) continue;
    received += m.data.length - 1;
    hash.update(m.data.subarray(1));
  }
  inbox.ws.resume();
  await within(inbox.closed, 20000, 'the flood to arrive');
  assert.equal(received, 64 << 20);
  const expected = createHash('sha256');
  for (let sent = 0; sent < 64 << 20; sent += 64 << 10) expected.update(Buffer.alloc(64 << 10, sent >> 16));
  assert.equal(hash.digest('hex'), expected.digest('hex'));
});

test('stdin the command does not read stops the socket instead of filling memory', async (t) => {
  const { server, served, startSink } = await startExecServer(t);
  const inbox = client(t, server, 'stdin=1&command=sink', ['v5.channel.k8s.io']);
  await inbox.opened;
  const total = 32 << 20;
  const chunk = randomBytes(64 << 10);
  for (let sent = 0; sent < total; sent += chunk.length) inbox.ws.send(frame(0, chunk));
  await sleep(500);
  const stdin = served[0].session.stdin!;
  t.diagnostic(`command not reading: server holds ${stdin.readableLength} bytes, client still has ${inbox.ws.bufferedAmount} unsent`);
  assert.ok(stdin.readableLength <= 1 << 20, `server buffered ${stdin.readableLength} bytes of unread stdin`);
  assert.ok(inbox.ws.bufferedAmount > 8 << 20, `client could flush ${total - inbox.ws.bufferedAmount} bytes into a paused server`);
  startSink();
  inbox.ws.send(Buffer.from([255, 0]));
  await within(served[0].stdinEnded, 20000, 'stdin to drain');
  assert.equal(served[0].counters.consumed, total);
  assert.equal((await inbox.closed).code, 1000);
});
