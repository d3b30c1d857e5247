import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCgroupLayout } from './cgroup-layout.js';

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const UNIFIED = `30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const LEGACY = `32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`;

test('cgroup layouts are told apart from mountinfo', () => {
  const h = parseCgroupLayout(HYBRID);
  assert.equal(h.mode, 'hybrid');
  assert.deepEqual(h.v2Mounts, ['/sys/fs/cgroup/unified']);
  assert.deepEqual(h.v1Controllers, { cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' });
  assert.deepEqual(parseCgroupLayout(UNIFIED), { mode: 'unified', v2Mounts: [], v1Controllers: {} });
  const l = parseCgroupLayout(LEGACY);
  assert.equal(l.mode, 'legacy');
  assert.equal(l.v1Controllers.cpuacct, '/sys/fs/cgroup/cpu,cpuacct');
});
