// monitorAttach against a stand-in monitor: a unix socket server in a temp directory that answers
// the request and speaks the frames by hand, so that every byte on the wire is the test's.
// native/monitor.test.ts runs the client against the real monitor.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorAttach, type AttachSession } from './monitor-attach.js';
import { MONITOR_PROTOCOL as P } from './monitor-protocol.js';

/** A frame as the monitor writes it. */
function frame(type: number, payload: Buffer | string): Buffer {
  const data = Buffer.from(payload);
  const head = Buffer.alloc(P.FRAME_HEADER);
  head[0] = type;
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

interface Peer {
  sock: Socket;
  /** The request line, without its newline. */
  request: string;
  /** Client frames received after the request, in order. */
  frames: { type: number; data: Buffer }[];
}

/** A stand-in monitor; `serve` runs for each connection once its request line is in. */
async function fakeMonitor(t: TestContext, serve: (peer: Peer) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-attach-'));
  const path = join(dir, 'ctl');
  const peers: Peer[] = [];
  const conns = new Set<Socket>();
  const server = createServer((sock) => {
    conns.add(sock);
    let buf = Buffer.alloc(0);
    let peer: Peer | undefined;
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!peer) {
        const nl = buf.indexOf(10);
        if (nl < 0) return;
        peer = { sock, request: buf.subarray(0, nl).toString(), frames: [] };
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
    for (const s of conns) s.destroy(); // else close() waits for them
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { path, peers };
}

function collect(s: AttachSession['stdout']) {
  const chunks: Buffer[] = [];
  const ended = new Promise<void>((resolve) => s?.on('end', resolve));
  s?.on('data', (b: Buffer) => chunks.push(b));
  return { bytes: () => Buffer.concat(chunks), ended };
}

const waitFor = async (what: string, ok: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !ok(); await sleep(10)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
};

void test('monitorAttach: frames in the same chunk as the answer, then cut anywhere, reach stdout and stderr; the exit frame resolves exited', async (t) => {
  const out = Buffer.from(Array.from({ length: 40000 }, (_, i) => i % 256));
  const stream = Buffer.concat([
    frame(P.FRAME_STDOUT, out.subarray(0, P.FRAME_MAX)),
    frame(P.FRAME_STDERR, 'oops\n'),
    frame(P.FRAME_STDOUT, out.subarray(P.FRAME_MAX, 2 * P.FRAME_MAX)),
    frame(P.FRAME_STDOUT, Buffer.alloc(0)),
    frame(P.FRAME_STDOUT, out.subarray(2 * P.FRAME_MAX)),
    frame(P.FRAME_EXIT, '{"exit_code":137,"signal":9,"timed_out":false}'),
  ]);
  const m = await fakeMonitor(t, (peer) => {
    void (async () => {
      peer.sock.write(Buffer.concat([Buffer.from('{"ok":true}\n'), stream.subarray(0, 3)]));
      for (let at = 3; at < stream.length; at += 997) {
        await sleep(1);
        peer.sock.write(stream.subarray(at, at + 997));
      }
      peer.sock.end();
    })();
  });
  const s = await monitorAttach(m.path, { stdin: false, stdout: true, stderr: true });
  const [o, e] = [collect(s.stdout), collect(s.stderr)];
  assert.equal(m.peers[0].request, '{"op":"attach","stdin":false,"stdout":true,"stderr":true}');
  assert.deepEqual(await s.exited, { exitCode: 137, signal: 9 });
  await Promise.all([o.ended, e.ended]);
  assert.ok(o.bytes().equals(out));
  assert.equal(e.bytes().toString(), 'oops\n');
});

void test('monitorAttach: stdin is cut into frames of FRAME_MAX, then stdin close and resize follow in order; stdin not asked for is refused', async (t) => {
  const m = await fakeMonitor(t, (peer) => peer.sock.write('{"ok":true}\n'));
  const s = await monitorAttach(m.path, { stdin: true, stdout: false, stderr: false });
  assert.equal(s.stdout, null);
  assert.equal(s.stderr, null);
  const data = Buffer.from(Array.from({ length: 40000 }, (_, i) => (i * 7) % 256));
  await s.writeStdin(data);
  await s.writeStdin(Buffer.alloc(0));
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
  s.detach();
  assert.equal(await s.exited, undefined, 'no exit frame: undefined');
  await assert.rejects(s.writeStdin(Buffer.from('x')), /the session has ended/);

  const m2 = await fakeMonitor(t, (peer) => peer.sock.write('{"ok":true}\n'));
  const out = await monitorAttach(m2.path, { stdin: false, stdout: true, stderr: false });
  await assert.rejects(out.writeStdin(Buffer.from('x')), /stdin was not asked for/);
  out.detach();
});

void test('monitorAttach: refusals are FAILED_PRECONDITION when the container has exited, MONITOR_BUSY when full, RUNTIME_FAILED otherwise', async (t) => {
  const table: [string | null, string, RegExp][] = [
    [`{"error":"${P.ERR_EXITED}"}\n`, 'SKIFF_FAILED_PRECONDITION', /: the container has exited$/],
    ['{"error":"too many attach sessions"}\n', 'SKIFF_MONITOR_BUSY', /: too many attach sessions$/],
    ['{"error":"the container was created without stdin"}\n', 'SKIFF_RUNTIME_FAILED', /without stdin$/],
    ['{"ok":false}\n', 'SKIFF_RUNTIME_FAILED', /malformed answer/],
    ['not json\n', 'SKIFF_RUNTIME_FAILED', /malformed answer "not json"/],
    ['', 'SKIFF_RUNTIME_FAILED', /closed without an answer/],
    [null, 'SKIFF_RUNTIME_FAILED', /no answer in 100 ms/],
  ];
  for (const [answer, code, message] of table) {
    const m = await fakeMonitor(t, (peer) => {
      if (answer === null) return; // silent
      peer.sock.end(answer);
    });
    await assert.rejects(
      monitorAttach(m.path, { stdin: false, stdout: true, stderr: false, timeoutMs: 100 }),
      (e: Error & { code?: string }) => e.code === code && message.test(e.message) && e.message.includes(m.path),
      String(answer),
    );
  }
  await assert.rejects(
    monitorAttach('/nonexistent/skiff/ctl', { stdin: false, stdout: true, stderr: false }),
    (e: Error & { code?: string }) => e.code === 'SKIFF_RUNTIME_FAILED' && /ENOENT/.test(e.message),
  );
  await assert.rejects(monitorAttach('/x', { stdin: false, stdout: false, stderr: false }), TypeError);
});

void test('monitorAttach: an unread stdout stops reading the socket, so the monitor sees backpressure; reading it again gets every byte', async (t) => {
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
      peer.sock.end(frame(P.FRAME_EXIT, '{"exit_code":0,"signal":0,"timed_out":false}'));
    };
    pump();
  });
  const s = await monitorAttach(m.path, { stdin: false, stdout: true, stderr: false });
  await sleep(300);
  assert.ok(written < total, `the monitor could write only ${written} of ${total} bytes`);
  assert.ok((serverSock?.writableLength ?? 0) > 0, 'its writes wait');
  let got = 0;
  s.stdout?.on('data', (b: Buffer) => {
    assert.ok(b.every((x) => x === 0x7a));
    got += b.length;
  });
  assert.deepEqual(await s.exited, { exitCode: 0, signal: 0 });
  await waitFor('all of it', () => got === total);
});

void test('monitorAttach: a stream asked for and not read holds back the other, then both get every byte', async (t) => {
  const total = 4 << 20;
  let written = 0;
  const m = await fakeMonitor(t, (peer) => {
    peer.sock.write('{"ok":true}\n');
    const frames = [frame(P.FRAME_STDOUT, Buffer.alloc(P.FRAME_MAX, 'o')), frame(P.FRAME_STDERR, Buffer.alloc(P.FRAME_MAX, 'e'))];
    const pump = () => {
      while (written < 2 * total) {
        const f = frames[(written / P.FRAME_MAX) % 2];
        written += P.FRAME_MAX;
        if (!peer.sock.write(f)) return void peer.sock.once('drain', pump);
      }
      peer.sock.end(frame(P.FRAME_EXIT, '{"exit_code":0,"signal":0,"timed_out":false}'));
    };
    pump();
  });
  const s = await monitorAttach(m.path, { stdin: false, stdout: true, stderr: true });
  let out = 0;
  s.stdout?.on('data', (b: Buffer) => (out += b.length));
  await sleep(300);
  assert.ok(written < 2 * total && out < total, `stdout got ${out}, the monitor wrote ${written}`);
  let err = 0;
  s.stderr?.on('data', (b: Buffer) => (err += b.length));
  assert.deepEqual(await s.exited, { exitCode: 0, signal: 0 });
  await waitFor('all of both', () => out === total && err === total);
});

void test('monitorAttach: writeStdin resolves only once the monitor takes the bytes', async (t) => {
  let peerSock: Socket | undefined;
  const m = await fakeMonitor(t, (peer) => {
    peerSock = peer.sock;
    peer.sock.write('{"ok":true}\n');
    peer.sock.pause(); // a container that does not read its stdin
  });
  const s = await monitorAttach(m.path, { stdin: true, stdout: false, stderr: false });
  let done = false;
  const writing = s.writeStdin(Buffer.alloc(8 << 20, 'i')).then(() => (done = true));
  await sleep(300);
  assert.equal(done, false);
  peerSock?.resume();
  await writing;
  await waitFor('every frame', () => m.peers[0].frames.reduce((n, f) => n + f.data.length, 0) === 8 << 20);
  s.detach();
});

void test('monitorAttach: a frame the monitor never sends ends the session without an exit status', async (t) => {
  const m = await fakeMonitor(t, (peer) => {
    peer.sock.write(Buffer.concat([Buffer.from('{"ok":true}\n'), frame(P.FRAME_STDOUT, 'a')]));
    setTimeout(() => peer.sock.write(Buffer.concat([frame(9, 'b'), frame(P.FRAME_STDOUT, 'c')])), 50);
  });
  const s = await monitorAttach(m.path, { stdin: false, stdout: true, stderr: false });
  const o = collect(s.stdout);
  assert.equal(await s.exited, undefined);
  await o.ended;
  assert.equal(o.bytes().toString(), 'a');
});
