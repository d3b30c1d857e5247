// End to end over loopback: an http server using acceptSpdyUpgrade + SpdySession, and clients
// built with spdy-transport (a conformant SPDY/3.1 peer) or RawClient (spdystream-like or hostile).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { FLAG_FIN, GoAwayStatus, RstStatus, type Frame } from './frames.js';
import type { SpdySessionOptions } from './session.js';
import type { SpdyStream } from './stream.js';
import { RawClient, spdyServer, stClient, stOpen, upgradeSocket } from './peer.js';

const PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io'];
/** spdy-transport drops a SYN_REPLY without :status; apimachinery's clients take empty headers. */
const REPLY = { ':status': '200', ':version': 'HTTP/1.1' };

async function server(onStream: (s: SpdyStream) => void, session: SpdySessionOptions = {}) {
  return spdyServer({ protocols: PROTOCOLS, session }, (s) => s.on('stream', onStream));
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads to the end without destroying the stream (for await would, and so reset it). */
function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  return new Promise((resolve, reject) => {
    r.on('data', (c: Buffer) => parts.push(c));
    r.once('end', () => resolve(Buffer.concat(parts)));
    r.once('error', reject);
  });
}

/** Writes `data` in 64 KiB chunks honouring backpressure, then ends. */
async function writeAll(w: NodeJS.WritableStream, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; off += 65536) {
    if (!w.write(data.subarray(off, off + 65536))) await once(w, 'drain');
  }
  w.end();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('several streams carry their streamtype headers and echo data both ways', async () => {
  const seen: string[] = [];
  const srv = await server((stream) => {
    seen.push(`${stream.id}:${stream.header('streamtype')}`);
    stream.respond(REPLY);
    stream.pipe(stream); // echo, ending when the client half-closes
  });
  const { conn, socket } = await stClient(srv.port);
  try {
    const types = ['error', 'stdin', 'stdout', 'stderr', 'resize'];
    const streams = await Promise.all(types.map((t) => stOpen(conn, { streamtype: t })));
    const echoes = await Promise.all(
      streams.map(async (s, i) => {
        const body = readAll(s);
        s.end(`hello ${types[i]}`);
        return (await body).toString();
      }),
    );
    assert.deepEqual(echoes, types.map((t) => `hello ${t}`));
    assert.deepEqual(seen.sort(), streams.map((s, i) => `${s.id}:${types[i]}`).sort());
    assert.ok(streams.every((s) => s.id % 2 === 1), 'client streams are odd');
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('10 MB each way through one stream arrive intact, windows enforced against a conformant peer', async (t) => {
  const up = randomBytes(10 * 1024 * 1024);
  const down = randomBytes(10 * 1024 * 1024);
  let serverGot: Promise<Buffer> | undefined;
  let maxBuffered = 0;
  const srv = await server((stream) => {
    stream.respond(REPLY);
    const poll = setInterval(() => (maxBuffered = Math.max(maxBuffered, stream.bufferedBytes)), 1);
    serverGot = readAll(stream).finally(() => clearInterval(poll));
    void writeAll(stream, down);
  });
  const { conn, socket } = await stClient(srv.port);
  try {
    const stream = await stOpen(conn, { streamtype: 'stdin' });
    const start = process.hrtime.bigint();
    const [clientGot] = await Promise.all([readAll(stream), writeAll(stream, up)]);
    const got = await serverGot!;
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    assert.equal(sha(got), sha(up), 'client → server checksum');
    assert.equal(sha(clientGot), sha(down), 'server → client checksum');
    assert.ok(maxBuffered <= 65536, `server buffered at most one window (${maxBuffered})`);
    t.diagnostic(`20 MB (10 MB each way, concurrently) in ${secs.toFixed(2)} s: ${(20 / secs).toFixed(1)} MB/s`);
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('a consumer that does not read stops a conformant client after one window', async () => {
  let held: SpdyStream | undefined;
  const srv = await server((stream) => {
    stream.respond(REPLY);
    held = stream; // never read until the test says so
  });
  const { conn, socket } = await stClient(srv.port);
  try {
    const stream = await stOpen(conn, { streamtype: 'stdin' });
    const data = randomBytes(4 * 1024 * 1024);
    let finished = false;
    const writing = writeAll(stream, data).then(() => (finished = true));
    await sleep(300);
    assert.ok(held, 'server has the stream');
    assert.ok(held.bufferedBytes <= 65536, `buffered ${held.bufferedBytes} bytes, at most one window`);
    assert.ok(held.bufferedBytes > 0, 'some data arrived');
    assert.equal(finished, false, 'the client is still blocked on the window');
    const got = await readAll(held);
    await writing;
    assert.equal(sha(got), sha(data));
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('half-close: the client ends its side and still receives the server\'s reply', async () => {
  const srv = await server((stream) => {
    stream.respond(REPLY);
    void readAll(stream).then((input) => {
      stream.write('got ');
      stream.end(input);
    });
  });
  const { conn, socket } = await stClient(srv.port);
  try {
    const stream = await stOpen(conn, { streamtype: 'stdin' });
    const reply = readAll(stream);
    stream.end('abc');
    assert.equal((await reply).toString(), 'got abc');
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('RST_STREAM from the client ends the server stream with CANCEL; the session lives on', async () => {
  const streams: SpdyStream[] = [];
  const srv = await server((stream) => {
    streams.push(stream);
    stream.respond(REPLY);
    if (stream.header('streamtype') === 'stdout') stream.pipe(stream);
  });
  const { conn, socket } = await stClient(srv.port);
  try {
    const a = await stOpen(conn, { streamtype: 'stdin' });
    await sleep(50);
    const closed = once(streams[0], 'close');
    a.abort();
    await closed;
    assert.equal(streams[0].rstStatus, RstStatus.CANCEL);
    assert.equal(srv.sessions[0].streamCount, 0);
    const b = await stOpen(conn, { streamtype: 'stdout' });
    const echo = readAll(b);
    b.end('still alive');
    assert.equal((await echo).toString(), 'still alive');
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('server reset() sends RST_STREAM with its status', async () => {
  const srv = await server((stream) => stream.reset(RstStatus.REFUSED_STREAM));
  const raw = await RawClient.connect(srv.port);
  try {
    await raw.synStream(1, { streamtype: 'error' });
    await raw.until(() => raw.frames.some((f) => f.type === 'RST_STREAM'));
    assert.deepEqual(raw.frames.find((f) => f.type === 'RST_STREAM'), { type: 'RST_STREAM', streamId: 1, status: RstStatus.REFUSED_STREAM });
  } finally {
    raw.close();
    await srv.close();
  }
});

test('PING: the client\'s is echoed and the server\'s is answered', async () => {
  const srv = await server(() => {});
  const { conn, socket } = await stClient(srv.port);
  try {
    await new Promise<void>((resolve, reject) => conn.ping((err) => (err ? reject(err) : resolve())));
    const rtt = await srv.sessions[0].ping();
    assert.ok(rtt >= 0 && rtt < 5000, `rtt ${rtt} ms`);
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('GOAWAY from the client closes the session once its streams finish', async () => {
  let held: SpdyStream | undefined;
  const srv = await server((stream) => {
    held = stream;
    stream.respond(REPLY);
  });
  const { conn, socket } = await stClient(srv.port);
  try {
    const stream = await stOpen(conn, { streamtype: 'stdout' });
    const session = srv.sessions[0];
    const goaway = once(session, 'goaway');
    const closed = once(session, 'close');
    conn.end();
    const [lastGood, status] = (await goaway) as [number, number];
    assert.equal(status, GoAwayStatus.OK);
    assert.equal(lastGood, stream.id);
    assert.equal(session.closed, false, 'the open stream keeps the session up');
    held!.end('bye');
    stream.end();
    await closed;
    assert.equal(session.closed, true);
  } finally {
    socket.destroy();
    await srv.close();
  }
});

test('goAway() from the server sends GOAWAY(OK) and closes the session once its streams finish', async () => {
  const srv = await server((stream) => stream.end());
  const raw = await RawClient.connect(srv.port);
  try {
    await raw.synStream(1, { streamtype: 'error' });
    await raw.until(() => raw.frames.some((f) => f.type === 'SYN_REPLY'));
    srv.sessions[0].goAway();
    await sleep(100);
    assert.equal(raw.closed, false, 'stream 1 is still open on the client side');
    raw.send({ type: 'DATA', streamId: 1, flags: FLAG_FIN, data: Buffer.alloc(0) });
    await raw.until(() => raw.closed);
    const goaway = raw.frames.find((f) => f.type === 'GOAWAY');
    assert.deepEqual(goaway, { type: 'GOAWAY', lastGoodStreamId: 1, status: GoAwayStatus.OK });
  } finally {
    raw.close();
    await srv.close();
  }
});

test('a malformed frame gets GOAWAY(PROTOCOL_ERROR) and closes only that session', async () => {
  const srv = await server((stream) => {
    stream.respond(REPLY);
    stream.pipe(stream);
  });
  const good = await stClient(srv.port);
  const bad = await RawClient.connect(srv.port);
  try {
    bad.socket.write(Buffer.from('8003000600000005deadbeefff', 'hex')); // PING of length 5
    await bad.until(() => bad.closed);
    assert.deepEqual(bad.frames.at(-1), { type: 'GOAWAY', lastGoodStreamId: 0, status: GoAwayStatus.PROTOCOL_ERROR });
    const s = await stOpen(good.conn, { streamtype: 'stdout' });
    const echo = readAll(s);
    s.end('unaffected');
    assert.equal((await echo).toString(), 'unaffected');
  } finally {
    good.socket.destroy();
    bad.close();
    await srv.close();
  }
});

test('an oversized header block closes the session with PROTOCOL_ERROR', async () => {
  const srv = await server(() => assert.fail('no stream may be emitted'), { maxHeaderBlockSize: 4096 });
  const raw = await RawClient.connect(srv.port);
  try {
    await raw.synStream(1, { streamtype: 'stdin', 'x-pad': randomBytes(8192).toString('hex') });
    await raw.until(() => raw.closed);
    assert.equal((raw.frames.at(-1) as Extract<Frame, { type: 'GOAWAY' }>).status, GoAwayStatus.PROTOCOL_ERROR);
  } finally {
    raw.close();
    await srv.close();
  }
});

test('streams beyond maxConcurrentStreams are refused; even stream ids are a session error', async () => {
  const held: SpdyStream[] = [];
  const srv = await server((stream) => {
    held.push(stream);
    stream.respond();
  }, { maxConcurrentStreams: 2 });
  const raw = await RawClient.connect(srv.port);
  try {
    for (const id of [1, 3, 5]) await raw.synStream(id, { streamtype: 'data' });
    await raw.until(() => raw.frames.some((f) => f.type === 'RST_STREAM'));
    assert.deepEqual(raw.frames.find((f) => f.type === 'RST_STREAM'), { type: 'RST_STREAM', streamId: 5, status: RstStatus.REFUSED_STREAM });
    assert.equal(srv.sessions[0].streamCount, 2);
    const closed = once(srv.sessions[0], 'close');
    await raw.synStream(6, { streamtype: 'data' });
    await raw.until(() => raw.closed);
    const [err] = (await closed) as [Error | undefined];
    assert.match(String(err?.message), /client opened stream 6/);
    assert.ok(held.every((s) => s.destroyed), 'open streams end with the session, without an error event');
    assert.equal((raw.frames.at(-1) as Extract<Frame, { type: 'GOAWAY' }>).status, GoAwayStatus.PROTOCOL_ERROR);
  } finally {
    raw.close();
    await srv.close();
  }
});

test('a spdystream-like peer (never sends WINDOW_UPDATE) still receives 1 MB in auto mode', async () => {
  const payload = randomBytes(1024 * 1024);
  const srv = await server((stream) => stream.end(payload));
  const raw = await RawClient.connect(srv.port);
  try {
    await raw.synStream(1, { streamtype: 'stdout' });
    await raw.until(() => raw.frames.some((f) => f.type === 'DATA' && (f.flags & FLAG_FIN) !== 0));
    assert.equal(raw.dataBytes, payload.length);
    assert.ok(raw.frames.some((f) => f.type === 'SYN_REPLY'), 'SYN_REPLY precedes data');
  } finally {
    raw.close();
    await srv.close();
  }
});

test('with peerFlowControl "always", a peer that grants no window gets exactly 64 KiB, then more per WINDOW_UPDATE', async () => {
  const srv = await server((stream) => stream.end(randomBytes(1024 * 1024)), { peerFlowControl: 'always' });
  const raw = await RawClient.connect(srv.port);
  try {
    await raw.synStream(1, { streamtype: 'stdout' });
    await raw.until(() => raw.dataBytes >= 65536);
    await sleep(200);
    assert.equal(raw.dataBytes, 65536);
    raw.send({ type: 'WINDOW_UPDATE', streamId: 1, delta: 1000 });
    raw.send({ type: 'WINDOW_UPDATE', streamId: 0, delta: 1000 });
    await raw.until(() => raw.dataBytes >= 66536);
    await sleep(100);
    assert.equal(raw.dataBytes, 66536);
  } finally {
    raw.close();
    await srv.close();
  }
});

test('a peer that ignores our window is held back by TCP: the server stops reading the socket', async () => {
  let held: SpdyStream | undefined;
  const srv = await server((stream) => {
    held = stream;
    stream.respond();
  });
  const raw = await RawClient.connect(srv.port);
  try {
    await raw.synStream(1, { streamtype: 'stdin' });
    const chunk = randomBytes(32 * 1024);
    const total = 16 * 1024 * 1024;
    const hash = createHash('sha256');
    let sent = 0;
    // Write without waiting for 'drain' so that only the server's pausing can bound its memory.
    const pump = async (): Promise<void> => {
      while (sent < total && !raw.closed) {
        if (!raw.send({ type: 'DATA', streamId: 1, flags: sent + chunk.length >= total ? FLAG_FIN : 0, data: chunk })) await once(raw.socket, 'drain');
        hash.update(chunk);
        sent += chunk.length;
      }
    };
    const writing = pump();
    await sleep(500);
    assert.ok(held, 'stream accepted');
    // Two windows, then the socket is paused; at most one more frame is queued.
    assert.ok(held.bufferedBytes <= 2 * 65536 + 32 * 1024, `server holds ${held.bufferedBytes} unread bytes`);
    assert.ok(sent < total, `the writer is blocked (sent ${sent} of ${total})`);
    const got = await readAll(held);
    await writing;
    assert.equal(got.length, total);
    assert.equal(sha(got), hash.digest('hex'));
  } finally {
    raw.close();
    await srv.close();
  }
});

test('the 101 response names the negotiated protocol: the client\'s first that the server accepts', async () => {
  const srv = await server(() => {});
  try {
    const { socket, response } = await upgradeSocket(srv.port, ['v5.channel.k8s.io', 'v3.channel.k8s.io', 'v4.channel.k8s.io']);
    assert.match(response, /^HTTP\/1\.1 101 /);
    assert.match(response, /\r\nUpgrade: SPDY\/3\.1\r\n/);
    assert.match(response, /\r\nX-Stream-Protocol-Version: v3\.channel\.k8s\.io(\r\n|$)/);
    socket.destroy();
  } finally {
    await srv.close();
  }
});

test('an unknown subprotocol gets 403 Forbidden with the accepted list', async () => {
  const srv = await server(() => assert.fail('no session'));
  try {
    const { socket, response, rest } = await upgradeSocket(srv.port, ['v9.channel.k8s.io']);
    const body = Buffer.concat([rest, ...(await socket.toArray()) as Buffer[]]).toString();
    assert.match(response, /^HTTP\/1\.1 403 Forbidden/);
    assert.match(response, /\r\nX-Accepted-Stream-Protocol-Versions: v4\.channel\.k8s\.io\r\n/);
    assert.match(body, /unable to negotiate protocol: client supports \[v9\.channel\.k8s\.io\], server accepts \[v4\.channel\.k8s\.io v3\.channel\.k8s\.io\]/);
    assert.equal(srv.sessions.length, 0);
    socket.destroy();
  } finally {
    await srv.close();
  }
});

test('an upgrade to something other than SPDY/3.1 gets 400', async () => {
  const srv = await server(() => assert.fail('no session'));
  try {
    const net = await import('node:net');
    const socket = net.connect(srv.port, '127.0.0.1');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n');
    const text = Buffer.concat((await socket.toArray()) as Buffer[]).toString();
    assert.match(text, /^HTTP\/1\.1 400 Bad Request/);
    assert.match(text, /missing upgrade headers/);
    socket.destroy();
  } finally {
    await srv.close();
  }
});
