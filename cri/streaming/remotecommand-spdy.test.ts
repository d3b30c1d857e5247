// exec and attach over SPDY, driven by spdy-transport the way kubectl drives kubelet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readAll, spdyDial, startServer } from './fake-backend.js';
import { stOpen, type StConnection, type StStream } from './spdy/peer.js';
import { within } from './ws/loopback-fixture.js';

/**
 * A kubectl-style stream whose output is collected from the start: the server closes the connection
 * once every stream is finished, and spdy-transport drops what nobody read when the socket closes.
 * For the same reason the tests leave the client's halves of the output streams open, as kubectl
 * leaves stdout and stderr: spdy-transport inflates headers asynchronously and loses frames that
 * arrive just before the server's FIN.
 */
async function open(conn: StConnection, streamtype: string): Promise<StStream & { body: Promise<Buffer> }> {
  const stream = await stOpen(conn, { streamtype });
  const body = readAll(stream);
  body.catch(() => undefined);
  return Object.assign(stream, { body });
}

const EXEC = { containerId: 'c1', stdin: true, stdout: true, stderr: true, tty: false };

test('v4 exec: stdout is stdin exactly, stderr separate, status JSON with exit code 3', async (t) => {
  const { server } = await startServer(t);
  const { conn, protocol } = await spdyDial(t, server.getExecUrl({ ...EXEC, cmd: ['echo'] }), ['v4.channel.k8s.io', 'v3.channel.k8s.io']);
  assert.equal(protocol, 'v4.channel.k8s.io');
  const error = await open(conn, 'error');
  const stdin = await open(conn, 'stdin');
  const stdout = await open(conn, 'stdout');
  const stderr = await open(conn, 'stderr');
  const input = Buffer.from('hello\x00world\n\xff', 'latin1');
  stdin.end(input);
  const [out, err, status] = await within(Promise.all([stdout.body, stderr.body, error.body]), 5000, 'exec output');
  assert.deepEqual(out, input);
  assert.equal(err.toString(), `stderr: ${input.length} bytes\n`);
  assert.deepEqual(JSON.parse(status.toString()), {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: exit status 3',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '3' }] },
  });
});

test('v4 exec that exits 0 writes a Success status', async (t) => {
  const { server } = await startServer(t);
  const { conn } = await spdyDial(t, server.getExecUrl({ ...EXEC, stdin: false, stderr: false, cmd: ['exit', '0'] }), ['v4.channel.k8s.io']);
  const error = await open(conn, 'error');
  const stdout = await open(conn, 'stdout');
  const [out, status] = await within(Promise.all([stdout.body, error.body]), 5000, 'exec status');
  assert.equal(out.length, 0);
  assert.deepEqual(JSON.parse(status.toString()), { metadata: {}, status: 'Success' });
});

test('v2 exec writes the failure as plain text, and nothing on success', async (t) => {
  const { server } = await startServer(t);
  for (const [code, want] of [['3', 'command terminated with non-zero exit code: exit status 3'], ['0', '']] as const) {
    const { conn, protocol } = await spdyDial(t, server.getExecUrl({ ...EXEC, stdin: false, stderr: false, cmd: ['exit', code] }), ['v2.channel.k8s.io']);
    assert.equal(protocol, 'v2.channel.k8s.io');
    const error = await open(conn, 'error');
    const stdout = await open(conn, 'stdout');
    const [, status] = await within(Promise.all([stdout.body, error.body]), 5000, 'exec status');
    assert.equal(status.toString(), want);
  }
});

test('v1 (channel.k8s.io, the oldest clients) exec: output, and the failure as plain text', async (t) => {
  const { server } = await startServer(t);
  const { conn, protocol } = await spdyDial(t, server.getExecUrl({ ...EXEC, stderr: false, cmd: ['echo'] }), ['channel.k8s.io']);
  assert.equal(protocol, 'channel.k8s.io');
  const error = await open(conn, 'error');
  const stdin = await open(conn, 'stdin');
  const stdout = await open(conn, 'stdout');
  stdin.end('old client\n');
  const [out, status] = await within(Promise.all([stdout.body, error.body]), 5000, 'exec output');
  assert.equal(out.toString(), 'old client\n');
  assert.equal(status.toString(), 'command terminated with non-zero exit code: exit status 3');
});

test('v3 tty exec: a resize stream is expected and its sizes reach the backend', async (t) => {
  const { server, backend } = await startServer(t);
  const url = server.getExecUrl({ containerId: 'c1', cmd: ['echo'], stdin: true, stdout: true, stderr: false, tty: true });
  const { conn, protocol } = await spdyDial(t, url, ['v3.channel.k8s.io']);
  assert.equal(protocol, 'v3.channel.k8s.io');
  const error = await open(conn, 'error');
  const stdin = await open(conn, 'stdin');
  const stdout = await open(conn, 'stdout');
  const resize = await open(conn, 'resize');
  const sizes = once(backend, 'resize');
  resize.write('{"Width":132,"Height":43}');
  assert.deepEqual(await within(sizes, 5000, 'resize'), [{ width: 132, height: 43 }]);
  stdin.end('x\n');
  const [out, status] = await within(Promise.all([stdout.body, error.body]), 5000, 'exec output');
  assert.equal(out.toString(), 'x\n');
  assert.equal(status.toString(), 'command terminated with non-zero exit code: exit status 3');
});

test('a runtime failure is an InternalError status naming the cause', async (t) => {
  const { server } = await startServer(t);
  const { conn } = await spdyDial(t, server.getExecUrl({ ...EXEC, stdin: false, stderr: false, cmd: ['fail'] }), ['v4.channel.k8s.io']);
  const error = await open(conn, 'error');
  const stdout = await open(conn, 'stdout');
  const [, status] = await within(Promise.all([stdout.body, error.body]), 5000, 'exec status');
  const s = JSON.parse(status.toString()) as { reason: string; code: number; message: string };
  assert.equal(s.reason, 'InternalError');
  assert.equal(s.code, 500);
  assert.equal(s.message, 'Internal error occurred: error executing command in container: runc exec: container is paused');
});

test('v4 tty exec: the resize stream reaches the backend', async (t) => {
  const { server, backend } = await startServer(t);
  const url = server.getExecUrl({ containerId: 'c1', cmd: ['echo'], stdin: true, stdout: true, stderr: false, tty: true });
  const { conn } = await spdyDial(t, url, ['v4.channel.k8s.io']);
  const error = await open(conn, 'error');
  const stdin = await open(conn, 'stdin');
  const stdout = await open(conn, 'stdout');
  const resize = await open(conn, 'resize');
  const sizes = once(backend, 'resize');
  resize.write('{"Width":80,"Height":24}');
  assert.deepEqual(await within(sizes, 5000, 'resize'), [{ width: 80, height: 24 }]);
  stdin.end('ls\n');
  resize.end();
  const [out, status] = await within(Promise.all([stdout.body, error.body]), 5000, 'exec output');
  assert.equal(out.toString(), 'ls\n');
  assert.equal((JSON.parse(status.toString()) as { reason: string }).reason, 'NonZeroExitCode');
});

test('attach over SPDY echoes stdin and reports Success', async (t) => {
  const { server } = await startServer(t);
  const { conn } = await spdyDial(t, server.getAttachUrl({ containerId: 'c1', stdin: true, stdout: true, stderr: false, tty: false }), ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  const error = await open(conn, 'error');
  const stdin = await open(conn, 'stdin');
  const stdout = await open(conn, 'stdout');
  stdin.end('attached');
  const [out, status] = await within(Promise.all([stdout.body, error.body]), 5000, 'attach output');
  assert.equal(out.toString(), 'attached');
  assert.deepEqual(JSON.parse(status.toString()), { metadata: {}, status: 'Success' });
});

test('a client that never opens its streams is dropped after the stream creation timeout', async (t) => {
  const { server, backend } = await startServer(t, { streamCreationTimeoutMs: 200 });
  const { conn, socket } = await spdyDial(t, server.getExecUrl({ ...EXEC, cmd: ['echo'] }), ['v4.channel.k8s.io']);
  await open(conn, 'error');
  await within(once(socket, 'close'), 5000, 'server closing the connection');
  assert.equal(backend.execs, 0);
});

test('a client that vanishes mid-exec aborts the command and destroys its output streams', async (t) => {
  const { server, backend } = await startServer(t);
  const { conn, socket } = await spdyDial(t, server.getExecUrl({ ...EXEC, stdin: false, stderr: false, cmd: ['hang'] }), ['v4.channel.k8s.io']);
  const started = once(backend, 'exec');
  await open(conn, 'error');
  await open(conn, 'stdout');
  await within(started, 5000, 'exec start');
  const released = once(backend, 'released');
  socket.destroy();
  assert.deepEqual(await within(released, 5000, 'backend release'), [{ aborted: true, stdoutDestroyed: true }]);
});
