// resourceHost against fake cgroup trees in a temp dir: a v2 (unified) host and a v1 one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceHost } from './host-facts.js';

async function tree(files: Record<string, string>): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-cgroup-facts-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

test('cgroup v2: swap from memory.swap.max beside skiffd\'s own cgroup, hugetlb from cgroup.controllers', async () => {
  const t = await tree({
    'cg/cgroup.controllers': 'cpuset cpu io memory hugetlb pids',
    'cg/system.slice/skiffd.service/memory.swap.max': 'max',
    'proc/cgroup': '0::/system.slice/skiffd.service\n',
    'proc/oom_score_adj': '-500\n',
    'hp/hugepages-2048kB/nr_hugepages': '0',
    'hp/hugepages-1048576kB/nr_hugepages': '0',
  });
  try {
    const host = await resourceHost(
      { mode: 'unified', v2Mounts: [], v1Controllers: {}, unifiedRoot: join(t.dir, 'cg') },
      { procSelf: join(t.dir, 'proc'), hugepagesDir: join(t.dir, 'hp') },
    );
    assert.deepEqual(host, { cgroupV2: true, swap: true, hugepageSizes: ['1GB', '2MB'], minOomScoreAdj: -500 });
  } finally {
    await t.done();
  }
});

test('cgroup v2 without swap accounting or hugetlb', async () => {
  const t = await tree({ 'cg/cgroup.controllers': 'cpu memory pids', 'proc/cgroup': '0::/\n', 'proc/oom_score_adj': '0' });
  try {
    const host = await resourceHost({ mode: 'unified', v2Mounts: [], v1Controllers: {}, unifiedRoot: join(t.dir, 'cg') }, { procSelf: join(t.dir, 'proc') });
    assert.deepEqual(host, { cgroupV2: true, swap: false, minOomScoreAdj: 0 });
  } finally {
    await t.done();
  }
});

test('cgroup v1: swap from memory.memsw.limit_in_bytes, hugetlb when its hierarchy is mounted', async () => {
  const t = await tree({ 'memory/memory.memsw.limit_in_bytes': '9223372036854771712', 'proc/oom_score_adj': '0', 'hp/hugepages-2048kB/x': '' });
  try {
    const layout = { mode: 'hybrid' as const, v2Mounts: [], v1Controllers: { memory: join(t.dir, 'memory'), hugetlb: join(t.dir, 'hugetlb') } };
    assert.deepEqual(await resourceHost(layout, { procSelf: join(t.dir, 'proc'), hugepagesDir: join(t.dir, 'hp') }), { cgroupV2: false, swap: true, hugepageSizes: ['2MB'], minOomScoreAdj: 0 });
    const noHugetlb = { ...layout, v1Controllers: { memory: join(t.dir, 'nomemsw') } };
    assert.deepEqual(await resourceHost(noHugetlb, { procSelf: join(t.dir, 'proc') }), { cgroupV2: false, swap: false, minOomScoreAdj: 0 });
  } finally {
    await t.done();
  }
});
