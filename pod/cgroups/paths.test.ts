import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controllerDir, oomCounterFile, unifiedDir } from './paths.js';
import type { CgroupLayout } from '../runtime/cgroup-layout.js';

const HYBRID: CgroupLayout = {
  mode: 'hybrid',
  v2Mounts: ['/sys/fs/cgroup/unified'],
  v1Controllers: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' },
};
const UNIFIED: CgroupLayout = { mode: 'unified', v2Mounts: [], v1Controllers: {}, unifiedRoot: '/tmp/fake-cgroup2' };
const PATH = '/kubepods/pod1/' + 'c'.repeat(64);

test('controllerDir: a v1 controller\'s dir of the cgroup; undefined on v2, for an unmounted controller, or without a path', () => {
  assert.equal(controllerDir(HYBRID, 'memory', PATH), '/sys/fs/cgroup/memory' + PATH);
  assert.equal(controllerDir(HYBRID, 'cpuacct', PATH), '/sys/fs/cgroup/cpu,cpuacct' + PATH);
  assert.equal(controllerDir(HYBRID, 'hugetlb', PATH), undefined);
  assert.equal(controllerDir(HYBRID, 'memory', ''), undefined);
  assert.equal(controllerDir(UNIFIED, 'memory', PATH), undefined);
});

test('unifiedDir: only on a unified host (a hybrid host\'s v2 mount holds no controllers)', () => {
  assert.equal(unifiedDir(UNIFIED, PATH), '/tmp/fake-cgroup2' + PATH);
  assert.equal(unifiedDir({ ...UNIFIED, unifiedRoot: undefined }, PATH), '/sys/fs/cgroup' + PATH);
  assert.equal(unifiedDir(HYBRID, PATH), undefined);
  assert.equal(unifiedDir(UNIFIED, ''), undefined);
});

test('oomCounterFile: memory.events on v2, memory.oom_control on v1', () => {
  assert.equal(oomCounterFile(UNIFIED, PATH), '/tmp/fake-cgroup2' + PATH + '/memory.events');
  assert.equal(oomCounterFile(HYBRID, PATH), '/sys/fs/cgroup/memory' + PATH + '/memory.oom_control');
  assert.equal(oomCounterFile({ ...HYBRID, v1Controllers: {} }, PATH), undefined);
});
