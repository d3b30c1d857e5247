// skiff logs against a fake CRI server whose ContainerStatus names a log file the test writes:
// streams, reassembly, --tail, --since, --timestamps, --previous, and -f following a file that
// grows, is rotated, and stops when the container exits.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { main } from './main.js';
import { startFakeCri, type FakeCri } from '../client/fake-server.js';
import type * as v1 from '../gen/v1.js';

const ID = 'c'.repeat(64);

let server: FakeCri;
let workdir: string;
let logPath: string;
let state: v1.ContainerState__Output = 'CONTAINER_RUNNING';
let attempt = 1;
let statusCalls = 0;

before(async () => {
  workdir = await mkdtemp(join(tmpdir(), 'skiff-cli-logs-'));
  server = await startFakeCri({
    runtime: {
      ContainerStatus: (call, done) => {
        statusCalls++;
        if (call.request.container_id === 'nolog') return done(null, { status: { id: 'nolog', state: 'CONTAINER_RUNNING', log_path: '' } });
        if (call.request.container_id !== ID) return done({ code: grpc.status.NOT_FOUND, details: `container "${call.request.container_id}" not found` });
        done(null, { status: { id: ID, metadata: { name: 'app', attempt }, state, log_path: logPath } });
      },
    },
  });
});

after(async () => {
  await server.close();
  await rm(workdir, { recursive: true, force: true });
});

beforeEach(async () => {
  attempt = 1;
  logPath = join(await mkdtemp(join(workdir, 'ctr-')), `${attempt}.log`);
  state = 'CONTAINER_RUNNING';
  statusCalls = 0;
});

interface Running {
  stdout: () => string;
  stderr: () => string;
  done: Promise<number>;
}

function start(...argv: string[]): Running {
  let stdout = '';
  let stderr = '';
  const done = main(['-r', server.endpoint, ...argv], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
  });
  return { stdout: () => stdout, stderr: () => stderr, done };
}

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = start(...argv);
  const code = await r.done;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const record = (time: string, stream: 'stdout' | 'stderr', tag: 'P' | 'F', content: string): string => `${time} ${stream} ${tag} ${content}\n`;

void test('skiff logs writes stdout lines to stdout and stderr lines to stderr, partial records joined', async () => {
  const long = 'y'.repeat(40 * 1024);
  await writeFile(
    logPath,
    record('2024-01-01T00:00:00.1Z', 'stdout', 'F', 'hello') +
      record('2024-01-01T00:00:01Z', 'stderr', 'F', 'warning: x') +
      record('2024-01-01T00:00:02Z', 'stdout', 'P', long.slice(0, 16384)) +
      record('2024-01-01T00:00:02Z', 'stdout', 'P', long.slice(16384, 32768)) +
      record('2024-01-01T00:00:03Z', 'stdout', 'F', long.slice(32768)) +
      record('2024-01-01T00:00:04Z', 'stdout', 'F', ''),
  );
  const r = await run('logs', ID);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `hello\n${long}\n\n`);
  assert.equal(r.stderr, 'warning: x\n');
  assert.equal(statusCalls, 1, 'without -f the status is asked once');
});

void test('skiff logs --tail, --since and --timestamps select and stamp whole lines', async () => {
  await writeFile(
    logPath,
    record('2024-01-01T00:00:00.1Z', 'stdout', 'F', 'one') +
      record('2024-01-01T00:00:01Z', 'stdout', 'P', 'tw') +
      record('2024-01-01T00:00:01.5Z', 'stdout', 'F', 'o') +
      record('2024-01-01T00:00:02+01:00', 'stderr', 'F', 'three'),
  );
  assert.equal((await run('logs', '--tail', '2', ID)).stdout, 'two\n');
  assert.equal((await run('logs', '--tail', '2', ID)).stderr, 'three\n');
  assert.equal((await run('logs', '--tail', '0', ID)).stdout, '');
  assert.equal((await run('logs', '--tail=-1', ID)).stdout, 'one\ntwo\n');
  const since = await run('logs', '--since', '2024-01-01T00:00:00.5Z', '-t', ID);
  assert.equal(since.stdout, '2024-01-01T00:00:01.000000000Z two\n');
  assert.equal(since.stderr, '', 'three is at 23:00:02 the day before');
  assert.equal((await run('logs', '--since', '1m', ID)).stdout, '', 'everything is older than a minute');
  for (const argv of [['logs', '--tail', 'all', ID], ['logs', '--since', 'last tuesday', ID], ['logs'], ['logs', ID, 'extra']]) {
    const r = await run(...argv);
    assert.equal(r.code, 2, argv.join(' '));
  }
});

void test('skiff logs -p reads the previous attempt\'s file, and fails for a first attempt', async () => {
  attempt = 3;
  const dir = join(workdir, 'previous');
  await mkdir(dir, { recursive: true });
  logPath = join(dir, '3.log');
  await writeFile(logPath, record('2024-01-01T00:00:00Z', 'stdout', 'F', 'current'));
  await writeFile(join(dir, '2.log'), record('2024-01-01T00:00:00Z', 'stdout', 'F', 'before the restart'));
  assert.equal((await run('logs', '-p', ID)).stdout, 'before the restart\n');
  attempt = 0;
  const first = await run('logs', '--previous', ID);
  assert.equal(first.code, 1);
  assert.equal(first.stderr, 'skiff: previous terminated container app not found\n');
});

void test('skiff logs fails on an unknown container, a container without a log path, and a missing file', async () => {
  const unknown = await run('logs', 'nope');
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, 'skiff: ContainerStatus failed: rpc error: code = NotFound desc = container "nope" not found\n');
  const nolog = await run('logs', 'nolog');
  assert.equal(nolog.stderr, 'skiff: the container has not set log path\n');
  const missing = await run('logs', ID);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^skiff: failed to open log file ".*1\.log": no such file or directory\n$/);
});

void test('skiff logs -f follows appends and a rotation until the container exits', async () => {
  await writeFile(logPath, record('2024-01-01T00:00:00Z', 'stdout', 'F', 'old') + record('2024-01-01T00:00:01Z', 'stdout', 'F', 'before'));
  const r = start('logs', '-f', '--tail', '1', ID);
  await until('the tail', () => r.stdout() === 'before\n');

  // A record written in two pieces, and a line split into P and F records written apart.
  const split = record('2024-01-01T00:00:02Z', 'stderr', 'F', 'to stderr');
  await appendFile(logPath, split.slice(0, 25));
  await appendFile(logPath, split.slice(25) + record('2024-01-01T00:00:03Z', 'stdout', 'P', 'half '));
  await until('the stderr line', () => r.stderr() === 'to stderr\n');
  await appendFile(logPath, record('2024-01-01T00:00:04Z', 'stdout', 'F', 'and half'));
  await until('the joined line', () => r.stdout() === 'before\nhalf and half\n');

  // Rotation as after ReopenContainerLog: the last write to the old file, a rename, a new file.
  await appendFile(logPath, record('2024-01-01T00:00:05Z', 'stdout', 'F', 'last in the old file'));
  await rename(logPath, `${logPath}.20240101-000005`);
  await writeFile(logPath, record('2024-01-01T00:00:06Z', 'stdout', 'F', 'first in the new file'));
  await until('the new file', () => r.stdout().endsWith('last in the old file\nfirst in the new file\n'));

  // The container exits after one more line; that line is still printed, then logs ends.
  state = 'CONTAINER_EXITED';
  await appendFile(logPath, record('2024-01-01T00:00:07Z', 'stdout', 'F', 'bye'));
  const started = Date.now();
  assert.equal(await r.done, 0, r.stderr());
  assert.ok(Date.now() - started < 1500, 'logs -f notices the exit within its check period');
  assert.equal(r.stdout(), 'before\nhalf and half\nlast in the old file\nfirst in the new file\nbye\n');
  assert.equal(r.stderr(), 'to stderr\n');
});

void test('skiff logs -f on a container that is not running prints what there is and ends', async () => {
  state = 'CONTAINER_EXITED';
  await writeFile(logPath, record('2024-01-01T00:00:00Z', 'stdout', 'F', 'done'));
  const started = Date.now();
  const r = await run('logs', '-f', ID);
  assert.deepEqual(r, { code: 0, stdout: 'done\n', stderr: '' });
  assert.ok(Date.now() - started < 500, 'no waiting for a stopped container');
});

void test('skiff logs -f reads a file truncated in place (copytruncate) from its start', async () => {
  await writeFile(logPath, record('2024-01-01T00:00:00Z', 'stdout', 'F', 'a fairly long first line before truncation'));
  const r = start('logs', '-f', ID);
  await until('the first line', () => r.stdout() !== '');
  await writeFile(logPath, record('2024-01-01T00:00:01Z', 'stdout', 'F', 'after'));
  await until('the line after truncation', () => r.stdout().endsWith('after\n'));
  state = 'CONTAINER_EXITED';
  await appendFile(logPath, record('2024-01-01T00:00:02Z', 'stdout', 'F', 'end'));
  assert.equal(await r.done, 0);
  assert.equal(r.stdout(), 'a fairly long first line before truncation\nafter\nend\n');
});
