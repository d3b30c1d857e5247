// exec, attach and port-forward through main() in-process: a fake CRI server answers Exec, Attach
// and PortForward with URLs on a real StreamingServer over the fake backend, and the commands get
// a test's stdin, terminal and interrupt. Bytes, exit codes, resizes, raw mode, detach, port
// mappings and bad input.
import { test, before, after, beforeEach } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { startFakeCri, type FakeCri } from '../client/fake-server.js';
import type * as v1 from '../gen/v1.js';
import { FakeBackend } from '../streaming/fake-backend.js';
import { StreamingServer } from '../streaming/server.js';
import { listenEcho, within } from '../streaming/ws/loopback-fixture.js';
import { main, type CliIo } from './main.js';
import { parsePortMapping } from './commands/port-forward.js';

const CTR = 'c0ffee'.padEnd(64, '0');
const POD = 'p'.repeat(64);

let cri: FakeCri;
let streaming: StreamingServer;
/** The server whose URLs the fake runtime hands out (a test may swap in a TLS one). */
let urls: StreamingServer;
let backend: FakeBackend;
let calls: { rpc: string; request: unknown }[] = [];
const requests = <T>(rpc: string): T[] => calls.filter((c) => c.rpc === rpc).map((c) => c.request as T);

before(async () => {
  backend = new FakeBackend();
  streaming = new StreamingServer(backend);
  await streaming.start();
  urls = streaming;
  const notFound = { code: grpc.status.NOT_FOUND, details: `sandbox "nope" not found` };
  cri = await startFakeCri({
    runtime: {
      Exec: (call, done) => {
        calls.push({ rpc: 'Exec', request: call.request });
        const r = call.request;
        done(null, { url: urls.getExecUrl({ containerId: r.container_id, cmd: r.cmd, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, tty: r.tty }) });
      },
      Attach: (call, done) => {
        calls.push({ rpc: 'Attach', request: call.request });
        const r = call.request;
        done(null, { url: urls.getAttachUrl({ containerId: r.container_id, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, tty: r.tty }) });
      },
      PortForward: (call, done) => {
        calls.push({ rpc: 'PortForward', request: call.request });
        if (call.request.pod_sandbox_id === 'nope') return done(notFound);
        done(null, { url: urls.getPortForwardUrl({ podSandboxId: call.request.pod_sandbox_id }) });
      },
    },
  });
});

after(async () => {
  await cri.close();
  await streaming.stop();
});

beforeEach(() => {
  calls = [];
  backend.removeAllListeners();
});

class FakeTerminal extends EventEmitter {
  isTTY = true;
  columns = 99;
  rows = 33;
  raw: boolean[] = [];
  setRawMode(raw: boolean): void {
    this.raw.push(raw);
  }
}

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs main() with captured output; `io` adds stdin, terminal, interrupt. */
async function run(argv: string[], io: Partial<CliIo> = {}, watch?: (stdout: () => string) => void): Promise<Run> {
  const out: Buffer[] = [];
  let stderr = '';
  const code = main(['-r', cri.endpoint, ...argv], {
    stdout: { write: (c: string | Uint8Array) => out.push(Buffer.from(c)) },
    stderr: { write: (c: string | Uint8Array) => (stderr += Buffer.from(c).toString()) },
    env: {},
    stdin: new PassThrough(),
    ...io,
  });
  watch?.(() => Buffer.concat(out).toString());
  return { code: await within(code, 20_000, argv.join(' ')), stdout: Buffer.concat(out), stderr };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('skiff exec -i sends stdin (its end too) and prints stdout and stderr exactly; the exit code is the command\'s', async () => {
  const stdin = new PassThrough();
  const input = randomBytes(1 << 20);
  stdin.end(input);
  const r = await run(['exec', '-i', CTR, 'echo'], { stdin });
  assert.equal(r.code, 3);
  assert.equal(r.stdout.length, input.length);
  assert.equal(sha(r.stdout), sha(input));
  assert.equal(r.stderr, `stderr: ${input.length} bytes\n`);
  assert.deepEqual(requests<v1.ExecRequest__Output>('Exec'), [{ container_id: CTR, cmd: ['echo'], tty: false, stdin: true, stdout: true, stderr: true }]);
});

test('skiff exec without -i leaves stdin alone and exits 0 on success; --transport websocket and -r are accepted', async () => {
  const stdin = new PassThrough();
  assert.deepEqual(await run(['exec', CTR, 'exit', '0'], { stdin }), { code: 0, stdout: Buffer.alloc(0), stderr: '' });
  assert.equal(stdin.readableFlowing, null, 'stdin was never read');
  assert.equal(requests<v1.ExecRequest__Output>('Exec')[0].stdin, false);
  assert.equal((await run(['exec', '--transport', 'websocket', CTR, 'exit', '7'])).code, 7);
  assert.equal((await run(['exec', '-r', 'websocket', '--', CTR, 'exit', '0'])).code, 0);
});

test('skiff exec -it: raw mode for the session, the size at the start and on resize, stdout only, exit code', async () => {
  const terminal = new FakeTerminal();
  const stdin = new PassThrough();
  const sizes: unknown[] = [];
  backend.on('resize', (size) => {
    sizes.push(size);
    if (sizes.length === 1) {
      assert.deepEqual(terminal.raw, [true], 'raw while the session runs');
      terminal.columns = 120;
      terminal.rows = 40;
      terminal.emit('resize');
    }
    if (sizes.length === 2) stdin.end('typed\r');
  });
  const r = await run(['exec', '-it', CTR, 'echo'], { stdin, terminal });
  assert.equal(r.code, 3);
  assert.equal(r.stdout.toString(), 'typed\r');
  assert.equal(r.stderr, '');
  assert.deepEqual(sizes, [
    { width: 99, height: 33 },
    { width: 120, height: 40 },
  ]);
  assert.deepEqual(terminal.raw, [true, false], 'the terminal is restored');
  assert.equal(terminal.listenerCount('resize'), 0);
  assert.deepEqual(requests<v1.ExecRequest__Output>('Exec')[0], { container_id: CTR, cmd: ['echo'], tty: true, stdin: true, stdout: true, stderr: false });
});

test('skiff exec -it: ctrl-p ctrl-q detaches, the remote command is released, exit 0', async () => {
  const terminal = new FakeTerminal();
  const stdin = new PassThrough();
  const released = once(backend, 'released');
  backend.once('exec', () => setImmediate(() => stdin.write(Buffer.from([0x10, 0x11]))));
  const r = await run(['exec', '-it', CTR, 'hang'], { stdin, terminal });
  assert.deepEqual(r, { code: 0, stdout: Buffer.alloc(0), stderr: '' });
  assert.deepEqual(await within(released, 5000, 'release'), [{ aborted: true, stdoutDestroyed: true }]);
  assert.deepEqual(terminal.raw, [true, false]);
});

test('skiff exec: the runtime\'s failure status exits 1 with its message', async () => {
  const r = await run(['exec', CTR, 'fail']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'skiff: Internal error occurred: error executing command in container: runc exec: container is paused\n');
});

test('skiff exec bad input: usage errors exit 2 before any rpc', async () => {
  const table: [string[], string][] = [
    [['exec', '--transport', 'spdy', CTR, 'ls'], "skiff: transport spdy is not supported: skiff's CLI speaks WebSocket (kubectl's default since 1.31); use --transport websocket or leave it out\n"],
    [['exec', '-r', 'quic', CTR, 'ls'], 'skiff: unknown transport "quic" (one of: websocket, spdy)\n'],
    [['exec', '-t', CTR, 'sh'], 'skiff: tty=true must be specified with interactive=true (-t needs -i)\n'],
    [['exec', '--tls-cert', '/x.pem', CTR, 'ls'], 'skiff: both flags --tls-cert and --tls-key are required for TLS streaming, only --tls-ca is optional\n'],
    [['exec', CTR], 'skiff: exec needs a command to run\n'],
    [['exec'], 'skiff: ID cannot be empty\n'],
  ];
  for (const [argv, message] of table) {
    const r = await run(argv);
    assert.deepEqual([r.code, r.stderr], [2, `${message}Run 'skiff --help' for usage.\n`], argv.join(' '));
  }
  const noTty = await run(['exec', '-it', CTR, 'sh']);
  assert.deepEqual([noTty.code, noTty.stderr], [1, 'skiff: input is not a terminal: -t needs a terminal on stdin\n'], 'a test stdin is no terminal');
  assert.equal(calls.length, 0);
});

test('an https streaming URL: not verified by default (crictl); with --tls-* flags the certificate must match --tls-sni', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-cli-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  } catch {
    t.skip('openssl is not available to make a certificate');
    return;
  }
  const tls = new StreamingServer(backend, { tls: { cert: readFileSync(cert), key: readFileSync(key) } });
  await tls.start();
  urls = tls;
  t.after(async () => {
    urls = streaming;
    await tls.stop();
  });
  assert.match(tls.url, /^https:/);
  assert.deepEqual(await run(['exec', CTR, 'exit', '4']), { code: 4, stdout: Buffer.alloc(0), stderr: '' });
  const flags = ['--tls-ca', cert, '--tls-cert', cert, '--tls-key', key];
  assert.equal((await run(['exec', ...flags, CTR, 'exit', '5'])).code, 5, '--tls-sni defaults to localhost');
  const wrong = await run(['exec', ...flags, '--tls-sni', 'other.example', CTR, 'exit', '0']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^skiff: connect to streaming server wss:\/\/127\.0\.0\.1:\d+\/exec\/…: Hostname\/IP does not match certificate's altnames: Host: other\.example\. is not in the cert's altnames: DNS:localhost\n$/);
  const missing = await run(['attach', '--tls-ca', cert, '--tls-cert', cert, '--tls-key', join(dir, 'nope.pem'), CTR]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^skiff: --tls-key .*nope\.pem: ENOENT/);
});

test('skiff attach -i: stdin to the container, its stdout and stderr back, exit 0', async () => {
  const stdin = new PassThrough();
  stdin.end('hello container\n');
  const r = await run(['attach', '-i', CTR], { stdin });
  assert.deepEqual([r.code, r.stdout.toString(), r.stderr], [0, 'hello container\n', 'stderr: 16 bytes\n']);
  assert.deepEqual(requests<v1.AttachRequest__Output>('Attach'), [{ container_id: CTR, stdin: true, tty: false, stdout: true, stderr: true }]);
  const bad: [string[], string][] = [
    [['attach'], 'skiff: ID cannot be empty\n'],
    [['attach', CTR, CTR], 'skiff: attach takes exactly one container ID\n'],
    [['attach', '--transport', 'spdy', CTR], "skiff: transport spdy is not supported: skiff's CLI speaks WebSocket (kubectl's default since 1.31); use --transport websocket or leave it out\n"],
    [['attach', '-t', CTR], 'skiff: tty=true must be specified with interactive=true (-t needs -i)\n'],
  ];
  for (const [argv, message] of bad) {
    const b = await run(argv);
    assert.deepEqual([b.code, b.stderr], [2, `${message}Run 'skiff --help' for usage.\n`], argv.join(' '));
  }
  assert.equal(requests('Attach').length, 1);
});

/** Starts `port-forward` and resolves once its Forwarding lines are out. */
async function startPortForward(args: string[], lines: number): Promise<{ abort: () => void; result: Promise<Run>; ports: number[]; stdout: () => string }> {
  const interrupt = new AbortController();
  let stdout: () => string = () => '';
  const result = run(['port-forward', ...args], { interrupt: interrupt.signal }, (s) => (stdout = s));
  for (let i = 0; i < 500 && (stdout().match(/^Forwarding from/gm) ?? []).length < lines; i++) {
    const early = await Promise.race([result, new Promise((r) => setTimeout(r, 10))]);
    if (early) throw new Error(`port-forward ended early: ${JSON.stringify(early)}`);
  }
  const ports = [...stdout().matchAll(/^Forwarding from 127\.0\.0\.1:(\d+) -> \d+$/gm)].map((m) => Number(m[1]));
  return { abort: () => interrupt.abort(), result, ports, stdout: () => stdout() };
}

async function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  const socket: Socket = connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  let size = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      size += d.length;
      if (size >= payload.length) resolve();
    });
    socket.once('error', reject);
  });
  socket.write(payload);
  await within(done, 10_000, 'echo');
  socket.destroy();
  return Buffer.concat(parts);
}

test('skiff port-forward POD :REMOTE LOCAL:REMOTE: Forwarding lines, 1 MB both ways on each, until interrupted', async () => {
  const echo = await listenEcho();
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const fixed = (busy.address() as AddressInfo).port;
  await new Promise((resolve) => busy.close(resolve));
  try {
    const pf = await startPortForward([POD, `:${echo.port}`, `${fixed}:${echo.port}`], 2);
    assert.equal(pf.ports.length, 2);
    assert.ok(pf.ports[0] > 0);
    assert.equal(pf.ports[1], fixed);
    const payload = randomBytes(1 << 20);
    const [a, b] = await Promise.all(pf.ports.map((p) => roundTrip(p, payload)));
    assert.equal(sha(a), sha(payload));
    assert.equal(sha(b), sha(payload));
    pf.abort();
    const r = await pf.result;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().split('\n');
    assert.deepEqual(lines.slice(0, 2), [`Forwarding from 127.0.0.1:${pf.ports[0]} -> ${echo.port}`, `Forwarding from 127.0.0.1:${fixed} -> ${echo.port}`]);
    // the two connections are handled in either order
    assert.deepEqual(lines.slice(2).sort(), ['', `Handling connection for ${pf.ports[0]}`, `Handling connection for ${fixed}`].sort());
    assert.deepEqual(
      requests<v1.PortForwardRequest__Output>('PortForward').map((q) => q.port),
      [[echo.port, echo.port], [echo.port], [echo.port]],
      'one PortForward up front for both, then one per connection',
    );
    // The listeners are gone.
    await assert.rejects(roundTrip(pf.ports[0], Buffer.from('x')), /ECONNREFUSED/);
  } finally {
    await echo.close();
  }
});

test('skiff port-forward to a port nobody serves: the error goes to stderr, the connection closes, forwarding goes on', async () => {
  const dead = await listenEcho();
  const port = dead.port;
  await dead.close();
  const pf = await startPortForward([POD, `:${port}`], 1);
  const socket = connect(pf.ports[0], '127.0.0.1');
  socket.resume();
  await within(once(socket, 'end'), 5000, 'local connection end');
  socket.destroy();
  pf.abort();
  const r = await pf.result;
  assert.equal(r.code, 0);
  assert.match(r.stderr, new RegExp(`^skiff: an error occurred forwarding ${pf.ports[0]} -> ${port}: error forwarding port ${port} to pod ${POD}, uid : connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\n$`));
});

test('skiff port-forward bad input: usage errors exit 2 before any rpc; an unknown pod or a busy port exits 1', async () => {
  const usage: [string[], string][] = [
    [['port-forward'], 'ID cannot be empty'],
    [['port-forward', POD], 'port-forward needs at least one [LOCAL_PORT:]REMOTE_PORT'],
    [['port-forward', POD, 'abc'], `error parsing local port 'abc' in "abc": not a port number (0-65535)`],
    [['port-forward', POD, '70000'], `error parsing local port '70000' in "70000": not a port number (0-65535)`],
    [['port-forward', POD, '8080:70000'], `error parsing remote port '70000' in "8080:70000": not a port number (1-65535)`],
    [['port-forward', POD, '8080:0'], `error parsing remote port '0' in "8080:0": not a port number (1-65535)`],
    [['port-forward', POD, '1:2:3'], 'invalid port format "1:2:3": want [LOCAL_PORT:]REMOTE_PORT'],
    [['port-forward', '--transport', 'spdy', POD, '80'], "transport spdy is not supported: skiff's CLI speaks WebSocket (kubectl's default since 1.31); use --transport websocket or leave it out"],
  ];
  for (const [argv, message] of usage) {
    const r = await run(argv);
    assert.deepEqual([r.code, r.stderr], [2, `skiff: ${message}\nRun 'skiff --help' for usage.\n`], argv.join(' '));
  }
  assert.equal(calls.length, 0);
  const unknown = await run(['port-forward', 'nope', '80']);
  assert.deepEqual([unknown.code, unknown.stderr], [1, 'skiff: PortForward failed: rpc error: code = NotFound desc = sandbox "nope" not found\n']);

  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as AddressInfo).port;
  try {
    const r = await run(['port-forward', POD, `${port}:80`]);
    assert.deepEqual([r.code, r.stderr], [1, `skiff: unable to listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`]);
  } finally {
    await new Promise((resolve) => busy.close(resolve));
  }
});

test('[LOCAL_PORT:]REMOTE_PORT mappings read as client-go reads them', () => {
  assert.deepEqual(parsePortMapping('8080'), { local: 8080, remote: 8080 });
  assert.deepEqual(parsePortMapping(':80'), { local: 0, remote: 80 });
  assert.deepEqual(parsePortMapping('0:80'), { local: 0, remote: 80 });
  assert.deepEqual(parsePortMapping('65535:1'), { local: 65535, remote: 1 });
  for (const bad of ['', ':', '0', '-1:80', '80:', '1e3', ' 80', '080000']) assert.throws(() => parsePortMapping(bad), /not a port number/, bad);
});

test('skiff help lists attach and port-forward; exec --help shows the streaming flags', async () => {
  const help = (await run(['help'])).stdout.toString();
  assert.match(help, /^ {3}attach +Attach to a running container$/m);
  assert.match(help, /^ {3}port-forward +Forward local port to a pod$/m);
  assert.match(help, /^ {3}exec +Run a command in a running container$/m);
  const exec = (await run(['exec', '--help'])).stdout.toString();
  for (const flag of ['--interactive, -i', '--tty, -t', '--transport TRANSPORT, -r TRANSPORT', '--tls-ca FILE', '--sync, -s']) assert.ok(exec.includes(flag), flag);
  const pf = (await run(['port-forward', '-h'])).stdout.toString();
  assert.match(pf, /skiff port-forward \[command options\] POD-ID \[LOCAL_PORT:\]REMOTE_PORT\.\.\./);
});
