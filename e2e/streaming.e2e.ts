// e2e: Exec, Attach and PortForward against the real daemon, its streaming server and real pods,
// with a client we did not write (@kubernetes/client-node's WebSocketHandler). Exec: output bytes
// and exit code exact, stdin through. Attach: the container's own output, detach leaves it
// running. PortForward: a server in the pod's network namespace, 5 MB with a checksum. Bad input:
// precise gRPC status; a used URL is 404. Traffic only to 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
// Not re-exported by the package index; the package has no exports map, so the file is reachable.
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import type * as v1 from '../cri/gen/v1.js';
import { readAll, spdyDial } from '../cri/streaming/fake-backend.js';
import { stOpen } from '../cri/streaming/spdy/peer.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'skiff', server, skipTLSVerify: true }],
    users: [{ name: 'nobody' }],
    contexts: [{ name: 'skiff', cluster: 'skiff', user: 'nobody' }],
    currentContext: 'skiff',
  });
  return kc;
}

/** Connects client-node's WebSocket handler to a streaming URL; collects what each channel says. */
async function connectChannels(url: string): Promise<{ ws: Awaited<ReturnType<WebSocketHandler['connect']>>; text: (c: number) => string; closed: Promise<unknown> }> {
  const u = new URL(url);
  const channels = new Map<number, Buffer[]>();
  const ws = await new WebSocketHandler(kubeConfig(u.origin)).connect(`${u.pathname}${u.search}`, null, (channel: number, data: Buffer) => {
    channels.set(channel, [...(channels.get(channel) ?? []), Buffer.from(data)]);
    return true;
  });
  return { ws, text: (c) => Buffer.concat(channels.get(c) ?? []).toString(), closed: once(ws, 'close') };
}

describe('streaming: exec, attach, port-forward', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let podId = '';
  let containerId = '';

  before(async () => {
    w = await startPodWorld();
    d = w.d;
    const cfg: v1.PodSandboxConfig = { metadata: { name: 'stream', namespace: 'e2e', uid: 'uid-stream', attempt: 0 }, hostname: 'stream', log_directory: w.dir, linux: { cgroup_parent: w.cgroupParent } };
    ({ pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg }));
    ({ container_id: containerId } = await d.client.createContainer({
      pod_sandbox_id: podId,
      // Says something every 100 ms (for attach) and serves "pong" on 8080 (for port-forward).
      config: { metadata: { name: 'c' }, image: { image: w.image }, command: ['sh', '-c', 'while true; do nc -l -p 8080 -e cat; done & while true; do echo tick; sleep 0.1; done'], log_path: 'c.log' },
      sandbox_config: cfg,
    }));
    await d.client.startContainer({ container_id: containerId });
  });

  after(async () => {
    await w?.close();
  });

  test('Exec over WebSocket: stdin in, stdout and stderr apart, the exit code in the status', async () => {
    const { url } = await d.client.exec({ container_id: containerId, cmd: ['sh', '-c', 'cat; echo oops >&2; exit 3'], stdin: true, stdout: true, stderr: true, tty: false });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]+$/);
    const c = await connectChannels(url);
    assert.equal(c.ws.protocol, 'v5.channel.k8s.io');
    const input = randomBytes(3000).toString('base64') + '\n';
    c.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(input)]));
    c.ws.send(Buffer.from([255, 0])); // v5: stdin is done
    await c.closed;
    assert.equal(c.text(1), input);
    assert.equal(c.text(2), 'oops\n');
    const status = JSON.parse(c.text(3)) as { status: string; reason: string; details: { causes: { reason: string; message: string }[] } };
    assert.deepEqual([status.status, status.reason, status.details.causes[0]], ['Failure', 'NonZeroExitCode', { reason: 'ExitCode', message: '3' }]);
    // The URL was single use.
    const res = await fetch(url);
    assert.equal(res.status, 404);
  });

  test('Exec over SPDY/3.1 (spdy-transport, as kubectl opens its streams): output exact, status with the exit code', async (t) => {
    const { url } = await d.client.exec({ container_id: containerId, cmd: ['sh', '-c', 'cat; echo oops >&2; exit 4'], stdin: true, stdout: true, stderr: true, tty: false });
    const { conn, protocol } = await spdyDial(t, url, ['v4.channel.k8s.io', 'v3.channel.k8s.io']);
    assert.equal(protocol, 'v4.channel.k8s.io');
    const open = async (streamtype: string): Promise<{ stream: Awaited<ReturnType<typeof stOpen>>; body: Promise<Buffer> }> => {
      const stream = await stOpen(conn, { streamtype });
      const body = readAll(stream);
      body.catch(() => undefined);
      return { stream, body };
    };
    const error = await open('error');
    const stdin = await open('stdin');
    const stdout = await open('stdout');
    const stderr = await open('stderr');
    const input = Buffer.from(randomBytes(200_000).toString('base64') + '\n');
    stdin.stream.end(input);
    const [out, err, status] = await Promise.all([stdout.body, stderr.body, error.body]);
    assert.equal(createHash('sha256').update(out).digest('hex'), createHash('sha256').update(input).digest('hex'), 'stdout is stdin, byte for byte');
    assert.equal(err.toString(), 'oops\n');
    const s = JSON.parse(status.toString()) as { reason: string; details: { causes: { message: string }[] } };
    assert.deepEqual([s.reason, s.details.causes[0].message], ['NonZeroExitCode', '4']);
  });

  test('Attach over WebSocket sees the container’s own output; detaching leaves it running', async () => {
    const { url } = await d.client.attach({ container_id: containerId, stdin: false, stdout: true, stderr: true, tty: false });
    const c = await connectChannels(url);
    for (let i = 0; i < 100 && !c.text(1).includes('tick\ntick\n'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(c.text(1), /(tick\n){2,}/);
    c.ws.close();
    await c.closed;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await d.client.containerStatus({ container_id: containerId })).status?.state, 'CONTAINER_RUNNING');
  });

  test('PortForward into the pod’s network namespace carries 5 MB intact', { timeout: 20_000 }, async () => {
    const { url } = await d.client.portForward({ pod_sandbox_id: podId, port: [8080] });
    const u = new URL(url);
    // client-node appends the API server's path; a trailing query parameter swallows it.
    const kc = kubeConfig(`${u.origin}${u.pathname}?port=8080&ignored=`);
    const payload = randomBytes(5 << 20);
    const received = createHash('sha256');
    let n = 0;
    const output = new PassThrough();
    const done = new Promise<void>((resolve) => {
      output.on('data', (b: Buffer) => {
        received.update(b);
        n += b.length;
        if (n >= payload.length) resolve();
      });
    });
    const input = new PassThrough();
    const ws = await new PortForward(kc, true).portForward('ns', 'pod', [8080], output, new PassThrough(), input);
    // Not input.end(): client-node closes the WebSocket as soon as its input ends.
    for (let off = 0; off < payload.length; off += 64 << 10) input.write(payload.subarray(off, off + (64 << 10)));
    await done;
    input.end();
    (ws as { close(): void }).close();
    assert.equal(n, payload.length);
    assert.equal(received.digest('hex'), createHash('sha256').update(payload).digest('hex'));
  });

  test('bad input: precise status for Exec, Attach and PortForward', async () => {
    const rejects = (p: Promise<unknown>, code: GrpcStatus, re: RegExp): Promise<void> =>
      assert.rejects(p, (e: ServiceError) => e.code === code && re.test(e.details));
    await rejects(d.client.exec({ container_id: containerId, cmd: ['true'], stdin: false, stdout: false, stderr: false, tty: false }), GrpcStatus.INVALID_ARGUMENT, /one of stdin, stdout, or stderr/);
    await rejects(d.client.exec({ container_id: containerId, cmd: ['true'], stdin: false, stdout: true, stderr: true, tty: true }), GrpcStatus.INVALID_ARGUMENT, /tty and stderr/);
    await rejects(d.client.exec({ container_id: containerId, cmd: [], stdin: false, stdout: true, stderr: false, tty: false }), GrpcStatus.INVALID_ARGUMENT, /cmd/);
    await rejects(d.client.exec({ container_id: 'f'.repeat(64), cmd: ['true'], stdin: false, stdout: true, stderr: false, tty: false }), GrpcStatus.NOT_FOUND, /not found/);
    await rejects(d.client.attach({ container_id: '', stdin: false, stdout: true, stderr: false, tty: false }), GrpcStatus.INVALID_ARGUMENT, /container_id/);
    await rejects(d.client.portForward({ pod_sandbox_id: 'e'.repeat(64), port: [80] }), GrpcStatus.NOT_FOUND, /not found/);
    await rejects(d.client.portForward({ pod_sandbox_id: podId, port: [70000] }), GrpcStatus.INVALID_ARGUMENT, /out of range/);
  });
});
