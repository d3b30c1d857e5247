import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runtimeConfig } from './runtime-config.js';

test('RuntimeConfig reports the configured cgroup driver, so kubelet names cgroups alike', async () => {
  assert.deepEqual(await runtimeConfig(() => 'systemd')({}), { linux: { cgroup_driver: 'SYSTEMD' } });
  assert.deepEqual(await runtimeConfig(() => 'cgroupfs')({}), { linux: { cgroup_driver: 'CGROUPFS' } });
});
