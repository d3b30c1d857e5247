import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejectsWith } from '../../common/assert-error.js';
import type { ContainerRecord, SandboxRecord } from '../records.js';
import type { CgroupLayout } from '../runtime/cgroup-layout.js';
import { metricDescriptors, podSandboxMetrics } from './cadvisor.js';
import { PodStats, type StatsSources } from './sampler.js';

const MiB = 1 << 20;
const hex = (prefix: string, n: number): string => `${prefix}${n.toString(16).padStart(6, '0')}`.padEnd(64, '0');

let root: string;
let layout: CgroupLayout;
let sandboxes: SandboxRecord[];
let containers: ContainerRecord[];

async function put(rel: string, content: string): Promise<void> {
  await mkdir(join(root, rel, '..'), { recursive: true });
  await writeFile(join(root, rel), content);
}

async function cgroup(path: string, o: { usageNs: number; mem: number; limit?: number; pids: number }): Promise<void> {
  await put(`cpuacct${path}/cpuacct.usage`, `${o.usageNs}\n`);
  await put(`cpuacct${path}/cpuacct.stat`, 'user 1\nsystem 1\n');
  await put(`cpu${path}/cpu.stat`, 'nr_periods 10\nnr_throttled 1\nthrottled_time 5\n');
  await put(`memory${path}/memory.usage_in_bytes`, `${o.mem}\n`);
  await put(`memory${path}/memory.limit_in_bytes`, `${o.limit ?? 9223372036854771712}\n`);
  await put(`memory${path}/memory.stat`, `total_inactive_file ${MiB}\ntotal_rss ${o.mem / 2}\ntotal_cache ${MiB}\ntotal_pgfault 10\ntotal_pgmajfault 1\n`);
  await put(`pids${path}/pids.current`, `${o.pids}\n`);
}

function sandbox(i: number, o: Partial<SandboxRecord> = {}): SandboxRecord {
  const id = hex('5b', i);
  return {
    version: 1, id, name: `p${i}`, fingerprint: '', runtimeHandler: '', phase: 'ready', createdAt: '0', pid: 1000 + i, dir: '', hostname: `p${i}`, ips: [],
    netnsPath: `/run/skiff/netns/${id}`,
    config: { metadata: { name: `pod-${i}`, namespace: 'ns', uid: `u${i}`, attempt: 0 }, labels: { pod: String(i), tier: i % 2 ? 'odd' : 'even' }, annotations: {}, linux: { cgroup_parent: `/kubepods/pod${i}` } },
    ...o,
  } as SandboxRecord;
}

function container(i: number, sb: SandboxRecord, o: Partial<ContainerRecord> = {}): ContainerRecord {
  const id = hex('c0', i);
  return {
    version: 1, id, sandboxId: sb.id, name: `c${i}`, fingerprint: '', imageName: 'reg/busybox:1', imageId: 'sha256:x', snapshots: [], phase: 'running', createdAt: '0',
    pid: 5000 + i, logPath: '', bundle: '', upperDir: join(root, 'layers', id, 'upper'), workDir: '', stopSignal: 'TERM',
    cgroupsPath: `${sb.config.linux!.cgroup_parent}/${id}`,
    config: { metadata: { name: `app${i % 10}`, attempt: 0 }, labels: { c: String(i), app: `app${i % 10}` }, annotations: { a: 'b' }, image: { image: 'reg/busybox:1' } },
    ...o,
  } as ContainerRecord;
}

function sources(alive = (_: SandboxRecord): boolean => true): StatsSources {
  return {
    layout,
    containers: () => containers,
    sandboxes: () => sandboxes,
    findContainer: (id) => containers.find((c) => c.id === id) ?? (id.length >= 4 ? containers.find((c) => c.id.startsWith(id)) : undefined),
    findSandbox: (id) => sandboxes.find((s) => s.id === id) ?? (id.length >= 4 ? sandboxes.find((s) => s.id.startsWith(id)) : undefined),
    fsMountpoint: '/var/lib/skiff/snapshots',
    imageName: (rec) => rec.imageName,
    sandboxAlive: async (rec) => alive(rec),
    podCgroupPath: (rec) => rec.config.linux?.cgroup_parent || undefined,
    procDir: join(root, 'proc'),
  };
}

const NET_DEV = (rx: number, tx: number): string =>
  `h1\nh2\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: ${rx} 3 0 0 0 0 0 0 ${tx} 4 1 0 0 0 0 0\n`;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'skiff-sampler-'));
  layout = { mode: 'hybrid', v2Mounts: [], v1Controllers: Object.fromEntries(['cpu', 'cpuacct', 'memory', 'pids'].map((c) => [c, join(root, c)])) };
  // 10 pods of 10 containers; pod 0's container 0 stopped, pod 9 host-networked.
  sandboxes = Array.from({ length: 10 }, (_, i) => sandbox(i, i === 9 ? { netnsPath: undefined } : {}));
  containers = [];
  for (const sb of sandboxes) {
    await cgroup(sb.config.linux!.cgroup_parent, { usageNs: 9e9, mem: 64 * MiB, pids: 0 });
    await put(`proc/${sb.pid}/net/dev`, NET_DEV(1000, 2000));
    for (let j = 0; j < 10; j++) {
      const c = container(containers.length, sb, containers.length === 0 ? { phase: 'exited' } : {});
      containers.push(c);
      await cgroup(c.cgroupsPath, { usageNs: 1e9, mem: 8 * MiB, limit: 32 * MiB, pids: 2 });
      await put(join('layers', c.id, 'upper', 'etc', 'written'), 'x'.repeat(10_000));
    }
  }
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('ContainerStats of a running container: cpu, memory with available bytes, writable layer; attributes from its config', async () => {
  const stats = new PodStats(sources());
  const c = containers[1];
  const s = await stats.container(c.id.slice(0, 12));
  assert.equal(s.stats.attributes?.id, c.id);
  assert.deepEqual(s.stats.attributes?.labels, c.config.labels);
  assert.equal(s.stats.cpu?.usage_core_nano_seconds?.value, '1000000000');
  assert.equal(s.stats.cpu?.usage_nano_cores, undefined, 'the first sample has no rate');
  assert.match(String(s.stats.cpu?.timestamp), /^\d{19}$/, 'timestamps in ns');
  assert.equal(s.stats.memory?.working_set_bytes?.value, String(7 * MiB));
  assert.equal(s.stats.memory?.available_bytes?.value, String(25 * MiB));
  assert.equal(s.stats.memory?.usage_bytes?.value, String(8 * MiB));
  assert.equal(s.stats.memory?.rss_bytes?.value, String(4 * MiB));
  assert.equal(s.stats.writable_layer?.fs_id?.mountpoint, '/var/lib/skiff/snapshots');
  assert.ok(Number(s.stats.writable_layer?.used_bytes?.value) >= 10_000, 'the file written in the upper dir');
  assert.equal(s.stats.writable_layer?.inodes_used?.value, '3', 'upper, etc, etc/written');
  assert.deepEqual(s.labels, { container: 'app1', id: c.cgroupsPath, image: 'reg/busybox:1', name: c.id, namespace: 'ns', pod: 'pod-0' });
});

test('a stopped container has its writable layer but no cpu or memory (containerd lists it so too)', async () => {
  const s = await new PodStats(sources()).container(containers[0].id);
  assert.equal(s.running, false);
  assert.equal(s.stats.cpu, undefined);
  assert.equal(s.stats.memory, undefined);
  assert.ok(s.stats.writable_layer?.used_bytes);
});

test('an unknown container or pod id is NOT_FOUND naming it; a pod that is not ready is FAILED_PRECONDITION', async () => {
  const stats = new PodStats(sources((s) => s.id !== sandboxes[3].id));
  await rejectsWith(stats.container('f'.repeat(64)), 'SKIFF_NOT_FOUND', /container "f{64}" not found/);
  await rejectsWith(stats.sandbox('f'.repeat(64)), 'SKIFF_NOT_FOUND', /pod sandbox "f{64}" not found/);
  await rejectsWith(stats.sandbox(sandboxes[3].id), 'SKIFF_FAILED_PRECONDITION', /is not ready/);
  assert.equal((await stats.listSandboxes()).length, 9, 'the list leaves the dead pod out');
});

test('ListContainerStats filters by id prefix, pod id prefix and labels', async () => {
  const stats = new PodStats(sources());
  assert.equal((await stats.listContainers()).length, 100);
  assert.deepEqual((await stats.listContainers({ id: containers[5].id.slice(0, 10) })).map((s) => s.id), [containers[5].id]);
  assert.equal((await stats.listContainers({ pod_sandbox_id: sandboxes[2].id.slice(0, 8) })).length, 10);
  assert.deepEqual((await stats.listContainers({ label_selector: { c: '7' } })).map((s) => s.id), [containers[7].id]);
  assert.equal((await stats.listContainers({ pod_sandbox_id: sandboxes[2].id, label_selector: { app: 'app3' } })).length, 1);
  assert.equal((await stats.listContainers({ id: 'ffff' })).length, 0);
});

test('usage_nano_cores comes from the delta between samples a second apart', async () => {
  const stats = new PodStats(sources());
  const c = containers[11];
  await stats.container(c.id);
  await new Promise((r) => setTimeout(r, 1000));
  await put(`cpuacct${c.cgroupsPath}/cpuacct.usage`, `${1e9 + 5e8}\n`);
  const s = await stats.container(c.id);
  const cores = Number(s.stats.cpu?.usage_nano_cores?.value);
  assert.ok(cores > 4.5e8 && cores <= 5e8, `about half a core, got ${cores}`);
});

test('PodSandboxStats: the pod cgroup, eth0 as default interface, process count summed over its containers', async () => {
  const s = await new PodStats(sources()).sandbox(sandboxes[1].id);
  const linux = s.stats.linux!;
  assert.equal(linux.cpu?.usage_core_nano_seconds?.value, '9000000000');
  assert.equal(linux.memory?.working_set_bytes?.value, String(63 * MiB));
  assert.equal(linux.memory?.available_bytes, undefined, 'no pod limit: no available bytes');
  assert.equal(linux.network?.default_interface?.name, 'eth0');
  assert.equal(linux.network?.default_interface?.rx_bytes?.value, '1000');
  assert.equal(linux.network?.default_interface?.tx_errors?.value, '1');
  assert.deepEqual(linux.network?.interfaces?.map((i) => i.name), ['eth0'], 'loopback left out');
  assert.equal(linux.process?.process_count?.value, '20');
  assert.equal(linux.containers?.length, 10);
  assert.deepEqual(s.stats.attributes?.labels, sandboxes[1].config.labels);
});

test('a host-network pod has no network stats; a pod without a cgroup parent sums its containers', async () => {
  const stats = new PodStats(sources());
  assert.equal((await stats.sandbox(sandboxes[9].id)).stats.linux?.network, undefined);
  const src = sources();
  const s = await new PodStats({ ...src, podCgroupPath: () => undefined }).sandbox(sandboxes[2].id);
  assert.equal(s.stats.linux?.cpu?.usage_core_nano_seconds?.value, '10000000000', '10 containers × 1 s');
});

test('ListPodSandboxStats filters by id prefix and labels', async () => {
  const stats = new PodStats(sources());
  assert.deepEqual((await stats.listSandboxes({ id: sandboxes[4].id.slice(0, 8) })).map((s) => s.id), [sandboxes[4].id]);
  assert.equal((await stats.listSandboxes({ label_selector: { tier: 'odd' } })).length, 5);
});

test('ListPodSandboxMetrics: every metric sent has a descriptor with as many label keys as it has values', async () => {
  const descs = new Map(metricDescriptors().map((d) => [d.name, d]));
  for (const name of ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes', 'container_memory_rss', 'container_cpu_cfs_throttled_periods_total', 'container_network_receive_bytes_total', 'container_network_transmit_bytes_total', 'container_fs_usage_bytes']) {
    assert.ok(descs.has(name), name);
  }
  assert.deepEqual(descs.get('container_memory_rss')?.label_keys, ['container', 'id', 'image', 'name', 'namespace', 'pod']);
  const m = podSandboxMetrics(await new PodStats(sources()).sandbox(sandboxes[1].id));
  assert.equal(m.pod_sandbox_id, sandboxes[1].id);
  const all = [...(m.metrics ?? []), ...(m.container_metrics ?? []).flatMap((c) => c.metrics ?? [])];
  for (const metric of all) {
    const d = descs.get(metric.name);
    assert.ok(d, `descriptor for ${metric.name}`);
    assert.equal(metric.label_values?.length, d.label_keys?.length, metric.name);
  }
  const rx = m.metrics?.find((x) => x.name === 'container_network_receive_bytes_total');
  assert.deepEqual(rx?.label_values, ['', '/kubepods/pod1', '', '', 'ns', 'pod-1', 'eth0']);
  assert.equal(rx?.value?.value, '1000');
  const ws = m.container_metrics?.[0].metrics?.find((x) => x.name === 'container_memory_working_set_bytes');
  assert.equal(ws?.metric_type, 'GAUGE');
  assert.equal(ws?.value?.value, String(7 * MiB));
});

test('ListContainerStats of 100 running containers on a fake v1 tree stays well under 50 ms', async () => {
  const stats = new PodStats(sources());
  await stats.listContainers(); // first walk of each writable layer
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = process.hrtime.bigint();
    const r = await stats.listContainers();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    assert.equal(r.length, 100);
  }
  times.sort((a, b) => a - b);
  const p50 = times[10];
  const p90 = times[18];
  console.log(`# ListContainerStats sampler, 100 containers: p50 ${p50.toFixed(2)} ms, p90 ${p90.toFixed(2)} ms`);
  assert.ok(p50 < 50, `p50 ${p50} ms`);
});
