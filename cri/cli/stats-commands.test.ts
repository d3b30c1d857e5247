// stats and statsp against a fake CRI server whose counters advance between calls.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startFakeCri, type FakeCri } from '../client/fake-server.js';
import type * as v1 from '../gen/v1.js';
import { runMain, type CliRun } from './cli-harness.test-helper.js';

const C_RUN = 'c1'.repeat(32);
const C_EXITED = 'c2'.repeat(32);
const POD = 'ab'.repeat(32);
const MiB = 1 << 20;

let server: FakeCri;
let calls: { rpc: string; request: unknown }[] = [];
let round = 0;

const u64 = (n: number): v1.UInt64Value => ({ value: String(n) });

/** Each list is one second later; the running container used half a core in that second. */
function containerStats(): v1.ContainerStats[] {
  const ts = String(1_700_000_000_000_000_000n + BigInt(round) * 1_000_000_000n);
  return [
    {
      attributes: { id: C_RUN, metadata: { name: 'busy', attempt: 0 }, labels: {}, annotations: {} },
      cpu: { timestamp: ts, usage_core_nano_seconds: u64(2e9 + round * 5e8) },
      memory: { timestamp: ts, working_set_bytes: u64(12 * MiB) },
      writable_layer: { timestamp: ts, fs_id: { mountpoint: '/var/lib/skiff/snapshots' }, used_bytes: u64(4096), inodes_used: u64(3) },
    },
    {
      attributes: { id: C_EXITED, metadata: { name: 'done', attempt: 0 }, labels: {}, annotations: {} },
      writable_layer: { timestamp: ts, fs_id: { mountpoint: '/var/lib/skiff/snapshots' }, used_bytes: u64(0), inodes_used: u64(1) },
    },
  ];
}

before(async () => {
  server = await startFakeCri({
    runtime: {
      ListContainerStats: (call, done) => {
        calls.push({ rpc: 'ListContainerStats', request: call.request });
        const stats = containerStats();
        round++;
        done(null, { stats });
      },
      ListPodSandboxStats: (call, done) => {
        calls.push({ rpc: 'ListPodSandboxStats', request: call.request });
        if (call.request.filter?.id === 'broken') return done({ code: grpc.status.INTERNAL, details: 'cgroup gone' });
        const ts = String(1_700_000_000_000_000_000n + BigInt(round) * 2_000_000_000n);
        const stats: v1.PodSandboxStats = {
          attributes: { id: POD, metadata: { name: 'web', namespace: 'e2e', uid: 'u', attempt: 0 }, labels: {}, annotations: {} },
          linux: {
            cpu: { timestamp: ts, usage_core_nano_seconds: u64(1e9 + round * 2e9) },
            memory: { timestamp: ts, working_set_bytes: u64(3 * 1000 * 1000) },
            network: { timestamp: ts, default_interface: { name: 'eth0', rx_bytes: u64(10), tx_bytes: u64(20) }, interfaces: [] },
            containers: [],
          },
        };
        round++;
        done(null, { stats: [stats] });
      },
    },
  });
});

after(async () => {
  await server.close();
});

beforeEach(() => {
  calls = [];
  round = 0;
});

const run = (...argv: string[]): Promise<CliRun> => runMain(server.endpoint, argv);

void test('skiff stats samples twice and prints crictl\'s columns; not-running containers only with -a', async () => {
  const r = await run('stats', '-s', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(calls.length, 2, 'two samples');
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES$/);
  assert.equal(lines.length, 2);
  assert.match(lines[1], new RegExp(`^${C_RUN.slice(0, 13)}\\s+busy\\s+50\\.00\\s+12\\.58MB\\s+4\\.096kB\\s+3$`));
  const all = await run('stats', '-a', '-s', '0');
  assert.match(all.stdout, new RegExp(`^${C_EXITED.slice(0, 13)}\\s+done\\s+0\\.00\\s+0B\\s+0B\\s+1$`, 'm'));
});

void test('skiff stats sends the id (flag or argument), pod and label filters', async () => {
  await run('stats', '-s', '0', '-p', 'ab12', '--label', 'app=web', '--label', 'tier=1', C_RUN.slice(0, 6));
  const req = calls[0].request as v1.ListContainerStatsRequest__Output;
  assert.deepEqual(
    { id: req.filter?.id, pod: req.filter?.pod_sandbox_id, labels: req.filter?.label_selector },
    { id: C_RUN.slice(0, 6), pod: 'ab12', labels: { app: 'web', tier: '1' } },
  );
  await run('stats', '-s', '0', '--id', 'c1c1');
  assert.equal((calls[2].request as v1.ListContainerStatsRequest__Output).filter?.id, 'c1c1');
});

void test('skiff stats -o json prints one ListContainerStatsResponse in protojson', async () => {
  const r = await run('stats', '-o', 'json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(calls.length, 1, 'no second sample for a document');
  const doc = JSON.parse(r.stdout) as { stats: { attributes: { id: string }; cpu?: { usageCoreNanoSeconds: { value: string } }; writableLayer: { inodesUsed: { value: string } } }[] };
  assert.deepEqual(doc.stats.map((s) => s.attributes.id), [C_RUN, C_EXITED]);
  assert.equal(doc.stats[0].cpu?.usageCoreNanoSeconds.value, '2000000000');
  assert.equal(doc.stats[0].writableLayer.inodesUsed.value, '3');
  const y = await run('stats', '-o', 'yaml');
  assert.match(y.stdout, /^stats:\n/);
});

void test('skiff stats refuses a bad -s, a bad -o and two ids before any rpc', async () => {
  for (const argv of [['stats', '-s', 'x'], ['stats', '-o', 'wide'], ['stats', 'a', 'b'], ['stats', '--label', 'novalue']]) {
    const r = await run(...argv);
    assert.notEqual(r.code, 0, argv.join(' '));
  }
  assert.equal(calls.length, 0);
});

void test('skiff statsp prints POD, POD ID, CPU % and MEM from two samples, and the filters it was given', async () => {
  const r = await run('statsp', '-s', '0', '--label', 'app=web', POD.slice(0, 8));
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^POD\s+POD ID\s+CPU %\s+MEM$/);
  assert.match(lines[1], new RegExp(`^web\\s+${POD.slice(0, 13)}\\s+100\\.00\\s+3MB$`));
  const req = calls[0].request as v1.ListPodSandboxStatsRequest__Output;
  assert.deepEqual({ id: req.filter?.id, labels: req.filter?.label_selector }, { id: POD.slice(0, 8), labels: { app: 'web' } });
  const j = await run('statsp', '-o', 'json');
  const doc = JSON.parse(j.stdout) as { stats: { linux: { network: { defaultInterface: { name: string } } } }[] };
  assert.equal(doc.stats[0].linux.network.defaultInterface.name, 'eth0');
});

void test('skiff statsp: a failed rpc prints the gRPC status and exits non-zero', async () => {
  const r = await run('statsp', '--id', 'broken');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /code = Internal desc = cgroup gone/);
});
