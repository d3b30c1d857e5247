import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CgroupLayout } from '../runtime/cgroup-layout.js';
import { cgroupDirs, cgroupName, parseProcCgroup, processCgroupDirs } from './cgroup-dirs.js';
import { availableBytes, readCgroupStats } from './cgroup-stats.js';

/** Writes `files` (relative path → content) under a temp root. */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-cgstats-'));
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await writeFile(join(root, rel), content);
  }
  return root;
}

function v1Layout(root: string): CgroupLayout {
  return { mode: 'hybrid', v2Mounts: [join(root, 'unified')], v1Controllers: Object.fromEntries(['cpu', 'cpuacct', 'memory', 'pids', 'devices'].map((c) => [c, join(root, c)])) };
}

const MiB = 1 << 20;
const V1_MEMSTAT = ['cache 1', 'rss 2', 'total_cache 3145728', 'total_rss 8388608', 'total_inactive_file 2097152', 'total_pgfault 1234', 'total_pgmajfault 5', ''].join('\n');

test('v1: cpuacct, cpu.stat, memory and pids files become one sample; working set excludes inactive file', async () => {
  const p = '/pods/pod1/c1';
  const root = await tree({
    [`cpuacct${p}/cpuacct.usage`]: '12345678901234\n',
    [`cpuacct${p}/cpuacct.stat`]: 'user 150\nsystem 25\n',
    [`cpu${p}/cpu.stat`]: 'nr_periods 100\nnr_throttled 7\nthrottled_time 3500000000\n',
    [`memory${p}/memory.usage_in_bytes`]: `${20 * MiB}\n`,
    [`memory${p}/memory.limit_in_bytes`]: `${64 * MiB}\n`,
    [`memory${p}/memory.stat`]: V1_MEMSTAT,
    [`pids${p}/pids.current`]: '3\n',
  });
  try {
    const layout = v1Layout(root);
    const s = readCgroupStats(cgroupDirs(layout, p));
    assert.deepEqual(s, {
      cpu: { usageNs: 12345678901234n, userNs: 1_500_000_000n, systemNs: 250_000_000n, periods: 100, throttledPeriods: 7, throttledNs: 3_500_000_000n },
      memory: { usage: 20 * MiB, limit: 64 * MiB, workingSet: 18 * MiB, rss: 8 * MiB, cache: 3 * MiB, inactiveFile: 2 * MiB, pgfault: 1234, pgmajfault: 5 },
      pids: 3,
    });
    assert.equal(availableBytes(s.memory), 46 * MiB);
    assert.equal(cgroupName(cgroupDirs(layout, p), layout), p);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("v1: the kernel's unlimited (9223372036854771712) is no limit, and no available bytes", async () => {
  const root = await tree({
    'memory/c/memory.usage_in_bytes': '4096',
    'memory/c/memory.limit_in_bytes': '9223372036854771712\n',
    'memory/c/memory.stat': 'total_inactive_file 8192\n',
  });
  try {
    const s = readCgroupStats(cgroupDirs(v1Layout(root), '/c'));
    assert.equal(s?.memory?.limit, undefined);
    assert.equal(s?.memory?.workingSet, 0, 'inactive file above usage floors at 0');
    assert.equal(availableBytes(s.memory), undefined);
    assert.equal(s?.cpu, undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('v2: cpu.stat in µs, memory.current/max/stat, pids.current', async () => {
  const root = await tree({
    'kubepods/pod1/c1/cpu.stat': 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 12\nthrottled_usec 600000\n',
    'kubepods/pod1/c1/memory.current': `${10 * MiB}\n`,
    'kubepods/pod1/c1/memory.max': `${32 * MiB}\n`,
    'kubepods/pod1/c1/memory.stat': `anon ${6 * MiB}\nfile ${4 * MiB}\ninactive_file ${MiB}\npgfault 99\npgmajfault 1\n`,
    'kubepods/pod1/c1/pids.current': '2\n',
    'kubepods/pod2/c2/cpu.stat': 'usage_usec 1\n',
    'kubepods/pod2/c2/memory.current': '100\n',
    'kubepods/pod2/c2/memory.max': 'max\n',
  });
  try {
    const layout: CgroupLayout = { mode: 'unified', v2Mounts: [], v1Controllers: {}, unifiedRoot: root };
    const dirs = cgroupDirs(layout, '/kubepods/pod1/c1');
    assert.deepEqual(readCgroupStats(dirs), {
      cpu: { usageNs: 2_500_000_000n, userNs: 2_000_000_000n, systemNs: 500_000_000n, periods: 40, throttledPeriods: 12, throttledNs: 600_000_000n },
      memory: { usage: 10 * MiB, limit: 32 * MiB, workingSet: 9 * MiB, rss: 6 * MiB, cache: 4 * MiB, inactiveFile: MiB, pgfault: 99, pgmajfault: 1 },
      pids: 2,
    });
    assert.equal(cgroupName(dirs, layout), '/kubepods/pod1/c1');
    const unlimited = readCgroupStats(cgroupDirs(layout, '/kubepods/pod2/c2'));
    assert.equal(unlimited?.memory?.limit, undefined, 'memory.max "max" is no limit');
    assert.equal(unlimited?.pids, undefined, 'no pids controller: no process count');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a cgroup that is gone reads as undefined', async () => {
  const root = await tree({});
  try {
    assert.equal(readCgroupStats(cgroupDirs(v1Layout(root), '/nope')), undefined);
    assert.equal(readCgroupStats(cgroupDirs({ mode: 'unified', v2Mounts: [], v1Controllers: {}, unifiedRoot: root }, '/nope')), undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('/proc/<pid>/cgroup: v1 controllers by name (joined ones too), v2 by the "0::" line', async () => {
  const text = '12:pids:/a/b\n4:cpu,cpuacct:/a/c\n3:memory:/a/m\n1:name=systemd:/x\n0::/unified/path\n';
  const m = parseProcCgroup(text);
  assert.equal(m.get('cpu'), '/a/c');
  assert.equal(m.get('cpuacct'), '/a/c');
  assert.equal(m.get(''), '/unified/path');
  const root = await tree({ '42/cgroup': text });
  try {
    const layout = v1Layout('/sys/fs/cgroup');
    assert.deepEqual(await processCgroupDirs(layout, 42, root), {
      version: 1,
      cpu: '/sys/fs/cgroup/cpu/a/c',
      cpuacct: '/sys/fs/cgroup/cpuacct/a/c',
      memory: '/sys/fs/cgroup/memory/a/m',
      pids: '/sys/fs/cgroup/pids/a/b',
    });
    assert.deepEqual(await processCgroupDirs({ mode: 'unified', v2Mounts: [], v1Controllers: {} }, 42, root), { version: 2, dir: '/sys/fs/cgroup/unified/path' });
    assert.equal(await processCgroupDirs(layout, 43, root), undefined, 'a process that is gone');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
