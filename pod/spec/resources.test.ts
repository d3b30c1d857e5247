import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SkiffError } from '../../common/errors.js';
import { buildContainerSpec } from './index.js';
import { resources, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import type { LinuxResources } from './oci-spec.js';
import { criResources, effectiveOomScoreAdj, hugepageSizeName, mergeResources, validCpuset } from './resources.js';
import type { ResourceHost } from './types.js';

const V1: ResourceHost = { cgroupV2: false, swap: true, hugepageSizes: ['2MB', '1GB'], minOomScoreAdj: -999 };
const V2: ResourceHost = { cgroupV2: true, swap: true, hugepageSizes: ['2MB'] };
const build = (o: FixtureOptions, host: ResourceHost = V1) => buildContainerSpec(specInput({ ...o, extra: { resourceHost: host, ...o.extra } }));
/** linux.resources without the device rules withDevices always writes. */
const cgroupResources = (o: FixtureOptions, host: ResourceHost = V1): LinuxResources => {
  const { devices: _devices, ...rest } = build(o, host).linux.resources ?? {};
  return rest;
};

const rows: { name: string; r: Parameters<typeof resources>[0]; host?: ResourceHost; want: LinuxResources }[] = [
  { name: 'cpu shares', r: { cpu_shares: '512' }, want: { cpu: { shares: 512 } } },
  { name: 'cpu quota and period', r: { cpu_quota: '20000', cpu_period: '100000' }, want: { cpu: { quota: 20000, period: 100000 } } },
  { name: 'cpu quota -1 is no limit', r: { cpu_quota: '-1' }, want: { cpu: { quota: -1 } } },
  { name: 'cpuset cpus and mems', r: { cpuset_cpus: '0-1,3', cpuset_mems: '0' }, want: { cpu: { cpus: '0-1,3', mems: '0' } } },
  { name: 'memory limit alone sets swap = limit (containerd)', r: { memory_limit_in_bytes: '33554432' }, want: { memory: { limit: 33554432, swap: 33554432 } } },
  {
    name: 'memory limit without a swap controller leaves swap out',
    r: { memory_limit_in_bytes: '33554432' },
    host: { ...V1, swap: false },
    want: { memory: { limit: 33554432 } },
  },
  { name: 'explicit swap limit', r: { memory_limit_in_bytes: '1048576000', memory_swap_limit_in_bytes: '2097152000' }, want: { memory: { limit: 1048576000, swap: 2097152000 } } },
  { name: 'swap -1 is unlimited swap', r: { memory_limit_in_bytes: '1048576000', memory_swap_limit_in_bytes: '-1' }, want: { memory: { limit: 1048576000, swap: -1 } } },
  {
    name: 'hugepage limits the host has',
    r: { hugepage_limits: [{ page_size: '2MB', limit: '4194304' }, { page_size: '1GB', limit: '0' }] },
    want: { hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }, { pageSize: '1GB', limit: 0 }] },
  },
  {
    name: 'hugepage limits without a hugetlb controller are dropped (containerd tolerates it)',
    r: { hugepage_limits: [{ page_size: '2MB', limit: '4194304' }] },
    host: { cgroupV2: false, swap: true },
    want: {},
  },
  { name: 'unified keys on cgroup v2', r: { unified: { 'memory.high': '50000000', 'pids.max': '64' } }, host: V2, want: { unified: { 'memory.high': '50000000', 'pids.max': '64' } } },
  { name: 'all zero: nothing set', r: {}, want: {} },
];

for (const row of rows) {
  test(`resources: ${row.name}`, () => {
    assert.deepEqual(cgroupResources({ resources: row.r }, row.host ?? V1), row.want);
  });
}

const bad: { name: string; r: Parameters<typeof resources>[0]; host?: ResourceHost; message: RegExp }[] = [
  { name: 'negative cpu quota', r: { cpu_quota: '-5' }, message: /resources\.cpu_quota -5 is negative/ },
  { name: 'quota under 1 ms', r: { cpu_quota: '10' }, message: /resources\.cpu_quota 10 is out of range: must be 0 \(unset\) or 1000\.\./ },
  { name: 'quota beyond the kernel max', r: { cpu_quota: '99999999999999' }, message: /resources\.cpu_quota 99999999999999 is out of range/ },
  { name: 'period over 1 s', r: { cpu_period: '2000000' }, message: /resources\.cpu_period 2000000 is out of range/ },
  { name: 'negative period', r: { cpu_period: '-100000' }, message: /resources\.cpu_period -100000 is out of range/ },
  { name: 'shares over 262144', r: { cpu_shares: '300000' }, message: /resources\.cpu_shares 300000 is out of range: must be 0 \(unset\) or 2\.\.262144/ },
  { name: 'negative shares', r: { cpu_shares: '-2' }, message: /resources\.cpu_shares -2 is out of range/ },
  { name: 'negative memory', r: { memory_limit_in_bytes: '-1' }, message: /resources\.memory_limit_in_bytes -1 is negative/ },
  { name: 'absurd memory', r: { memory_limit_in_bytes: '9223372036854775807' }, message: /resources\.memory_limit_in_bytes 9223372036854775807 is absurd/ },
  { name: 'swap below the limit', r: { memory_limit_in_bytes: '1000000000', memory_swap_limit_in_bytes: '500000000' }, message: /memory_swap_limit_in_bytes 500000000 is below the memory limit 1000000000/ },
  { name: 'swap -2', r: { memory_swap_limit_in_bytes: '-2' }, message: /memory_swap_limit_in_bytes -2 is negative/ },
  { name: 'cpuset garbage', r: { cpuset_cpus: '0-' }, message: /resources\.cpuset_cpus "0-" is not a cpuset list/ },
  { name: 'cpuset descending range', r: { cpuset_mems: '3-1' }, message: /resources\.cpuset_mems "3-1" is not a cpuset list/ },
  { name: 'unified on cgroup v1', r: { unified: { 'memory.high': '1' } }, message: /resources\.unified \{"memory\.high":"1"\}: cgroup v2 files cannot be set on this host, which has cgroup v1/ },
  { name: 'unified key with a path', r: { unified: { '../memory.max': '1' } }, host: V2, message: /unified key "\.\.\/memory\.max" is not a cgroup v2 file name/ },
  { name: 'unified value with a newline', r: { unified: { 'memory.high': '1\n2' } }, host: V2, message: /unified\["memory\.high"\] contains a newline/ },
  { name: 'hugepage size the host lacks', r: { hugepage_limits: [{ page_size: '1GB', limit: '0' }] }, host: V2, message: /page size 1GB is not one this host has \(2MB\)/ },
  { name: 'hugepage size misspelt', r: { hugepage_limits: [{ page_size: '2M', limit: '0' }] }, message: /page_size "2M" is not a size/ },
  { name: 'oom_score_adj out of range', r: { oom_score_adj: '1001' }, message: /resources\.oom_score_adj 1001 is out of range: must be -1000\.\.1000/ },
  { name: 'not an integer', r: { cpu_shares: '1.5' }, message: /resources\.cpu_shares "1\.5" is not an integer/ },
];

for (const row of bad) {
  test(`resources refused with the field named: ${row.name}`, () => {
    throwsSkiff(() => build({ resources: row.r }, row.host ?? V1), 'SKIFF_INVALID_ARGUMENT', row.message);
  });
}

test('resources keep the device rules written before them', () => {
  const spec = build({ resources: { cpu_shares: '2' }, config: { devices: [] } });
  assert.equal(spec.linux.resources?.cpu?.shares, 2);
  assert.ok(Array.isArray(spec.linux.resources?.devices), 'device rules stay');
});

test('oomScoreAdj comes from resources.oom_score_adj, and is absent without resources', () => {
  assert.equal(build({ resources: { oom_score_adj: '1000' } }).process.oomScoreAdj, 1000);
  assert.equal(build({ resources: { oom_score_adj: '-997' } }, { cgroupV2: false, swap: false }).process.oomScoreAdj, -997);
  assert.equal(build({}).process.oomScoreAdj, undefined);
});

test('oomScoreAdj below skiffd\'s own is raised to it (no CAP_SYS_RESOURCE to lower it)', () => {
  assert.equal(build({ resources: { oom_score_adj: '-997' } }, { ...V1, minOomScoreAdj: 0 }).process.oomScoreAdj, 0);
  assert.equal(build({ resources: { oom_score_adj: '-997' } }, { ...V1, minOomScoreAdj: -999 }).process.oomScoreAdj, -997);
  assert.equal(build({ resources: { oom_score_adj: '500' } }, { ...V1, minOomScoreAdj: 0 }).process.oomScoreAdj, 500);
  assert.equal(effectiveOomScoreAdj('-1000', { cgroupV2: true, swap: false, minOomScoreAdj: -500 }, (m) => new Error(m)), -500);
});

test('an update merges over what is there: zero fields keep their value (containerd WithResources)', () => {
  const fail = (m: string): Error => new SkiffError('SKIFF_INVALID_ARGUMENT', m);
  const target: LinuxResources = { devices: [{ allow: false, access: 'rwm' }], cpu: { shares: 1024, quota: 50000, period: 100000 }, memory: { limit: 1 << 26, swap: 1 << 26 } };
  mergeResources(target, resources({ cpu_quota: '20000', memory_limit_in_bytes: String(1 << 27) }), V1, fail);
  assert.deepEqual(target, { devices: [{ allow: false, access: 'rwm' }], cpu: { shares: 1024, quota: 20000, period: 100000 }, memory: { limit: 1 << 27, swap: 1 << 27 } });
});

test('a refused update changes nothing', () => {
  const fail = (m: string): Error => new SkiffError('SKIFF_INVALID_ARGUMENT', m);
  const target: LinuxResources = { cpu: { quota: 50000 } };
  assert.throws(() => mergeResources(target, resources({ cpu_shares: '512', cpu_quota: '-7' }), V1, fail, 'linux.'), /linux\.cpu_quota -7 is negative/);
  assert.deepEqual(target, { cpu: { quota: 50000 } });
});

test('cgroup v2 layout: shares stay shares (the runtime converts them to cpu.weight), unified passes', () => {
  const got = cgroupResources({ resources: { cpu_shares: '1024', cpu_quota: '50000', cpu_period: '100000', memory_limit_in_bytes: '67108864', unified: { 'memory.high': '60000000' } } }, V2);
  assert.deepEqual(got, {
    cpu: { shares: 1024, quota: 50000, period: 100000 },
    memory: { limit: 67108864, swap: 67108864 },
    unified: { 'memory.high': '60000000' },
  });
});

test('criResources reports what the spec holds, as ContainerStatus.resources', () => {
  assert.deepEqual(criResources({ cpu: { quota: 20000, period: 100000 }, memory: { limit: 1024, swap: 1024 }, hugepageLimits: [{ pageSize: '2MB', limit: 0 }] }, -5), {
    cpu_period: '100000',
    cpu_quota: '20000',
    cpu_shares: '0',
    cpuset_cpus: '',
    cpuset_mems: '',
    memory_limit_in_bytes: '1024',
    memory_swap_limit_in_bytes: '1024',
    oom_score_adj: '-5',
    hugepage_limits: [{ page_size: '2MB', limit: '0' }],
    unified: {},
  });
});

test('cpuset lists and hugepage size names', () => {
  for (const ok of ['0', '0-3', '0,2,4-7', '10-10']) assert.ok(validCpuset(ok), ok);
  for (const no of ['', '-1', '0-', '1,,2', 'a', '3-1', '0 1']) assert.ok(!validCpuset(no), no);
  assert.equal(hugepageSizeName(2 << 20), '2MB');
  assert.equal(hugepageSizeName(1 << 30), '1GB');
  assert.equal(hugepageSizeName(64 << 10), '64KB');
});
