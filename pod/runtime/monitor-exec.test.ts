// monitorExecSession (and monitorExec) against a stand-in monitor: a unix socket server in a temp
// directory that reads the request and speaks the frames by hand, so that every byte on the wire is
// the test's. native/monitor-exec.test.ts runs the client against the real monitor.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorExec, monitorExecSession, type ExecSession } from './monitor-exec.js';
import { MONITOR_PROTOCOL as P } from './monitor-protocol.js';

function frame(type: number, payload: Buffer | string): Buffer {
  const data = Buffer.from(payload);
  const head = Buffer.alloc(P.FRAME_HEADER);
  head[0] = type;
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

const EXIT_0 = frame(P.FRAME_EXIT, '{"exit_code":0,"signal":0,"timed_out":false}');

interface Peer {
  sock: Socket;
  request: string;
  frames: { type: number; data: Buffer }[];
  closed: boolean;
}

/** A stand-in monitor; `serve` runs for each connection once its request line is in. */
async function fakeMonitor(t: TestContext, serve: (peer: Peer) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-exec-'));
  const path = join(dir, 'ctl');
  const peers: Peer[] = [];
  const conns = new Set<Socket>();
  const server = createServer((sock) => {
    conns.add(sock);
    let buf = Buffer.alloc(0);
    let peer: Peer | undefined;
    sock.on('error', () => undefined);
    sock.on('close', () => peer && (peer.closed = true));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!peer) {
        const nl = buf.indexOf(10);
        if (nl < 0) return;
        peer = { sock, request: buf.subarray(0, nl).toString(), frames: [], closed: false };
        buf = buf.subarray(nl + 1);
        peers.push(peer);
        serve(peer);
      }
      while (buf.length >= P.FRAME_HEADER && buf.length >= P.FRAME_HEADER + buf.readUInt32BE(1)) {
        const len = buf.readUInt32BE(1);
        peer.frames.push({ type: buf[0], data: Buffer.from(buf.subarray(P.FRAME_HEADER, P.FRAME_HEADER + len)) });
        buf = buf.subarray(P.FRAME_HEADER + len);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(async () => {
    for (const s of conns) s.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { path, peers };
}

function collect(s: ExecSession['stdout']) {
  const chunks: Buffer[] = [];
  const ended = new Promise<void>((resolve) => s.on('end', resolve));
  s.on('data', (b: Buffer) => chunks.push(b));
  return { bytes: () => Buffer.concat(chunks), ended };
}

const waitFor = async (what: string, ok: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !ok(); await sleep(10)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
};

const base = { argv: ['crun', 'exec', 'c1'], pidFile: '/run/p', timeoutMs: 0 };

void test('monitorExecSession: the request carries stdin, tty and console_socket only when asked; the plain one is ExecSync\'s line', async (t) => {
  const m = await fakeMonitor(t, (peer) => peer.sock.end(Buffer.concat([Buffer.from('{"ok":true}\n'), EXIT_0])));
  for (const o of [{ stdin: true }, { stdin: true, tty: true, consoleSocket: '/run/c.sock' }, { tty: true, consoleSocket: '/run/c.sock' }]) {
    const s = await monitorExecSession(m.path, { ...base, ...o });
    assert.deepEqual(await s.exited, { exitCode: 0, signal: 0, timedOut: false });
  }
  assert.deepEqual(
    m.peers.map((p) => p.request),
    [
      '{"op":"exec","argv":["crun","exec","c1"],"pid_file":"/run/p","timeout_ms":"0","stdin":true}',
      '{"op":"exec","argv":["crun","exec","c1"],"pid_file":"/run/p","timeout_ms":"0","stdin":true,"tty":true,"console_socket":"/run/c.sock"}',
      '{"op":"exec","argv":["crun","exec","c1"],"pid_file":"/run/p","timeout_ms":"0","tty":true,"console_socket":"/run/c.sock"}',
    ],
  );
  await assert.rejects(monitorExecSession(m.path, { ...base, tty: true }), /a tty needs a console socket path/);

  // A plain request: no answer line, the session starts with its first frame; monitorExec is unchanged.
  const plain = await fakeMonitor(t, (peer) => peer.sock.end(Buffer.concat([frame(P.FRAME_STDOUT, 'hi\n'), frame(P.FRAME_STDERR, 'e'), EXIT_0])));
  const s = await monitorExecSession(plain.path, base);
  const [o, e] = [collect(s.stdout), collect(s.stderr)];
  assert.deepEqual(await s.exited, { exitCode: 0, signal: 0, timedOut: false });
  await Promise.all([o.ended, e.ended]);
  assert.deepEqual([o.bytes().toString(), e.bytes().toString()], ['hi\n', 'e']);
  const r = await monitorExec(plain.path, { ...base, maxOutput: 10 });
  assert.deepEqual([r.stdout.toString(), r.stderr.toString(), r.exitCode], ['hi\n', 'e', 0]);
  assert.equal(plain.peers[0].request, '{"op":"exec","argv":["crun","exec","c1"],"pid_file":"/run/p","timeout_ms":"0"}');
  assert.equal(plain.peers[1].request, plain.peers[0].request);
});

void test('monitorExecSession: stdin in FRAME_MAX frames, resize and stdin close in order; output frames in the answer\'s chunk are kept', async (t) => {
  const m = await fakeMonitor(t, (peer) => peer.sock.write(Buffer.concat([Buffer.from('{"ok":true}\n'), frame(P.FRAME_STDOUT, '$ ')])));
  const s = await monitorExecSession(m.path, { ...base, stdin: true, tty: true, consoleSocket: '/c' });
  const o = collect(s.stdout);
  const data = Buffer.from(Array.from({ length: 40000 }, (_, i) => (i * 7) % 256));
  await s.writeStdin(data);
  s.resize(132, 43);
  await s.closeStdin();
  await s.closeStdin(); // once only
  await assert.rejects(s.writeStdin(Buffer.from('late')), /stdin is closed/);
  const peer = m.peers[0];
  await waitFor('five frames', () => peer.frames.length === 5);
  assert.deepEqual(peer.frames.map((f) => [f.type, f.data.length]), [
    [P.FRAME_STDIN, 16384],
    [P.FRAME_STDIN, 16384],
    [P.FRAME_STDIN, 7232],
    [P.FRAME_RESIZE, 4],
    [P.FRAME_STDIN_CLOSE, 0],
  ]);
  assert.ok(Buffer.concat(peer.frames.slice(0, 3).map((f) => f.data)).equals(data));
  assert.deepEqual([...peer.frames[3].data], [0, 132, 0, 43]);
  peer.sock.end(Buffer.concat([frame(P.FRAME_STDOUT, 'bye'), frame(P.FRAME_EXIT, '{"exit_code":137,"signal":9,"timed_out":true}')]));
  assert.deepEqual(await s.exited, { exitCode: 137, signal: 9, timedOut: true });
  await o.ended;
  assert.equal(o.bytes().toString(), '$ bye');

  const noIn = await monitorExecSession(m.path, base);
  await assert.rejects(noIn.writeStdin(Buffer.from('x')), /stdin was not asked for/);
  noIn.resize(1, 1); // no tty: nothing sent
  noIn.kill();
  await waitFor('the peer to see the disconnect', () => m.peers[1].closed);
  assert.equal(m.peers[1].frames.length, 0);
});

void test('monitorExecSession: kill() disconnects, exited is undefined and writes reject; refusals map to error codes', async (t) => {
  const m = await fakeMonitor(t, (peer) => peer.sock.write('{"ok":true}\n'));
  const s = await monitorExecSession(m.path, { ...base, stdin: true });
  s.kill();
  assert.equal(await s.exited, undefined);
  await waitFor('the monitor to see the disconnect', () => m.peers[0].closed);
  await assert.rejects(s.writeStdin(Buffer.from('x')), /the session has ended/);

  const table: [string | null, string, RegExp][] = [
    [`{"error":"${P.ERR_EXITED}"}\n`, 'SKIFF_FAILED_PRECONDITION', /: the container has exited$/],
    ['{"error":"too many exec sessions"}\n', 'SKIFF_MONITOR_BUSY', /: too many exec sessions$/],
    ['{"ok":false}\n', 'SKIFF_RUNTIME_FAILED', /malformed answer/],
    ['', 'SKIFF_RUNTIME_FAILED', /closed without an answer/],
    [null, 'SKIFF_RUNTIME_FAILED', /no answer in 100 ms/],
  ];
  for (const [answer, code, message] of table) {
    const f = await fakeMonitor(t, (peer) => {
      if (answer !== null) peer.sock.end(answer);
    });
    await assert.rejects(
      monitorExecSession(f.path, { ...base, stdin: true, answerTimeoutMs: 100 }),
      (e: Error & { code?: string }) => e.code === code && message.test(e.message) && e.message.includes(f.path),
      String(answer),
    );
  }
});

void test('monitorExecSession: an unread stdout stops reading the socket, so the monitor sees backpressure; reading it again gets every byte', async (t) => {
  const total = 8 << 20;
  let written = 0;
  let serverSock: Socket | undefined;
  const m = await fakeMonitor(t, (peer) => {
    serverSock = peer.sock;
    peer.sock.write('{"ok":true}\n');
    const chunk = frame(P.FRAME_STDOUT, Buffer.alloc(P.FRAME_MAX, 'z'));
    const pump = () => {
      while (written < total) {
        written += P.FRAME_MAX;
        if (!peer.sock.write(chunk)) return void peer.sock.once('drain', pump);
      }
      peer.sock.end(EXIT_0);
    };
    pump();
  });
  const s = await monitorExecSession(m.path, { ...base, stdin: true });
  await sleep(300);
  assert.ok(written < total, `the monitor could write only ${written} of ${total} bytes`);
  assert.ok((serverSock?.writableLength ?? 0) > 0, 'its writes wait');
  let got = 0;
  s.stdout.on('data', (b: Buffer) => (got += b.length));
  assert.deepEqual(await s.exited, { exitCode: 0, signal: 0, timedOut: false });
  await waitFor('all of it', () => got === total);
});
