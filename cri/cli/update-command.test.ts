// `skiff update` against a fake CRI server that records the UpdateContainerResources it is sent.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startFakeCri, type FakeCri } from '../client/fake-server.js';
import type * as v1 from '../gen/v1.js';
import { runMain } from './cli-harness.test-helper.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
let server: FakeCri;
let sent: v1.UpdateContainerResourcesRequest__Output[] = [];

before(async () => {
  server = await startFakeCri({
    runtime: {
      UpdateContainerResources: (call, done) => {
        sent.push(call.request);
        if (![A, B].includes(call.request.container_id)) return done({ code: grpc.status.NOT_FOUND, details: `container "${call.request.container_id}" not found` });
        done(null, {});
      },
    },
  });
});
after(() => server.close());
beforeEach(() => {
  sent = [];
});

test('update sends crictl\'s Linux resources for each container and prints each id', async () => {
  const r = await runMain(server.endpoint, [
    'update', '--cpu-period', '100000', '--cpu-quota', '20000', '--cpu-share', '512', '--memory', '67108864',
    '--cpuset-cpus', '0-1', '--cpuset-mems', '0', '--oom-score-adj', '100', A, B,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${A}\n${B}\n`);
  assert.deepEqual(sent.map((s) => s.container_id), [A, B]);
  const linux = sent[0].linux!;
  assert.deepEqual(
    [linux.cpu_period, linux.cpu_quota, linux.cpu_shares, linux.memory_limit_in_bytes, linux.cpuset_cpus, linux.cpuset_mems, linux.oom_score_adj],
    ['100000', '20000', '512', '67108864', '0-1', '0', '100'],
  );
  assert.equal(sent[0].windows, null, 'Linux resources only, as crictl sends on Linux');
});

test('flags left out are sent as 0 (unchanged); the Windows-only ones are not sent', async () => {
  const r = await runMain(server.endpoint, ['update', '--memory', '1000000000', '--cpu-count', '2', A]);
  assert.equal(r.code, 0, r.stderr);
  const linux = sent[0].linux!;
  assert.deepEqual([linux.cpu_quota, linux.cpu_period, linux.cpu_shares, linux.memory_limit_in_bytes], ['0', '0', '0', '1000000000']);
});

test('update refuses bad flag values and a missing id before sending anything', async () => {
  for (const [argv, want] of [
    [['update'], /ID cannot be empty/],
    [['update', '--memory', '1g', A], /invalid value "1g" for flag -memory/],
    [['update', '--cpu-quota', '99999999999999999999', A], /invalid value .* for flag -cpu-quota/],
    [['update', '--memory-swap', '1', A], /flag provided but not defined: --memory-swap/],
  ] as const) {
    const r = await runMain(server.endpoint, [...argv]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, want);
  }
  assert.equal(sent.length, 0);
});

test('update of an unknown container fails with the server\'s words', async () => {
  const r = await runMain(server.endpoint, ['update', '--memory', '67108864', 'c'.repeat(64)]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /not found/);
});
