// exec and port-forward over WebSocket with @kubernetes/client-node 1.x: its WebSocketHandler for
// exec (its Exec class builds the API server's path, which this server does not serve) and its
// PortForward class, pointed at our /portforward/{token} URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
// Not re-exported by the package index; the package has no exports map, so the file is reachable.
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import type WebSocket from 'ws';
import { startServer } from './fake-backend.js';
import { listenEcho, within } from './ws/loopback-fixture.js';

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'streaming', server, skipTLSVerify: true }],
    users: [{ name: 'nobody' }],
    contexts: [{ name: 'streaming', cluster: 'streaming', user: 'nobody' }],
    currentContext: 'streaming',
  });
  return kc;
}

test('client-node WebSocket exec (v5): stdout exact, stderr separate, status with exit code 3', async (t) => {
  const { server } = await startServer(t);
  const url = new URL(server.getExecUrl({ containerId: 'c1', cmd: ['echo'], stdin: true, stdout: true, stderr: true, tty: false }));
  const channels = new Map<number, Buffer[]>();
  const ws = await new WebSocketHandler(kubeConfig(url.origin)).connect(url.pathname, null, (channel: number, data: Buffer) => {
    channels.set(channel, [...(channels.get(channel) ?? []), Buffer.from(data)]);
    return true;
  });
  t.after(() => ws.terminate());
  assert.equal(ws.protocol, 'v5.channel.k8s.io');
  const closed = once(ws, 'close');
  const input = Buffer.from('hello over websocket\n');
  ws.send(Buffer.concat([Buffer.from([0]), input]));
  ws.send(Buffer.from([255, 0])); // v5 close signal: stdin is done
  await within(closed, 5000, 'exec close');
  const text = (c: number): string => Buffer.concat(channels.get(c) ?? []).toString();
  assert.equal(text(1), input.toString());
  assert.equal(text(2), `stderr: ${input.length} bytes\n`);
  assert.deepEqual(JSON.parse(text(3)), {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: exit status 3',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '3' }] },
  });
});

test('client-node WebSocket exec: a client that vanishes aborts the command', async (t) => {
  const { server, backend } = await startServer(t);
  const url = new URL(server.getExecUrl({ containerId: 'c1', cmd: ['hang'], stdin: false, stdout: true, stderr: false, tty: false }));
  const started = once(backend, 'exec');
  const ws = await new WebSocketHandler(kubeConfig(url.origin)).connect(url.pathname, null, () => true);
  await within(started, 5000, 'exec start');
  const released = once(backend, 'released');
  ws.terminate();
  assert.deepEqual(await within(released, 5000, 'backend release'), [{ aborted: true, stdoutDestroyed: true }]);
});

test('client-node PortForward carries 10 MB to the pod port and back intact', async (t) => {
  const echo = await listenEcho();
  t.after(() => echo.close());
  const { server, backend } = await startServer(t);
  // client-node appends the API server's path; a trailing query parameter swallows it.
  const url = new URL(server.getPortForwardUrl({ podSandboxId: 'sb1' }));
  const kc = kubeConfig(`${url.origin}${url.pathname}?port=${echo.port}&ignored=`);
  const total = 10 << 20;
  const payload = randomBytes(total);
  const received = createHash('sha256');
  let receivedBytes = 0;
  const output = new PassThrough();
  const errors = new PassThrough();
  let errorText = '';
  errors.on('data', (d: Buffer) => (errorText += d.toString()));
  const done = new Promise<void>((resolve) => {
    output.on('data', (d: Buffer) => {
      received.update(d);
      receivedBytes += d.length;
      if (receivedBytes >= total) resolve();
    });
  });
  const input = new PassThrough();
  const ws = (await new PortForward(kc).portForward('default', 'pod', [echo.port], output, errors, input)) as unknown as WebSocket;
  t.after(() => ws.terminate());
  for (let off = 0; off < total; off += 64 << 10) input.write(payload.subarray(off, off + (64 << 10)));
  await within(done, 30_000, '10 MB echo');
  assert.equal(receivedBytes, total);
  assert.equal(received.digest('hex'), createHash('sha256').update(payload).digest('hex'));
  assert.equal(errorText, '');
  assert.deepEqual(backend.forwards, [echo.port]);
  const closed = once(ws, 'close');
  input.end(); // client-node closes the WebSocket at the end of its input
  await within(closed, 5000, 'port-forward close');
});

test('WebSocket port-forward without a port parameter is refused with 400', async (t) => {
  const { server } = await startServer(t);
  const url = new URL(server.getPortForwardUrl({ podSandboxId: 'sb1' }));
  const err = await new WebSocketHandler(kubeConfig(url.origin)).connect(url.pathname, null, () => true).then(
    () => assert.fail('connected'),
    (e: unknown) => e as { message?: string; target?: unknown },
  );
  assert.match(String(err.message ?? (err as { error?: Error }).error?.message), /400/);
});
