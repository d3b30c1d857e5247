// port-forward over SPDY, driven by spdy-transport the way kubectl drives kubelet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import { readAll, spdyDial, startServer } from './fake-backend.js';
import { checkHeaders } from './portforward-spdy.js';
import { stOpen, type StConnection, type StStream } from './spdy/peer.js';
import { listenEcho, within } from './ws/loopback-fixture.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** kubectl's pair for one connection: the error stream first, then data, sharing a requestID. */
async function openPair(conn: StConnection, port: number, requestId: string): Promise<{ error: StStream; data: StStream; errorText: Promise<Buffer>; echoed: Promise<Buffer> }> {
  const error = await stOpen(conn, { streamtype: 'error', port: String(port), requestid: requestId });
  const errorText = readAll(error);
  error.end(); // kubectl never writes on it
  const data = await stOpen(conn, { streamtype: 'data', port: String(port), requestid: requestId });
  const echoed = readAll(data);
  for (const s of [error, data]) s.on('error', () => undefined);
  return { error, data, errorText, echoed };
}

test('port-forward carries 10 MB through a requestID pair to the pod port and back intact', async (t) => {
  const echo = await listenEcho();
  t.after(() => echo.close());
  const { server, backend } = await startServer(t);
  const { conn, protocol } = await spdyDial(t, server.getPortForwardUrl({ podSandboxId: 'sb1' }), ['portforward.k8s.io']);
  assert.equal(protocol, 'portforward.k8s.io');
  const pair = await openPair(conn, echo.port, '0');
  const payload = randomBytes(10 << 20);
  for (let off = 0; off < payload.length; off += 64 << 10) {
    if (!pair.data.write(payload.subarray(off, off + (64 << 10)))) await once(pair.data, 'drain');
  }
  pair.data.end();
  const [back, errorText] = await within(Promise.all([pair.echoed, pair.errorText]), 30_000, '10 MB echo');
  assert.equal(back.length, payload.length);
  assert.equal(sha(back), sha(payload));
  assert.equal(errorText.toString(), '');
  assert.deepEqual(backend.forwards, [echo.port]);
});

test('two requestIDs on one connection are forwarded independently', async (t) => {
  const echo = await listenEcho();
  t.after(() => echo.close());
  const { server, backend } = await startServer(t);
  const { conn } = await spdyDial(t, server.getPortForwardUrl({ podSandboxId: 'sb1' }), ['portforward.k8s.io']);
  const a = await openPair(conn, echo.port, '1');
  const b = await openPair(conn, echo.port, '2');
  a.data.end('first');
  b.data.end('second');
  const [ra, rb] = await within(Promise.all([a.echoed, b.echoed]), 5000, 'echoes');
  assert.equal(ra.toString(), 'first');
  assert.equal(rb.toString(), 'second');
  assert.equal(backend.forwards.length, 2);
});

test('a refused pod port is reported on the error stream in kubelet wording', async (t) => {
  const echo = await listenEcho();
  const closedPort = echo.port;
  await echo.close(); // nothing listens there now
  const { server } = await startServer(t);
  const { conn } = await spdyDial(t, server.getPortForwardUrl({ podSandboxId: 'sb1' }), ['portforward.k8s.io']);
  const pair = await openPair(conn, closedPort, '0');
  const [errorText, back] = await within(Promise.all([pair.errorText, pair.echoed]), 5000, 'error stream');
  assert.match(errorText.toString(), new RegExp(`^error forwarding port ${closedPort} to pod sb1, uid : connect ECONNREFUSED 127\\.0\\.0\\.1:${closedPort}$`));
  assert.equal(back.length, 0);
});

test('a data stream whose error stream never comes is closed after the stream creation timeout', async (t) => {
  const { server, backend } = await startServer(t, { streamCreationTimeoutMs: 150 });
  const { conn } = await spdyDial(t, server.getPortForwardUrl({ podSandboxId: 'sb1' }), ['portforward.k8s.io']);
  const data = await stOpen(conn, { streamtype: 'data', port: '80', requestid: '7' });
  data.on('error', () => undefined);
  const body = await within(readAll(data), 5000, 'data stream end');
  assert.equal(body.length, 0);
  assert.deepEqual(backend.forwards, []);
});

test('a client that vanishes mid-forward closes the connection into the pod', async (t) => {
  const pod = net.createServer();
  const accepted = once(pod, 'connection') as Promise<[net.Socket]>;
  await new Promise<void>((resolve) => pod.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => pod.close(() => resolve())));
  const port = (pod.address() as net.AddressInfo).port;
  const { server } = await startServer(t);
  const { conn, socket } = await spdyDial(t, server.getPortForwardUrl({ podSandboxId: 'sb1' }), ['portforward.k8s.io']);
  const pair = await openPair(conn, port, '0');
  const [podSide] = await within(accepted, 5000, 'connection into the pod');
  podSide.on('error', () => undefined);
  pair.data.write('partial');
  socket.destroy();
  await within(once(podSide, 'close'), 5000, 'pod connection closed');
  assert.ok(podSide.destroyed);
});

test('streams without a valid port or streamtype header are reset, as kubelet refuses them', async (t) => {
  const { server, backend } = await startServer(t);
  const { conn } = await spdyDial(t, server.getPortForwardUrl({ podSandboxId: 'sb1' }), ['portforward.k8s.io']);
  const refused: Record<string, string>[] = [{ streamtype: 'data', requestid: '0' }, { streamtype: 'data', port: '0', requestid: '1' }, { streamtype: 'stdin', port: '80', requestid: '2' }];
  for (const headers of refused) {
    const stream = await stOpen(conn, headers);
    stream.on('error', () => undefined);
    stream.resume();
    await within(once(stream, 'close'), 5000, `reset of ${JSON.stringify(headers)}`);
  }
  assert.deepEqual(backend.forwards, []);
});

test('checkHeaders words its refusals like kubelet', () => {
  const h = (headers: Record<string, string>) => ({ header: (name: string) => headers[name] });
  assert.equal(checkHeaders(h({ streamtype: 'data' })), '"port" header is required');
  assert.equal(checkHeaders(h({ port: 'http', streamtype: 'data' })), 'unable to parse "http" as a port');
  assert.equal(checkHeaders(h({ port: '0', streamtype: 'data' })), 'port "0" must be > 0');
  assert.equal(checkHeaders(h({ port: '80' })), '"streamtype" header is required');
  assert.equal(checkHeaders(h({ port: '80', streamtype: 'stdin' })), 'invalid stream type "stdin"');
  assert.equal(checkHeaders(h({ port: '80', streamtype: 'error' })), undefined);
});
