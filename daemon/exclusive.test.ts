import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimSocket, lockDir } from './exclusive.js';
import { isSkiffError } from '../common/errors.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-excl-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a locked root refuses a second holder until released', () =>
  withDir(async (dir) => {
    const first = await lockDir(dir, 'root');
    await assert.rejects(lockDir(dir, 'root'), (err: unknown) => isSkiffError(err, 'SKIFF_ALREADY_RUNNING') && /another skiffd is using root/.test(err.message));
    first.release();
    const again = await lockDir(dir, 'root');
    again.release();
  }));

test('claimSocket refuses a socket a live server answers on', () =>
  withDir(async (dir) => {
    const path = join(dir, 's.sock');
    const server: Server = createServer((c) => c.end());
    await new Promise<void>((r) => server.listen(path, r));
    try {
      await assert.rejects(claimSocket(path), /another skiffd is already serving/);
      assert.ok((await stat(path)).isSocket(), 'the live socket is left alone');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }));

test('claimSocket replaces a stale socket left by a crashed daemon', () =>
  withDir(async (dir) => {
    const path = join(dir, 's.sock');
    // A crashed daemon: a process that listened on the socket and was SIGKILLed.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok((await stat(path)).isSocket());
    assert.equal(await claimSocket(path), 'replaced-stale');
    await assert.rejects(stat(path), /ENOENT/);
    assert.equal(await claimSocket(path), 'fresh');
  }));
