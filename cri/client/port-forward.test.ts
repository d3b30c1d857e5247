// The port-forward WebSocket client against the real StreamingServer and its fake backend, which
// dials 127.0.0.1: one local TCP connection per forward, bytes both ways with a checksum, the
// answer after the local side stops writing, the pod side closing first, the error channel.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { startServer } from '../streaming/fake-backend.js';
import { listenEcho, within } from '../streaming/ws/loopback-fixture.js';
import { forwardConnection } from './port-forward.js';

/** A local TCP connection: the CLI's accepted side (paused, half-open allowed) and the client's. */
async function socketPair(t: TestContext): Promise<{ accepted: Socket; client: Socket }> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const acceptedP = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  t.after(() => client.destroy());
  return { accepted: await acceptedP, client };
}

function collect(socket: Socket): { bytes(): Buffer; ended: Promise<void> } {
  const parts: Buffer[] = [];
  socket.on('data', (d: Buffer) => parts.push(d));
  return { bytes: () => Buffer.concat(parts), ended: new Promise((resolve) => socket.once('end', resolve)) };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('4 MB through one forwarded connection and back, checksum equal; closing the local side ends the forward', async (t) => {
  const echo = await listenEcho();
  t.after(() => echo.close());
  const { server, backend } = await startServer(t);
  const { accepted, client } = await socketPair(t);
  const forwarded = forwardConnection(server.getPortForwardUrl({ podSandboxId: 'sb1' }), echo.port, accepted);
  const payload = randomBytes(4 << 20);
  const back = collect(client);
  client.write(payload);
  for (let i = 0; i < 1000 && back.bytes().length < payload.length; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(back.bytes().length, payload.length);
  assert.equal(sha(back.bytes()), sha(payload));
  assert.deepEqual(backend.forwards, [echo.port]);
  client.destroy();
  await within(forwarded, 5000, 'forward end');
});

test('the local side stops writing: the pod side reads what was sent, then EOF, and the forward ends', async (t) => {
  const got: Buffer[] = [];
  let sawEof: () => void = () => undefined;
  const eof = new Promise<void>((resolve) => (sawEof = resolve));
  const target = createServer((socket) => {
    socket.on('data', (d: Buffer) => got.push(d));
    socket.once('end', () => {
      socket.end();
      sawEof();
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  t.after(() => target.close());
  const port = (target.address() as AddressInfo).port;
  const { server } = await startServer(t);
  const { accepted, client } = await socketPair(t);
  const back = collect(client);
  const forwarded = forwardConnection(server.getPortForwardUrl({ podSandboxId: 'sb1' }), port, accepted);
  client.end('question');
  await within(eof, 5000, 'EOF at the pod side');
  assert.equal(Buffer.concat(got).toString(), 'question');
  await within(forwarded, 5000, 'forward end');
  await within(back.ended, 5000, 'local end');
});

test('the pod side closes first: what it sent arrives, then the local socket ends', async (t) => {
  const target = createServer((socket) => socket.end('bye from the pod\n'));
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  t.after(() => target.close());
  const { server } = await startServer(t);
  const { accepted, client } = await socketPair(t);
  const back = collect(client);
  const forwarded = forwardConnection(server.getPortForwardUrl({ podSandboxId: 'sb1' }), (target.address() as AddressInfo).port, accepted);
  await within(back.ended, 5000, 'local end');
  assert.equal(back.bytes().toString(), 'bye from the pod\n');
  await within(forwarded, 5000, 'forward end');
});

test('a port nobody listens on: the error channel\'s message is reported and the local socket ends', async (t) => {
  const dead = await listenEcho();
  const port = dead.port;
  await dead.close();
  const { server } = await startServer(t);
  const { accepted, client } = await socketPair(t);
  const back = collect(client);
  const errors: string[] = [];
  const forwarded = forwardConnection(server.getPortForwardUrl({ podSandboxId: 'sb1' }), port, accepted, { onError: (m) => errors.push(m) });
  await within(back.ended, 5000, 'local end');
  await within(forwarded, 5000, 'forward end');
  assert.equal(errors.length, 1);
  assert.match(errors[0], new RegExp(`^error forwarding port ${port} to pod sb1, uid : connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`));
});

test('a used port-forward URL is refused with the server\'s message', async (t) => {
  const { server } = await startServer(t);
  const url = server.getPortForwardUrl({ podSandboxId: 'sb1' });
  await fetch(url).then((r) => r.body?.cancel());
  const { accepted } = await socketPair(t);
  await assert.rejects(forwardConnection(url, 80, accepted), /refused the upgrade: 404 Not Found: 404 page not found: portforward token is unknown/);
});
