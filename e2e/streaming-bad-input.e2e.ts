// e2e: the streaming server facing bad clients, against the real daemon: expired and reused URLs
// are 404 on every route and transport; an unknown subprotocol is refused before anything runs;
// garbage (not HTTP, broken SPDY frames, broken WebSocket frames, unknown channels) ends only that
// connection; and a client that vanishes mid-stream leaves no process in the container and no file
// descriptor in skiffd or the container's monitor. The daemon hands out URLs that live 2 s.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { WebSocket } from 'ws';
import type * as v1 from '../cri/gen/v1.js';
import { spdyDial, upgrade } from '../cri/streaming/fake-backend.js';
import { stOpen } from '../cri/streaming/spdy/peer.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';
import { clientNodeForward, connectChannels, eventually, fdCount, processesWith } from './harness/streaming-clients.js';

const TOKEN_TTL_MS = 2000;

/** Opens a WebSocket with `protocols`; resolves with the HTTP status of a refusal, or the open socket. */
function wsOpen(url: string, protocols: string[]): Promise<{ status: number; body: string } | { ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols);
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

describe('streaming: bad clients', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let podId = '';
  let containerId = '';
  let daemonPid = 0;
  let monitorPid = 0;

  const execUrl = async (cmd: string[], stdin = false): Promise<string> =>
    (await d.client.exec({ container_id: containerId, cmd, stdin, stdout: true, stderr: true, tty: false })).url;

  /** skiffd and the monitor hold no more fds than they did at `base`, once things settle. */
  const noFdLeak = async (base: { daemon: number; monitor: number }, what: string): Promise<void> => {
    const ok = await eventually(() => fdCount(daemonPid) <= base.daemon && fdCount(monitorPid) <= base.monitor, 5000);
    assert.ok(ok, `${what}: skiffd holds ${fdCount(daemonPid)} fds (was ${base.daemon}), the monitor ${fdCount(monitorPid)} (was ${base.monitor})`);
  };
  const fds = (): { daemon: number; monitor: number } => ({ daemon: fdCount(daemonPid), monitor: fdCount(monitorPid) });

  before(async () => {
    w = await startPodWorld({ toml: () => `[streaming]\ntoken_ttl = "${TOKEN_TTL_MS / 1000}s"\n` });
    d = w.d;
    daemonPid = d.child!.pid!;
    const cfg: v1.PodSandboxConfig = { metadata: { name: 'bad', namespace: 'e2e', uid: 'uid-bad', attempt: 0 }, log_directory: w.dir, linux: { cgroup_parent: w.cgroupParent } };
    ({ pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg }));
    ({ container_id: containerId } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name: 'c' }, image: { image: w.image }, command: ['sh', '-c', 'nc -ll -p 8080 -e cat'], log_path: 'c.log', stdin: true },
      sandbox_config: cfg,
    }));
    await d.client.startContainer({ container_id: containerId });
    const monitors = processesWith(`skiff-monitor`).filter((pid) => processesWith(containerId).includes(pid));
    assert.equal(monitors.length, 1, `one monitor for ${containerId}`);
    monitorPid = monitors[0];
    // Whatever skiffd opens once and keeps (the network workers' sockets), opened before fds are counted.
    const c = await connectChannels(await execUrl(['true']));
    await c.closed;
    assert.equal((await clientNodeForward((await d.client.portForward({ pod_sandbox_id: podId, port: [8080] })).url, Buffer.from('warm\n'))).toString(), 'warm\n');
  });

  after(async () => {
    await w?.close();
  });

  test('an expired URL is 404 on every route and transport, and nothing runs', async () => {
    const exec = await execUrl(['sh', '-c', 'sleep 5101']);
    const attach = (await d.client.attach({ container_id: containerId, stdin: false, stdout: true, stderr: false, tty: false })).url;
    const pf = (await d.client.portForward({ pod_sandbox_id: podId, port: [8080] })).url;
    const spdyExec = await execUrl(['sh', '-c', 'sleep 5102']);
    await new Promise((r) => setTimeout(r, TOKEN_TTL_MS + 500));
    for (const url of [exec, attach]) {
      const r = await wsOpen(url, ['v5.channel.k8s.io']);
      assert.ok('status' in r && r.status === 404 && /unknown, expired or already used/.test(r.body), JSON.stringify(r));
    }
    const rpf = await wsOpen(`${pf}?port=8080`, ['v4.channel.k8s.io']);
    assert.ok('status' in rpf && rpf.status === 404, JSON.stringify(rpf));
    const spdy = await upgrade(spdyExec, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' });
    spdy.socket.destroy();
    assert.match(spdy.response, /^HTTP\/1\.1 404 /);
    assert.equal((await fetch(exec)).status, 404);
    assert.deepEqual(processesWith('sleep 510'), []);
  });

  test('a used URL is 404 the second time, over either transport', async (t) => {
    const url = await execUrl(['echo', 'once']);
    const c = await connectChannels(url);
    await c.closed;
    assert.equal(c.text(1), 'once\n');
    const again = await upgrade(url, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' });
    again.socket.destroy();
    assert.match(again.response, /^HTTP\/1\.1 404 /);

    const pf = (await d.client.portForward({ pod_sandbox_id: podId, port: [8080] })).url;
    const { conn } = await spdyDial(t, pf, ['portforward.k8s.io']);
    await stOpen(conn, { streamtype: 'error', port: '8080', requestid: '0' });
    conn.end();
    const r = await wsOpen(`${pf}?port=8080`, ['v4.channel.k8s.io']);
    assert.ok('status' in r && r.status === 404, JSON.stringify(r));
  });

  test('an unknown subprotocol is refused with 403 naming what is spoken; the command never runs', async () => {
    const ws = await wsOpen(await execUrl(['sh', '-c', 'sleep 5201']), ['v9.channel.k8s.io']);
    assert.ok('status' in ws && ws.status === 403 && /v9\.channel\.k8s\.io.*v5\.channel\.k8s\.io/.test(ws.body), JSON.stringify(ws));
    const spdy = await upgrade(await execUrl(['sh', '-c', 'sleep 5202']), { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v9.channel.k8s.io' });
    spdy.socket.destroy();
    assert.match(spdy.response, /^HTTP\/1\.1 403 /);
    assert.match(spdy.response, /X-Accepted-Stream-Protocol-Versions: v4\.channel\.k8s\.io/i);
    const pf = await wsOpen(`${(await d.client.portForward({ pod_sandbox_id: podId, port: [8080] })).url}?port=8080`, ['v5.channel.k8s.io']);
    assert.ok('status' in pf && pf.status === 403, JSON.stringify(pf));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(processesWith('sleep 520'), []);
  });

  test('garbage ends only its own connection: not HTTP, broken SPDY frames, broken WebSocket frames, unknown channels', async () => {
    const base = fds();
    const port = Number(new URL(await execUrl(['true'])).port);
    // Not HTTP at all.
    const raw = net.connect(port, '127.0.0.1');
    await once(raw, 'connect');
    raw.write('\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n');
    let reply = '';
    raw.on('data', (b: Buffer) => (reply += b.toString('latin1')));
    await once(raw, 'close');
    assert.match(reply, /^HTTP\/1\.1 400 /);

    // A SPDY session whose first frame is nonsense: GOAWAY, closed, and the command never ran.
    const spdy = await upgrade(await execUrl(['sh', '-c', 'sleep 5301']), { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' });
    assert.match(spdy.response, /^HTTP\/1\.1 101 /);
    const frames: Buffer[] = [];
    spdy.socket.on('data', (b: Buffer) => frames.push(b));
    spdy.socket.resume();
    spdy.socket.write(Buffer.from([0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0xff])); // SYN_STREAM with a 2-byte body
    spdy.socket.write(Buffer.alloc(64, 0xee));
    await once(spdy.socket, 'close');
    // After its SETTINGS and WINDOW_UPDATE: GOAWAY (type 7, 8 bytes) with status 1, PROTOCOL_ERROR.
    const sent = Buffer.concat(frames);
    const at = sent.indexOf(Buffer.from([0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08]));
    assert.ok(at >= 0 && sent.readUInt32BE(at + 12) === 1, `a GOAWAY(PROTOCOL_ERROR) frame in ${sent.toString('hex')}`);

    // A WebSocket frame with the reserved bits set, then a message on a channel that does not exist.
    for (const bad of [Buffer.from([0xf2, 0x81, 0, 0, 0, 0, 1]), Buffer.from([9, 1, 2, 3])]) {
      const r = await wsOpen(await execUrl(['sh', '-c', `cat; sleep ${bad[0] === 0xf2 ? 5302 : 5303}`], true), ['v5.channel.k8s.io']);
      assert.ok('ws' in r);
      const closed = once(r.ws, 'close') as Promise<[number, Buffer]>;
      if (bad[0] === 0xf2) (r.ws as unknown as { _socket: net.Socket })._socket.write(bad);
      else r.ws.send(bad);
      const [code] = await closed;
      assert.ok(code === 1002 || code === 1006, `closed with ${code}`);
    }
    // The server goes on serving.
    const c = await connectChannels(await execUrl(['echo', 'still here']));
    await c.closed;
    assert.equal(c.text(1), 'still here\n');
    assert.ok(await eventually(() => processesWith('sleep 530').length === 0), `left running: ${processesWith('sleep 530').join(' ')}`);
    await noFdLeak(base, 'after garbage');
  });

  test('a client that vanishes mid-stream leaves no process and no fd: exec (WebSocket, SPDY, TTY), attach, port-forward', async (t) => {
    const base = fds();
    const gone = (marker: string): Promise<boolean> => eventually(() => processesWith(marker).length === 0, 5000);

    // exec over WebSocket, with stdin open and output flowing: the socket is cut.
    const r = await wsOpen(await execUrl(['sh', '-c', 'while true; do echo x; sleep 0.01; done'], true), ['v5.channel.k8s.io']);
    assert.ok('ws' in r);
    const [first] = (await once(r.ws, 'message')) as [Buffer];
    assert.ok(await eventually(() => processesWith('while true; do echo x').length === 1, 2000), `the exec'd shell runs; the first message was ${JSON.stringify(first.toString())}`);
    (r.ws as unknown as { _socket: net.Socket })._socket.destroy();
    assert.ok(await gone('while true; do echo x'), 'the exec’d shell was killed');

    // exec over SPDY: the streams are open, the command runs, the TCP connection is cut.
    const { socket, conn } = await spdyDial(t, await execUrl(['sh', '-c', 'sleep 5402'], true), ['v4.channel.k8s.io']);
    for (const streamtype of ['error', 'stdin', 'stdout', 'stderr']) await stOpen(conn, { streamtype });
    assert.ok(await eventually(() => processesWith('sleep 5402').length === 1), 'the command started');
    socket.destroy();
    assert.ok(await gone('sleep 5402'), 'the exec’d sleep was killed');

    // exec with a TTY over WebSocket.
    const tty = await d.client.exec({ container_id: containerId, cmd: ['sh', '-c', 'sleep 5403'], stdin: true, stdout: true, stderr: false, tty: true });
    const rt = await wsOpen(tty.url, ['v5.channel.k8s.io']);
    assert.ok('ws' in rt);
    assert.ok(await eventually(() => processesWith('sleep 5403').length === 1), 'the command started');
    rt.ws.terminate();
    assert.ok(await gone('sleep 5403'), 'the exec’d sleep was killed');

    // attach with stdin: the container goes on.
    const at = await d.client.attach({ container_id: containerId, stdin: true, stdout: true, stderr: true, tty: false });
    const ra = await wsOpen(at.url, ['v5.channel.k8s.io']);
    assert.ok('ws' in ra);
    ra.ws.terminate();

    // port-forward with a connection open into the pod.
    const pf = (await d.client.portForward({ pod_sandbox_id: podId, port: [8080] })).url;
    const rp = await wsOpen(`${pf}?port=8080`, ['v4.channel.k8s.io']);
    assert.ok('ws' in rp);
    rp.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('hello\n')]));
    await new Promise((r) => setTimeout(r, 200));
    rp.ws.terminate();

    await noFdLeak(base, 'after vanished clients');
    assert.equal((await d.client.containerStatus({ container_id: containerId })).status?.state, 'CONTAINER_RUNNING');
  });
});
