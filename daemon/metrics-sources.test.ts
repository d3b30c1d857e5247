import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerSample as StatsContainer, SandboxSample } from '../pod/stats/sampler.js';
import type { CgroupSample } from '../pod/stats/cgroup-stats.js';
import { toSample } from './metrics-sources.js';

const cgroup: CgroupSample = {
  cpu: { usageNs: 2_500_000_000n, userNs: 2_000_000_000n, systemNs: 500_000_000n, periods: 40, throttledPeriods: 9, throttledNs: 300_000_000n },
  memory: { usage: 9000, limit: 64 << 20, workingSet: 7000, rss: 5000, cache: 2000, inactiveFile: 2000, pgfault: 11, pgmajfault: 1 },
  pids: 3,
};

function container(id: string, running: boolean): StatsContainer {
  return {
    id,
    sandboxId: 'pod1',
    running,
    stats: { writable_layer: { fs_id: { mountpoint: '/var/lib/skiff/snapshots' } } },
    labels: { container: `c-${id}`, id: `/kubepods/pod1/${id}`, image: 'busybox:1', name: id, namespace: 'ns', pod: 'web' },
    ...(running ? { cgroup } : {}),
    writableLayer: { bytes: 8192, inodes: 4 },
    timestamp: '1',
  };
}

test('the stats sampler\'s pods become metrics samples: running containers only, units in seconds, the pod\'s network', () => {
  const sb: SandboxSample = {
    id: 'pod1',
    stats: {},
    labels: { container: '', id: '/kubepods/pod1', image: '', name: '', namespace: 'ns', pod: 'web' },
    cgroup: { memory: { usage: 1, workingSet: 1, rss: 1, cache: 0, inactiveFile: 0, pgfault: 0, pgmajfault: 0 } },
    network: [{ name: 'eth0', rxBytes: 10, rxPackets: 1, rxErrors: 0, rxDropped: 0, txBytes: 20, txPackets: 2, txErrors: 0, txDropped: 0 }],
    containers: [container('a', true), container('b', false)],
    timestamp: '1',
  };
  const s = toSample([sb], (id) => (id === 'a' ? '1700000000500000000' : undefined));
  assert.equal(s.pods.length, 1);
  assert.equal(s.pods[0].labels.container, '');
  assert.equal(s.pods[0].interfaces[0].rxBytes, 10);
  assert.equal(s.pods[0].memoryWorkingSetBytes, 1);
  assert.equal(s.pods[0].cpuUsageSeconds, undefined, 'no cpu read: no cpu series');
  assert.deepEqual(
    s.containers.map((c) => c.labels.name),
    ['a'],
  );
  const c = s.containers[0];
  assert.equal(c.cpuUsageSeconds, 2.5);
  assert.equal(c.cpuThrottledPeriods, 9);
  assert.equal(c.cpuThrottledSeconds, 0.3);
  assert.equal(c.memoryWorkingSetBytes, 7000);
  assert.equal(c.memoryLimitBytes, 64 << 20);
  assert.equal(c.processes, 3);
  assert.equal(c.fsUsageBytes, 8192);
  assert.equal(c.fsDevice, '/var/lib/skiff/snapshots');
  assert.equal(c.startTimeSeconds, 1_700_000_000.5);
});
