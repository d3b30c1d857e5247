// e2e: the CRI stats rpcs on the real daemon. One pod (its own cgroup parent) with a busy loop and
// a container holding some memory; cpu grows and has a rate, the working set is sane, a file the
// test writes shows in the writable layer, traffic the test sends to the pod's IP shows in its
// network counters; filters, metrics, bad ids, a stopped container, and `skiff stats -o json`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rmdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type * as v1 from '../cri/gen/v1.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

const MiB = 1 << 20;
const LIMIT = 64 * MiB;
const n = (v: { value: string } | null | undefined): number => Number(v?.value ?? NaN);
const code = (c: GrpcStatus) => (e: unknown) => (e as ServiceError).code === c;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Opens TCP connections to the pod's IP (refused: SYNs in, RSTs out — traffic all the same). */
async function poke(ip: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await new Promise<void>((resolve) => {
      const s = connect({ host: ip, port: 9 + i });
      const done = (): void => {
        s.destroy();
        resolve();
      };
      s.once('connect', done).once('error', done).setTimeout(1000, done);
    });
  }
}

describe('CRI stats', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let podId = '';
  let busy = '';
  let mem = '';
  let podIp = '';
  let parent = '';

  before(async () => {
    w = await startPodWorld();
    d = w.d;
    parent = `${w.cgroupParent}/stats-pod`;
    const pod: v1.PodSandboxConfig = {
      metadata: { name: 'stats', namespace: 'e2e', uid: 'uid-stats', attempt: 0 },
      hostname: 'stats',
      log_directory: w.dir,
      labels: { app: 'stats' },
      linux: { cgroup_parent: parent },
    };
    ({ pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod }));
    const mk = async (name: string, command: string, extra: Partial<v1.ContainerConfig> = {}): Promise<string> => {
      const { container_id } = await d.client.createContainer({
        pod_sandbox_id: podId,
        config: { metadata: { name, attempt: 0 }, image: { image: w.image }, command: ['sh', '-c', command], log_path: `${name}.log`, labels: { role: name }, ...extra },
        sandbox_config: pod,
      });
      await d.client.startContainer({ container_id });
      return container_id;
    };
    busy = await mk('busy', 'while :; do :; done');
    // 12 MiB of the pod's /dev/shm (tmpfs pages, charged to this container's cgroup), then sleep.
    mem = await mk('mem', 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=12 2>/dev/null; exec sleep 3600', {
      linux: { resources: { memory_limit_in_bytes: String(LIMIT) } },
    });
    podIp = (await d.client.podSandboxStatus({ pod_sandbox_id: podId })).status?.network?.ip ?? '';
  });

  after(async () => {
    if (podId) await d?.client.removePodSandbox({ pod_sandbox_id: podId }).catch(() => undefined);
    await w?.close().catch(() => undefined);
    // Our nested pod cgroup parent: the world only removes its own (after this one is gone).
    for (const ctl of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      await rmdir(join('/sys/fs/cgroup', ctl, parent)).catch(() => undefined);
      await rmdir(join('/sys/fs/cgroup', ctl, w.cgroupParent)).catch(() => undefined);
    }
  });

  test('ContainerStats of a busy loop: cpu usage grows, and the second sample has usage_nano_cores', async (t) => {
    const a = (await d.client.containerStats({ container_id: busy })).stats!;
    assert.equal(a.attributes?.id, busy);
    assert.equal(a.attributes?.metadata?.name, 'busy');
    assert.deepEqual(a.attributes?.labels, { role: 'busy' });
    await sleep(1200);
    const b = (await d.client.containerStats({ container_id: busy.slice(0, 12) })).stats!;
    assert.ok(n(b.cpu?.usage_core_nano_seconds) > n(a.cpu?.usage_core_nano_seconds), 'cpu usage grows');
    assert.ok(BigInt(b.cpu!.timestamp) > BigInt(a.cpu!.timestamp), 'timestamps in ns, increasing');
    assert.ok(Math.abs(Number(BigInt(b.cpu!.timestamp) / 1_000_000n) - Date.now()) < 60_000, 'timestamp is ns since the epoch');
    const cores = n(b.cpu?.usage_nano_cores);
    assert.ok(cores > 0.2e9, `a busy loop uses a good part of a core: ${cores} nano-cores`);
    t.diagnostic(`busy loop: ${(cores / 1e9).toFixed(2)} cores`);
  });

  test('memory: working set within [1 MiB, limit], available = limit − working set, rss and page faults', async (t) => {
    const s = await waitFor('the memory container to fill', async () => {
      const r = (await d.client.containerStats({ container_id: mem })).stats!;
      return n(r.memory?.working_set_bytes) >= 8 * MiB ? r : undefined;
    });
    const ws = n(s.memory?.working_set_bytes);
    assert.ok(ws >= MiB && ws <= LIMIT, `working set ${ws}`);
    if (s.memory?.available_bytes) assert.equal(n(s.memory.available_bytes), LIMIT - ws, 'the limit is applied: available = limit − working set');
    assert.ok(n(s.memory?.usage_bytes) >= ws);
    t.diagnostic(`working set ${ws} B, available ${s.memory?.available_bytes?.value ?? 'unset (no limit applied)'}`);
    assert.ok(n(s.memory?.rss_bytes) > 0);
    assert.ok(n(s.memory?.page_faults) > 0);
  });

  test('the writable layer shows a file the test wrote in the container', async () => {
    const before = n((await d.client.containerStats({ container_id: mem })).stats!.writable_layer?.used_bytes);
    const ex = await d.client.execSync({ container_id: mem, cmd: ['sh', '-c', 'head -c 3000000 /dev/urandom > /stats-file && sync'], timeout: '20' });
    assert.equal(ex.exit_code, 0, Buffer.from(ex.stderr).toString());
    // Usage is walked in the background and kept a few seconds: wait for the new figure.
    const s = await waitFor('the written file in the writable layer', async () => {
      const r = (await d.client.containerStats({ container_id: mem })).stats!;
      return n(r.writable_layer?.used_bytes) >= before + 3_000_000 ? r : undefined;
    });
    assert.ok(n(s.writable_layer?.inodes_used) >= 2);
    assert.ok(s.writable_layer?.fs_id?.mountpoint.startsWith(d.root), 'the layers filesystem, under the root dir');
  });

  test('PodSandboxStats: pod cgroup cpu and memory, eth0 rx/tx grow after traffic to the pod, process count, both containers', async () => {
    assert.ok(podIp, 'the pod has an IP');
    const a = (await d.client.podSandboxStats({ pod_sandbox_id: podId })).stats!;
    await poke(podIp, 5);
    const b = (await d.client.podSandboxStats({ pod_sandbox_id: podId.slice(0, 10) })).stats!.linux!;
    const before = a.linux!.network!.default_interface!;
    const after = b.network!.default_interface!;
    assert.equal(after.name, 'eth0');
    assert.ok(n(after.rx_bytes) > n(before.rx_bytes), `rx grows: ${n(before.rx_bytes)} → ${n(after.rx_bytes)}`);
    assert.ok(n(after.tx_bytes) > n(before.tx_bytes), `tx grows: ${n(before.tx_bytes)} → ${n(after.tx_bytes)}`);
    assert.ok(b.network!.interfaces.some((i) => i.name === 'eth0'));
    assert.ok(!b.network!.interfaces.some((i) => i.name === 'lo'), 'loopback left out');
    assert.ok(n(b.cpu?.usage_core_nano_seconds) >= n(a.linux!.cpu?.usage_core_nano_seconds));
    assert.ok(n(b.memory?.working_set_bytes) >= 8 * MiB, 'the pod cgroup holds the memory container');
    assert.ok(n(b.process?.process_count) >= 2, `process count ${n(b.process?.process_count)}`);
    assert.deepEqual(b.containers.map((c) => c.attributes?.id).sort(), [busy, mem].sort());
  });

  test('filters: container id prefix, pod id, labels; pod id and labels', async (t) => {
    const byPod = await d.client.listContainerStats({ filter: { pod_sandbox_id: podId.slice(0, 8) } });
    assert.deepEqual(byPod.stats.map((s) => s.attributes?.id).sort(), [busy, mem].sort());
    const byLabel = await d.client.listContainerStats({ filter: { label_selector: { role: 'mem' } } });
    assert.deepEqual(byLabel.stats.map((s) => s.attributes?.id), [mem]);
    const byId = await d.client.listContainerStats({ filter: { id: busy.slice(0, 8), pod_sandbox_id: podId } });
    assert.deepEqual(byId.stats.map((s) => s.attributes?.id), [busy]);
    assert.deepEqual((await d.client.listContainerStats({ filter: { label_selector: { role: 'nope' } } })).stats, []);
    const pods = await d.client.listPodSandboxStats({ filter: { id: podId.slice(0, 8), label_selector: { app: 'stats' } } });
    assert.deepEqual(pods.stats.map((s) => s.attributes?.id), [podId]);
    assert.deepEqual((await d.client.listPodSandboxStats({ filter: { label_selector: { app: 'other' } } })).stats, []);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await d.client.listContainerStats({});
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    t.diagnostic(`ListContainerStats over the socket, 2 containers: p50 ${times[10].toFixed(2)} ms, p90 ${times[18].toFixed(2)} ms`);
  });

  test('ListMetricDescriptors and ListPodSandboxMetrics: cAdvisor names and labels for the pod and its containers', async () => {
    const { descriptors } = await d.client.listMetricDescriptors({});
    const keys = new Map(descriptors.map((x) => [x.name, x.label_keys]));
    assert.deepEqual(keys.get('container_memory_working_set_bytes'), ['container', 'id', 'image', 'name', 'namespace', 'pod']);
    assert.deepEqual(keys.get('container_network_receive_bytes_total'), ['container', 'id', 'image', 'name', 'namespace', 'pod', 'interface']);
    const { pod_metrics } = await d.client.listPodSandboxMetrics({});
    const ours = pod_metrics.find((p) => p.pod_sandbox_id === podId);
    assert.ok(ours, 'our pod is listed');
    const rx = ours.metrics.find((m) => m.name === 'container_network_receive_bytes_total' && m.label_values.at(-1) === 'eth0');
    assert.ok(rx && n(rx.value) > 0, 'pod network series');
    const memWs = ours.container_metrics.find((c) => c.container_id === mem)?.metrics.find((m) => m.name === 'container_memory_working_set_bytes');
    assert.ok(memWs, 'working set of the memory container');
    assert.deepEqual(memWs.label_values.slice(0, 1).concat(memWs.label_values.slice(3)), ['mem', mem, 'e2e', 'stats']);
    assert.equal(memWs.label_values[1], `${parent}/${mem}`, 'id is the cgroup path, as cAdvisor');
    for (const m of ours.metrics.concat(ours.container_metrics.flatMap((c) => c.metrics))) {
      assert.equal(m.label_values.length, keys.get(m.name)?.length, `${m.name} has a descriptor with as many keys`);
    }
  });

  test('bad input: unknown ids are NOT_FOUND naming them, a malformed id INVALID_ARGUMENT', async () => {
    const unknown = 'f'.repeat(64);
    await assert.rejects(d.client.containerStats({ container_id: unknown }), (e: ServiceError) => e.code === GrpcStatus.NOT_FOUND && e.details.includes(`container "${unknown}" not found`));
    await assert.rejects(d.client.podSandboxStats({ pod_sandbox_id: unknown }), (e: ServiceError) => e.code === GrpcStatus.NOT_FOUND && e.details.includes(`pod sandbox "${unknown}" not found`));
    await assert.rejects(d.client.containerStats({ container_id: '' }), code(GrpcStatus.INVALID_ARGUMENT));
    await assert.rejects(d.client.containerStats({ container_id: 'not-an-id!' }), code(GrpcStatus.INVALID_ARGUMENT));
    assert.deepEqual((await d.client.listContainerStats({ filter: { id: unknown } })).stats, [], 'a list filter matching nothing is empty');
  });

  test('skiff stats -o json and statsp over the real socket', async () => {
    const r = await d.cli(['stats', '-o', 'json', '--pod', podId]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { stats: { attributes: { id: string }; cpu?: { usageCoreNanoSeconds: { value: string } }; writableLayer: { fsId: { mountpoint: string } } }[] };
    assert.deepEqual(doc.stats.map((s) => s.attributes.id).sort(), [busy, mem].sort());
    assert.ok(Number(doc.stats.find((s) => s.attributes.id === busy)?.cpu?.usageCoreNanoSeconds.value) > 0);
    const t = await d.cli(['stats', '-s', '1', '--id', busy]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`^${busy.slice(0, 13)}\\s+busy\\s+\\d+\\.\\d\\d\\s`, 'm'));
    const p = await d.cli(['statsp', '-s', '1', podId]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`^stats\\s+${podId.slice(0, 13)}\\s+\\d+\\.\\d\\d\\s+\\S+B$`, 'm'));
  });

  test('a stopped container keeps its writable layer stats but has no cpu or memory; a stopped pod is not listed', async () => {
    await d.client.stopContainer({ container_id: busy, timeout: '0' });
    const s = (await d.client.containerStats({ container_id: busy })).stats!;
    assert.equal(s.cpu, null);
    assert.equal(s.memory, null);
    assert.ok(s.writable_layer?.used_bytes);
    await d.client.stopPodSandbox({ pod_sandbox_id: podId });
    await assert.rejects(d.client.podSandboxStats({ pod_sandbox_id: podId }), code(GrpcStatus.FAILED_PRECONDITION));
    assert.ok(!(await d.client.listPodSandboxStats({})).stats.some((p) => p.attributes?.id === podId));
  });
});
