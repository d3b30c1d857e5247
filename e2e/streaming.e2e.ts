// e2e: Exec, Attach and PortForward against the real daemon, its streaming server and real pods,
// with clients we did not write: @kubernetes/client-node (Exec, Attach, PortForward over
// WebSocket) and spdy-transport (SPDY/3.1 streams opened as kubectl opens them). Exec: output bytes
// and exit code exact, stdin through, a TTY whose size `stty size` sees change. Attach: the
// container's own output and stdin, a TTY resized, detach leaves it running. PortForward: a server
// in the pod's network namespace. Bad input: precise gRPC status. Traffic only to 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { Attach, Exec, type V1Status } from '@kubernetes/client-node';
import type * as v1 from '../cri/gen/v1.js';
import { readAll, spdyDial } from '../cri/streaming/fake-backend.js';
import { stOpen } from '../cri/streaming/spdy/peer.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';
import { clientNodeForward, connectChannels, eventually, kubeConfigFor, sha256, spdyStdio } from './harness/streaming-clients.js';

/** A writable that collects text and, like a terminal, has a size and emits 'resize'. */
class FakeTerminal extends PassThrough {
  text = '';
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
    this.on('data', (b: Buffer) => (this.text += b.toString()));
  }
  resizeTo(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

describe('streaming: exec, attach, port-forward', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let podId = '';
  let containerId = '';
  let cfg: v1.PodSandboxConfig;

  const startContainer = async (name: string, extra: Partial<v1.ContainerConfig>): Promise<string> => {
    const { container_id } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name }, image: { image: w.image }, log_path: `${name}.log`, ...extra },
      sandbox_config: cfg,
    });
    await d.client.startContainer({ container_id });
    return container_id;
  };

  before(async () => {
    w = await startPodWorld();
    d = w.d;
    cfg = { metadata: { name: 'stream', namespace: 'e2e', uid: 'uid-stream', attempt: 0 }, hostname: 'stream', log_directory: w.dir, linux: { cgroup_parent: w.cgroupParent } };
    ({ pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg }));
    // Says something every 100 ms (for attach) and serves an echo on 8080 (for port-forward; -ll: one
    // cat per connection, many at once).
    containerId = await startContainer('c', { command: ['sh', '-c', 'nc -ll -p 8080 -e cat & while true; do echo tick; sleep 0.1; done'] });
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

  test('client-node Exec: output exact, V1Status with the exit code, success as Success', async () => {
    const run = async (cmd: string[]): Promise<{ out: string; err: string; status: V1Status }> => {
      const { url } = await d.client.exec({ container_id: containerId, cmd, stdin: false, stdout: true, stderr: true, tty: false });
      const out = new FakeTerminal(0, 0);
      const err = new FakeTerminal(0, 0);
      // Plain streams: a PassThrough with columns/rows would ask for a resize stream.
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      stdout.pipe(out);
      stderr.pipe(err);
      const status = await new Promise<V1Status>((resolve, reject) => {
        new Exec(kubeConfigFor(url)).exec('e2e', 'stream', 'c', cmd, stdout, stderr, null, false, resolve).catch(reject);
      });
      await eventually(() => !stdout.readableLength && !stderr.readableLength, 1000);
      return { out: out.text, err: err.text, status };
    };
    const fail = await run(['sh', '-c', 'printf "a\\0b"; echo e >&2; exit 42']);
    assert.equal(fail.out, 'a\0b');
    assert.equal(fail.err, 'e\n');
    assert.deepEqual([fail.status.status, fail.status.reason, fail.status.details?.causes?.[0]], ['Failure', 'NonZeroExitCode', { reason: 'ExitCode', message: '42' }]);
    const ok = await run(['echo', 'fine']);
    assert.equal(ok.out, 'fine\n');
    assert.equal(ok.status.status, 'Success');
  });

  test('Exec with a TTY (client-node): raw bytes through, stty size sees the size and a resize', async () => {
    const cmd = ['sh', '-c', 'sleep 0.3; stty size; read x; stty size; printf "\\001\\377"; exit 7'];
    const { url } = await d.client.exec({ container_id: containerId, cmd, stdin: true, stdout: true, stderr: false, tty: true });
    const term = new FakeTerminal(99, 33);
    const stdin = new PassThrough();
    const status = new Promise<V1Status>((resolve, reject) => {
      new Exec(kubeConfigFor(url)).exec('e2e', 'stream', 'c', cmd, term, null, stdin, true, resolve).catch(reject);
    });
    assert.ok(await eventually(() => term.text.includes('\n')), `first stty size: ${JSON.stringify(term.text)}`);
    assert.match(term.text, /^33 99\r\n/);
    term.resizeTo(120, 40);
    await new Promise((r) => setTimeout(r, 200));
    stdin.write('\n');
    const s = await status;
    assert.match(term.text, /40 120\r\n/, 'the resize reached the terminal');
    // A TTY in raw-ish output mode still passes bytes outside ASCII as they are.
    assert.ok(term.text.endsWith('\x01\xff') || Buffer.from(term.text, 'latin1').includes(Buffer.from([1])), JSON.stringify(term.text));
    assert.equal(s.details?.causes?.[0].message, '7');
  });

  test('Exec over SPDY/3.1 (spdy-transport, as kubectl opens its streams): output exact, status with the exit code', async (t) => {
    const { url } = await d.client.exec({ container_id: containerId, cmd: ['sh', '-c', 'cat; echo oops >&2; exit 4'], stdin: true, stdout: true, stderr: true, tty: false });
    const io = await spdyStdio(t, url, ['error', 'stdin', 'stdout', 'stderr'], ['v4.channel.k8s.io', 'v3.channel.k8s.io']);
    assert.equal(io.protocol, 'v4.channel.k8s.io');
    const input = Buffer.from(randomBytes(200_000).toString('base64') + '\n');
    io.streams.get('stdin')!.stream.end(input);
    const [out, err, status] = await Promise.all(['stdout', 'stderr', 'error'].map((k) => io.streams.get(k)!.body));
    assert.equal(sha256(out), sha256(input), 'stdout is stdin, byte for byte');
    assert.equal(err.toString(), 'oops\n');
    const s = JSON.parse(status.toString()) as { reason: string; details: { causes: { message: string }[] } };
    assert.deepEqual([s.reason, s.details.causes[0].message], ['NonZeroExitCode', '4']);
  });

  test('Exec with a TTY over SPDY: the resize stream sets what stty size reports', async (t) => {
    const cmd = ['sh', '-c', 'read x; stty size'];
    const { url } = await d.client.exec({ container_id: containerId, cmd, stdin: true, stdout: true, stderr: false, tty: true });
    const io = await spdyStdio(t, url, ['error', 'stdin', 'stdout', 'resize'], ['v4.channel.k8s.io']);
    io.streams.get('resize')!.stream.write(JSON.stringify({ Width: 77, Height: 22 }));
    await new Promise((r) => setTimeout(r, 200));
    io.streams.get('stdin')!.stream.write('go\n');
    const [out, status] = await Promise.all([io.streams.get('stdout')!.body, io.streams.get('error')!.body]);
    assert.match(out.toString(), /22 77\r\n/);
    assert.equal((JSON.parse(status.toString()) as { status: string }).status, 'Success');
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

  test('client-node Attach with a TTY: typed input reaches the shell, a resize reaches stty; detach leaves it running', async () => {
    const id = await startContainer('tty', { command: ['sh'], stdin: true, tty: true });
    const { url } = await d.client.attach({ container_id: id, stdin: true, stdout: true, stderr: false, tty: true });
    const term = new FakeTerminal(91, 31);
    const stdin = new PassThrough();
    const ws = (await new Attach(kubeConfigFor(url)).attach('e2e', 'stream', 'tty', term, null, stdin, true)) as unknown as { close(): void; once(e: string, f: () => void): void };
    await new Promise((r) => setTimeout(r, 200));
    stdin.write('stty size\n');
    assert.ok(await eventually(() => /31 91\r\n/.test(term.text)), JSON.stringify(term.text));
    term.resizeTo(101, 41);
    await new Promise((r) => setTimeout(r, 200));
    stdin.write('stty size; echo $((6*7))\n');
    assert.ok(await eventually(() => /41 101\r\n42\r\n/.test(term.text)), JSON.stringify(term.text));
    const closed = new Promise<void>((resolve) => ws.once('close', resolve));
    ws.close();
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await d.client.containerStatus({ container_id: id })).status?.state, 'CONTAINER_RUNNING');
  });

  test('Attach over SPDY to a container reading stdin: input echoed back exactly; detaching leaves it running', async (t) => {
    const id = await startContainer('cat', { command: ['cat'], stdin: true });
    const { url } = await d.client.attach({ container_id: id, stdin: true, stdout: true, stderr: true, tty: false });
    const io = await spdyStdio(t, url, ['error', 'stdin', 'stdout', 'stderr'], ['v4.channel.k8s.io']);
    const input = randomBytes(48_000).toString('hex') + '\n';
    let got = '';
    io.streams.get('stdout')!.stream.on('data', (b: Buffer) => (got += b.toString()));
    io.streams.get('stdin')!.stream.write(input);
    assert.ok(await eventually(() => got.length >= input.length), `echoed ${got.length} of ${input.length} bytes`);
    assert.equal(got, input);
    io.conn.end();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await d.client.containerStatus({ container_id: id })).status?.state, 'CONTAINER_RUNNING');
  });

  test('client-node PortForward into the pod’s network namespace carries 5 MB intact', { timeout: 20_000 }, async () => {
    const { url } = await d.client.portForward({ pod_sandbox_id: podId, port: [8080] });
    const payload = randomBytes(5 << 20);
    const echoed = await clientNodeForward(url, payload);
    assert.equal(echoed.length, payload.length);
    assert.equal(sha256(echoed), sha256(payload));
  });

  test('PortForward over SPDY (portforward.k8s.io data/error stream pairs): two connections, echoed exactly', async (t) => {
    const { url } = await d.client.portForward({ pod_sandbox_id: podId, port: [8080] });
    const { conn, protocol } = await spdyDial(t, url, ['portforward.k8s.io']);
    assert.equal(protocol, 'portforward.k8s.io');
    const echo = async (requestid: string, payload: Buffer): Promise<{ data: Buffer; error: Buffer }> => {
      const error = await stOpen(conn, { streamtype: 'error', port: '8080', requestid });
      const errorBody = readAll(error);
      errorBody.catch(() => undefined);
      const data = await stOpen(conn, { streamtype: 'data', port: '8080', requestid });
      let got = Buffer.alloc(0);
      data.on('data', (b: Buffer) => (got = Buffer.concat([got, b])));
      data.write(payload);
      await eventually(() => got.length >= payload.length, 10_000);
      data.end();
      return { data: got, error: await Promise.race([errorBody, new Promise<Buffer>((r) => setTimeout(() => r(Buffer.alloc(0)), 1000))]) };
    };
    const a = randomBytes(300_000);
    const b = randomBytes(70_000);
    const [ra, rb] = await Promise.all([echo('0', a), echo('1', b)]);
    assert.equal(sha256(ra.data), sha256(a));
    assert.equal(sha256(rb.data), sha256(b));
    assert.equal(ra.error.toString(), '');
    // A port nothing listens on: the error stream says so; the session goes on.
    const error = await stOpen(conn, { streamtype: 'error', port: '8081', requestid: '2' });
    const errorBody = readAll(error);
    await stOpen(conn, { streamtype: 'data', port: '8081', requestid: '2' });
    assert.match((await errorBody).toString(), /8081/);
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

