// dialPodPort against real namespaces: servers run inside pinned test namespaces (nsenter), every
// byte checked, every failure bounded and leaving no fd behind. Needs root. Changes nothing on the
// host beyond a loopback listener of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readlink, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { rejectsWith } from '../common/assert-error.js';
import { isSkiffError } from '../common/errors.js';
import { errnoOf } from './netlink/netns.js';
import { ipLinks, withNetns, withTempDir } from './kernel-fixtures.js';
import { dialPodPort } from './pod-dial.js';

/**
 * A server inside `netns`, on 127.0.0.1 or ::1: `echo` pipes each connection back to itself, `say`
 * answers `arg` and ends, `flood` sends `arg` bytes (0..255 repeating) with backpressure and ends.
 */
const SERVER = `
const net = require('node:net');
const [host, port, mode, arg] = process.argv.slice(1);
const server = net.createServer((s) => {
  s.on('error', () => {});
  if (mode === 'echo') s.pipe(s);
  else if (mode === 'say') s.end(arg);
  else {
    let left = Number(arg);
    const chunk = Buffer.alloc(65536, 0).map((_, i) => i & 255);
    const more = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; if (!s.write(chunk.subarray(0, n))) return s.once('drain', more); } s.end(); };
    more();
  }
});
server.listen({ host, port: Number(port), backlog: 511 }, () => process.stdout.write('ready\\n'));
`;

/** Listens but never accepts, and fills its own accept queue: the next SYN is dropped. */
const BLACKHOLE = `
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port)); s.listen(0)
cs = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False); c.connect_ex((host, port)); cs.append(c)
time.sleep(0.3)
print('ready', flush=True)
time.sleep(600)
`;

interface Server {
  pid: number;
  stop(): Promise<void>;
}

async function started(child: ChildProcess): Promise<Server> {
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
      await once(child, 'exit');
    }
  };
  try {
    let out = '';
    let err = '';
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 10_000);
      child.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code}): ${err}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid: child.pid ?? -1, stop };
}

function podServer(netns: string, host: string, port: number, mode: 'echo' | 'say' | 'flood', arg = ''): Promise<Server> {
  const child = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', SERVER, host, String(port), mode, arg], { stdio: ['ignore', 'pipe', 'pipe'] });
  return started(child);
}

function podBlackhole(netns: string, port: number): Promise<Server> {
  return started(spawn('nsenter', [`--net=${netns}`, 'python3', '-c', BLACKHOLE, '127.0.0.1', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A pod namespace with servers in it, all stopped (by pid) and the namespace unpinned after `fn`. */
async function withPod(fn: (netns: string, servers: Server[]) => Promise<void>): Promise<void> {
  await withTempDir((dir) =>
    withNetns(dir, ['pod'], async ([netns]) => {
      const servers: Server[] = [];
      try {
        await fn(netns, servers);
      } finally {
        for (const s of servers) await s.stop();
      }
    }),
  );
}

/** Every test ends, one way or the other. */
const BOUND = { timeout: 30_000 };

function randomPort(): number {
  return 20000 + (randomBytes(2).readUInt16LE(0) % 40000);
}

async function readAll(s: Socket): Promise<string> {
  let out = '';
  for await (const b of s) out += (b as Buffer).toString();
  return out;
}

async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

void test('a dialed socket echoes exactly what was sent, and the main thread never moves', BOUND, async () => {
  const before = await readlink('/proc/thread-self/ns/net');
  await withPod(async (netns, servers) => {
    const port = randomPort();
    servers.push(await podServer(netns, '127.0.0.1', port, 'echo'));
    const s = await dialPodPort(netns, port);
    const payload = 'hello from the host\n\u00e9\u0000end';
    const got = readAll(s);
    s.end(payload);
    assert.equal(await got, payload);
    s.destroy();
    assert.equal(await readlink('/proc/thread-self/ns/net'), before);
  });
});

void test('10 MB round-trips through a pod echo server with its sha256 intact and bounded buffering', BOUND, async () => {
  await withPod(async (netns, servers) => {
    const port = randomPort();
    servers.push(await podServer(netns, '127.0.0.1', port, 'echo'));
    const s = await dialPodPort(netns, port);
    const total = 10 * 1024 * 1024;
    const sent = createHash('sha256');
    const back = createHash('sha256');
    let maxQueued = 0;
    let received = 0;
    const rssBefore = process.memoryUsage().rss;
    const start = process.hrtime.bigint();
    async function* source(): AsyncGenerator<Buffer> {
      for (let off = 0; off < total; off += 64 * 1024) {
        const chunk = randomBytes(64 * 1024);
        sent.update(chunk);
        maxQueued = Math.max(maxQueued, s.writableLength);
        yield chunk;
      }
    }
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        back.update(chunk);
        received += chunk.length;
        cb();
      },
    });
    await Promise.all([pipeline(Readable.from(source()), s), pipeline(s, sink)]);
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    assert.equal(received, total);
    assert.equal(back.digest('hex'), sent.digest('hex'));
    // pipeline honours write()'s false: never more than a highWaterMark or so queued in Node.
    assert.ok(maxQueued <= s.writableHighWaterMark + 64 * 1024, `queued ${maxQueued} bytes`);
    const grew = process.memoryUsage().rss - rssBefore;
    assert.ok(grew < 64 * 1024 * 1024, `rss grew ${grew} bytes`);
    console.log(`# 10 MiB echoed in ${secs.toFixed(3)} s (${(20 / secs).toFixed(0)} MiB/s both ways)`);
  });
});

void test('a paused socket stops reading and loses nothing when resumed', BOUND, async () => {
  await withPod(async (netns, servers) => {
    const port = randomPort();
    const total = 8 * 1024 * 1024;
    servers.push(await podServer(netns, '127.0.0.1', port, 'flood', String(total)));
    const s = await dialPodPort(netns, port);
    let got = 0;
    let ok = true;
    let paused = false;
    s.on('data', (b: Buffer) => {
      for (let i = 0; i < b.length; i++) if (b[i] !== ((got + i) & 255)) ok = false;
      got += b.length;
      if (got >= 1024 * 1024 && !paused) {
        paused = true;
        s.pause();
      }
    });
    while (!paused) await new Promise((r) => setTimeout(r, 5));
    const atPause = got;
    await new Promise((r) => setTimeout(r, 200));
    // What the kernel and Node had already buffered may trickle in; the rest waits.
    assert.ok(got - atPause < 4 * 1024 * 1024 && got < total, `read ${got - atPause} bytes while paused`);
    const ended = once(s, 'end');
    s.resume();
    await ended;
    assert.equal(got, total);
    assert.ok(ok, 'bytes arrived in order');
    s.destroy();
  });
});

void test('a port with no listener is refused at once, naming the port, and leaks no fd', BOUND, async () => {
  await withPod(async (netns) => {
    const port = randomPort();
    await dialPodPort(netns, port, { family: 4 }).catch(() => undefined); // the worker's first start
    const fds = await openFds();
    const start = Date.now();
    for (let i = 0; i < 20; i++) {
      await rejectsWith(dialPodPort(netns, port), 'SKIFF_NETWORK_FAILED', `port-forward to port ${port} in ${netns}: connection refused on port ${port} in the pod (127.0.0.1 and ::1)`);
    }
    await rejectsWith(dialPodPort(netns, port, { family: 4 }), 'SKIFF_NETWORK_FAILED', /connection refused on port \d+ in the pod \(127\.0\.0\.1\)$/);
    const err = await dialPodPort(netns, port).catch((e: unknown) => e);
    assert.equal(errnoOf(err), 'ECONNREFUSED');
    assert.ok(Date.now() - start < 2000, `took ${Date.now() - start} ms`);
    assert.equal(await openFds(), fds);
  });
});

void test('50 concurrent dials each get their own connection', BOUND, async () => {
  await withPod(async (netns, servers) => {
    const port = randomPort();
    servers.push(await podServer(netns, '127.0.0.1', port, 'echo'));
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const s = await dialPodPort(netns, port);
        const got = readAll(s);
        s.end(`dial ${i}`);
        return got;
      }),
    );
    assert.deepEqual(answers, Array.from({ length: 50 }, (_, i) => `dial ${i}`));
  });
});

void test("the host's own listener on the same port is not reached: the dial is in the pod", BOUND, async () => {
  const host = createServer((s) => s.end('host'));
  host.listen(0, '127.0.0.1');
  await once(host, 'listening');
  try {
    const port = (host.address() as AddressInfo).port;
    await withPod(async (netns, servers) => {
      await rejectsWith(dialPodPort(netns, port), 'SKIFF_NETWORK_FAILED', /connection refused on port \d+ in the pod/);
      servers.push(await podServer(netns, '127.0.0.1', port, 'say', 'pod'));
      assert.equal(await readAll(await dialPodPort(netns, port)), 'pod');
    });
  } finally {
    host.close();
  }
});

void test('a listener on ::1 only is reached by the IPv6 fallback, or by asking for family 6', BOUND, async (t) => {
  await withPod(async (netns, servers) => {
    const hasV6 = (await ipLinks(netns)).some((l) => l.addr_info?.some((a) => a.local === '::1'));
    if (!hasV6) return t.skip('no ::1 in the test namespace');
    const port = randomPort();
    servers.push(await podServer(netns, '::1', port, 'say', 'six'));
    assert.equal(await readAll(await dialPodPort(netns, port)), 'six');
    assert.equal(await readAll(await dialPodPort(netns, port, { family: 6 })), 'six');
    await rejectsWith(dialPodPort(netns, port, { family: 4 }), 'SKIFF_NETWORK_FAILED', /connection refused/);
  });
});

void test('a listener that never accepts times the dial out by its deadline; no fd leaks, later dials work', BOUND, async () => {
  await withPod(async (netns, servers) => {
    const port = randomPort();
    servers.push(await podBlackhole(netns, port));
    const fds = await openFds();
    const start = Date.now();
    const err = await dialPodPort(netns, port, { timeoutMs: 300, family: 4 }).catch((e: unknown) => e);
    const took = Date.now() - start;
    assert.ok(isSkiffError(err, 'SKIFF_NETWORK_FAILED'), String(err));
    assert.equal(err.message, `port-forward to port ${port} in ${netns}: timed out after 300 ms connecting to port ${port} in the pod`);
    assert.equal(errnoOf(err), 'ETIMEDOUT');
    assert.ok(took >= 250 && took < 1500, `took ${took} ms`);
    // Timed-out dials queued behind each other: each settles by its own deadline.
    const many = await Promise.allSettled(Array.from({ length: 5 }, () => dialPodPort(netns, port, { timeoutMs: 200 })));
    assert.ok(many.every((r) => r.status === 'rejected'));
    assert.ok(Date.now() - start < 3000);
    await new Promise((r) => setTimeout(r, 100)); // a late worker answer's fd is closed on arrival
    assert.equal(await openFds(), fds);
    const echo = randomPort();
    servers.push(await podServer(netns, '127.0.0.1', echo, 'say', 'still here'));
    assert.equal(await readAll(await dialPodPort(netns, echo)), 'still here');
  });
});

void test('a missing path, a path that is no network namespace, or a bad port is SKIFF_INVALID_ARGUMENT', BOUND, async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'not-a-netns');
    await writeFile(file, '');
    const fds = await openFds();
    await rejectsWith(dialPodPort(join(dir, 'missing'), 80), 'SKIFF_INVALID_ARGUMENT', `network namespace ${join(dir, 'missing')} does not exist`);
    await rejectsWith(dialPodPort(file, 80), 'SKIFF_INVALID_ARGUMENT', `${file} is not a network namespace`);
    assert.equal(await openFds(), fds);
    for (const port of [0, -1, 65536, 1.5, Number.NaN]) await rejectsWith(dialPodPort(file, port), 'SKIFF_INVALID_ARGUMENT', /invalid port/);
    await rejectsWith(dialPodPort(file, 80, { timeoutMs: 0 }), 'SKIFF_INVALID_ARGUMENT', /invalid timeout/);
  });
});
