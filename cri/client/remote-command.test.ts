// The exec/attach WebSocket client against the real StreamingServer and its fake backend: bytes
// exact both ways, stdin's end through v5's close signal, resize frames, backpressure on a slow
// stdout, exit codes from the status, detach, a refused upgrade; and v4 against a v4-only server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { startServer } from '../streaming/fake-backend.js';
import { V4_CHANNEL } from '../streaming/ws/channel.js';
import { RemoteCommandSession as ServerSession } from '../streaming/ws/remotecommand.js';
import { acceptChannelWebSocket } from '../streaming/ws/upgrade.js';
import { listenUpgrades, within } from '../streaming/ws/loopback-fixture.js';
import { exitCodeOf, openRemoteCommand, RemoteCommandError } from './remote-command.js';

const EXEC = { containerId: 'c1', stdin: true, stdout: true, stderr: true, tty: false };

/** A Writable that keeps what it is given. */
function sink(options: { highWaterMark?: number; slow?: boolean } = {}): Writable & { bytes(): Buffer; maxBuffered: number } {
  const parts: Buffer[] = [];
  const w = new Writable({
    highWaterMark: options.highWaterMark ?? 16 << 10,
    write(chunk: Buffer, _enc, done) {
      parts.push(chunk);
      s.maxBuffered = Math.max(s.maxBuffered, w.writableLength);
      if (options.slow) setTimeout(done, 1);
      else done();
    },
  });
  const s = Object.assign(w, { bytes: () => Buffer.concat(parts), maxBuffered: 0 });
  return s;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('exec over v5: 1 MB of stdin comes back on stdout exactly, stderr apart, stdin EOF ends the command, exit code 3', async (t) => {
  const { server, backend } = await startServer(t);
  const seen = once(backend, 'exec');
  const stdin = new PassThrough();
  const stdout = sink();
  const stderr = sink();
  const session = await openRemoteCommand(server.getExecUrl({ ...EXEC, cmd: ['echo'] }), { stdin, stdout, stderr });
  assert.equal(session.protocol, 'v5.channel.k8s.io');
  const input = randomBytes(1 << 20);
  stdin.end(input);
  const result = await within(session.done, 10_000, 'exec');
  assert.deepEqual(result, { exitCode: 3, detached: false });
  assert.equal(sha(stdout.bytes()), sha(input));
  assert.equal(stdout.bytes().length, input.length);
  assert.equal(stderr.bytes().toString(), `stderr: ${input.length} bytes\n`);
  assert.deepEqual((await seen)[0], { ...EXEC, cmd: ['echo'] });
});

test('a slow stdout holds the socket back instead of buffering the whole output', async (t) => {
  const { server } = await startServer(t);
  const stdin = new PassThrough();
  const stdout = sink({ slow: true, highWaterMark: 16 << 10 });
  const session = await openRemoteCommand(server.getExecUrl({ ...EXEC, cmd: ['echo'], stderr: false }), { stdin, stdout });
  const input = randomBytes(2 << 20);
  stdin.end(input);
  assert.equal((await within(session.done, 30_000, 'exec')).exitCode, 3);
  assert.equal(sha(stdout.bytes()), sha(input));
  assert.ok(stdout.maxBuffered < 512 << 10, `stdout held ${stdout.maxBuffered} bytes at most`);
});

test('resize frames reach the backend as sent, in order', async (t) => {
  const { server, backend } = await startServer(t);
  const sizes: unknown[] = [];
  backend.on('resize', (size) => sizes.push(size));
  const stdin = new PassThrough();
  const stdout = sink();
  const session = await openRemoteCommand(server.getExecUrl({ ...EXEC, cmd: ['echo'], stderr: false, tty: true }), { stdin, stdout });
  session.resize({ width: 99, height: 33 });
  session.resize({ width: 120, height: 40 });
  stdin.end('typed\r');
  assert.equal((await within(session.done, 5000, 'exec')).exitCode, 3);
  assert.deepEqual(sizes, [
    { width: 99, height: 33 },
    { width: 120, height: 40 },
  ]);
  assert.equal(stdout.bytes().toString(), 'typed\r');
});

test('exit codes: Success is 0, NonZeroExitCode is its code, a runtime failure rejects with its message', async (t) => {
  const { server } = await startServer(t);
  const run = async (cmd: string[]): Promise<number> => {
    const session = await openRemoteCommand(server.getExecUrl({ ...EXEC, stdin: false, cmd }), { stdout: sink(), stderr: sink() });
    return (await within(session.done, 5000, cmd.join(' '))).exitCode;
  };
  assert.equal(await run(['exit', '0']), 0);
  assert.equal(await run(['exit', '42']), 42);
  await assert.rejects(run(['fail']), (err: unknown) => {
    assert.ok(err instanceof RemoteCommandError);
    assert.equal(err.message, 'Internal error occurred: error executing command in container: runc exec: container is paused');
    return true;
  });
});

test('attach: stdin echoed, status Success → 0', async (t) => {
  const { server } = await startServer(t);
  const stdin = new PassThrough();
  const stdout = sink();
  const stderr = sink();
  const session = await openRemoteCommand(server.getAttachUrl(EXEC), { stdin, stdout, stderr });
  stdin.end('attached\n');
  assert.deepEqual(await within(session.done, 5000, 'attach'), { exitCode: 0, detached: false });
  assert.equal(stdout.bytes().toString(), 'attached\n');
  assert.equal(stderr.bytes().toString(), 'stderr: 9 bytes\n');
});

test('detach closes the connection: the backend is released and done resolves as detached', async (t) => {
  const { server, backend } = await startServer(t);
  const started = once(backend, 'exec');
  const released = once(backend, 'released');
  const session = await openRemoteCommand(server.getExecUrl({ ...EXEC, stdin: false, cmd: ['hang'] }), { stdout: sink() });
  await within(started, 5000, 'exec start');
  session.detach();
  assert.deepEqual(await within(session.done, 5000, 'detach'), { exitCode: 0, detached: true });
  assert.deepEqual(await within(released, 5000, 'release'), [{ aborted: true, stdoutDestroyed: true }]);
});

test('a used URL is refused with the server\'s 404 message', async (t) => {
  const { server } = await startServer(t);
  const url = server.getExecUrl({ ...EXEC, stdin: false, cmd: ['exit', '0'] });
  const first = await openRemoteCommand(url, { stdout: sink() });
  await first.done;
  await assert.rejects(
    openRemoteCommand(url, { stdout: sink() }),
    /^Error: streaming server ws:\/\/127\.0\.0\.1:\d+\/exec\/… refused the upgrade: 404 Not Found: 404 page not found: exec token is unknown, expired or already used; ask the runtime for a new URL$/,
  );
});

test('against a v4-only server: v4 is negotiated, stdin goes through, the status carries the exit code', async (t) => {
  const received: Buffer[] = [];
  const server = await listenUpgrades(async (req, socket, head) => {
    const accepted = await acceptChannelWebSocket(req, socket, head, [V4_CHANNEL]);
    if (!accepted) return;
    const session = new ServerSession(accepted.ws, accepted.protocol, { stdin: true, stdout: true, stderr: false, tty: false });
    // Over v4 stdin never ends: the "command" exits once it has read 5 bytes.
    session.stdin?.on('data', (d: Buffer) => {
      received.push(d);
      if (Buffer.concat(received).length >= 5) {
        session.stdout?.write('read 5\n');
        void session.finish({ exitCode: 7 });
      }
    });
  });
  t.after(() => server.close());
  const stdout = sink();
  const stdin = new PassThrough();
  const session = await openRemoteCommand(server.url('/exec/x', 'http'), { stdin, stdout });
  assert.equal(session.protocol, 'v4.channel.k8s.io');
  stdin.end('hello');
  assert.deepEqual(await within(session.done, 5000, 'v4 exec'), { exitCode: 7, detached: false });
  assert.equal(stdout.bytes().toString(), 'read 5\n');
  assert.equal(Buffer.concat(received).toString(), 'hello');
});

test('exitCodeOf reads statuses as client-go does', () => {
  const failure = (reason: string, causes: unknown[]): string => JSON.stringify({ status: 'Failure', message: 'm', reason, details: { causes } });
  assert.equal(exitCodeOf('{"metadata":{},"status":"Success"}'), 0);
  assert.equal(exitCodeOf(failure('NonZeroExitCode', [{ reason: 'ExitCode', message: '255' }])), 255);
  const table: [string, RegExp][] = [
    ['not json', /^error stream protocol error: .* in "not json"$/],
    ['{"status":"Weird"}', /^error stream protocol error: unknown error$/],
    [failure('InternalError', []), /^m$/],
    [failure('NonZeroExitCode', []), /^error stream protocol error: no ExitCode cause given$/],
    [failure('NonZeroExitCode', [{ reason: 'ExitCode', message: '256' }]), /^error stream protocol error: invalid exit code value "256"$/],
    [failure('NonZeroExitCode', [{ reason: 'ExitCode', message: '-1' }]), /invalid exit code value "-1"/],
  ];
  for (const [text, message] of table) assert.throws(() => exitCodeOf(text), (e: unknown) => e instanceof RemoteCommandError && message.test(e.message), text);
});
