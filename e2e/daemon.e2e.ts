// e2e: skiffd's life as an operator sees it — Version/Status/RuntimeConfig through the CLI,
// UNIMPLEMENTED with a message for rpcs later issues bring, clean shutdown on SIGTERM, refusal of
// a second daemon on the same root or socket, and recovery from a crash's stale socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { spawn } from 'node:child_process';
import { access, stat } from 'node:fs/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { SKIFFD, TestDaemon } from './harness/daemon.js';

function runSkiffd(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SKIFFD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('skiffd lifecycle', () => {
  let d: TestDaemon;

  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d?.cleanup();
  });

  test('skiff version reports the runtime as crictl prints it', async () => {
    const r = await d.cli(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Version:\s+0\.1\.0$/m);
    assert.match(r.stdout, /^RuntimeName:\s+skiff$/m);
    assert.match(r.stdout, /^RuntimeVersion:\s+\d+\.\d+\.\d+$/m);
    assert.match(r.stdout, /^RuntimeApiVersion:\s+v1$/m);
  });

  test('skiff info shows the conditions and the effective config', async () => {
    const r = await d.cli(['info']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { status: { conditions: { type: string; status: boolean }[] }; config: { root: string } };
    const byType = Object.fromEntries(info.status.conditions.map((c) => [c.type, c.status]));
    assert.equal(byType.RuntimeReady, true);
    assert.equal(byType.NetworkReady, true, 'the built-in network is set up');
    const link = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', d.bridge]).toString()) as { flags: string[] }[];
    assert.ok(link[0]?.flags.includes('UP'), `bridge ${d.bridge} is up`);
    assert.equal(info.config.root, d.root);
  });

  test('RuntimeConfig reports the cgroup driver', async () => {
    const r = await d.client.runtimeConfig({});
    assert.equal(r.linux?.cgroup_driver, 'CGROUPFS');
  });

  test('an rpc a later issue implements answers UNIMPLEMENTED with a message', async () => {
    await assert.rejects(d.client.checkpointContainer({ container_id: 'a'.repeat(64), location: '/tmp/x.tar' }), (err: unknown) => {
      const e = err as ServiceError;
      assert.equal(e.code, GrpcStatus.UNIMPLEMENTED);
      assert.match(e.details, /RuntimeService\.CheckpointContainer is not implemented by skiff yet/);
      return true;
    });
  });

  test('a second skiffd on the same root refuses to start and names it', async () => {
    const r = await runSkiffd(['--root', d.root, '--state', d.state + '-other', '--socket', d.socket + '-other']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`another skiffd is using root ${d.root}`));
    assert.equal((await d.client.version()).runtime_name, 'skiff', 'the first daemon is untouched');
  });

  test('a second skiffd on the same socket refuses to start', async () => {
    const r = await runSkiffd(['--root', d.root + '-other', '--state', d.state + '-other2', '--socket', d.socket]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /another skiffd is already serving/);
    assert.ok((await stat(d.socket)).isSocket());
  });

  test('a bad config file is refused with the key named', async () => {
    const r = await runSkiffd(['--config', '/dev/null', '--log-level', 'chatty']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--log-level: must be one of/);
  });

  test('SIGTERM shuts down cleanly and removes the socket; a crash leaves a socket the next start replaces', async () => {
    assert.equal(await d.stop(), 0, 'exit code 0 on SIGTERM');
    await assert.rejects(access(d.socket), /ENOENT/);
    await d.launch();
    await d.kill();
    assert.ok((await stat(d.socket)).isSocket(), 'SIGKILL leaves the socket file');
    await d.launch();
    assert.equal((await d.client.version()).runtime_name, 'skiff');
    assert.match(await d.log(), /replaced a stale socket/);
  });
});
