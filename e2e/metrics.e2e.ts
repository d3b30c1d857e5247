// e2e: Prometheus metrics. skiffd serves /metrics on a loopback port of the test's choosing; a pod
// runs a container; the exposition is read directly (and checked by promtool) and then by a real
// Prometheus (Debian's) scraping skiffd every second, queried with PromQL over its HTTP API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as v1 from '../cri/gen/v1.js';
import { parseExposition, series, type Exposition } from '../metrics/exposition.js';
import { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';
import { freePort } from './harness/process.js';
import { promtoolCheck, startPrometheus, type QueryResult } from './harness/prometheus.js';

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(250);
  }
}

describe('Prometheus /metrics', () => {
  let w: PodWorld;
  let metricsUrl: string;
  let metricsPort: number;
  const podName = `metrics-${process.pid}`;
  let podId = '';
  let containerId = '';

  before(async () => {
    metricsPort = await freePort();
    w = await startPodWorld({ toml: () => `[metrics]\naddress = "127.0.0.1:${metricsPort}"\n` });
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const pod: v1.PodSandboxConfig = {
      metadata: { name: podName, namespace: 'e2e-metrics', uid: `uid-${podName}`, attempt: 0 },
      hostname: podName,
      log_directory: w.dir,
      linux: { cgroup_parent: w.cgroupParent },
    };
    ({ pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: pod }));
    // A few MiB kept in a shell variable: a working set well above zero. The command after sleep
    // keeps the shell (busybox sh execs a last command in place).
    const cmd = ['sh', '-c', 'x=$(head -c 4000000 /dev/zero | tr "\\0" a); sleep 3600; echo ${#x}'];
    ({ container_id: containerId } = await w.d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name: 'app', attempt: 0 }, image: { image: w.image }, command: cmd, log_path: 'app.log' },
      sandbox_config: pod,
    }));
    await w.d.client.startContainer({ container_id: containerId });
  });

  after(async () => {
    await w?.close();
  });

  async function scrape(): Promise<{ text: string; e: Exposition; type: string | null }> {
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    const text = await res.text();
    return { text, e: parseExposition(text), type: res.headers.get('content-type') };
  }

  test('/metrics serves the container series of a running container, runtime counters, and parses', async () => {
    const labels = { pod: podName, namespace: 'e2e-metrics', container: 'app', name: containerId };
    // The shell holds its 4 MB once it has read them: wait for a working set past 1 MiB.
    const { text, e, type } = await eventually('the container in /metrics, its 4 MB read', async () => {
      const s = await scrape();
      return (series(s.e, 'container_memory_working_set_bytes', labels)[0]?.value ?? 0) > 1 << 20 ? s : undefined;
    });
    assert.equal(type, 'text/plain; version=0.0.4; charset=utf-8');
    const ws = series(e, 'container_memory_working_set_bytes', labels);
    assert.equal(ws.length, 1);
    assert.ok(ws[0].value > 1 << 20, `working set ${ws[0].value} bytes`);
    assert.match(ws[0].labels.id, new RegExp(`${containerId}$`), 'id is the container cgroup');
    assert.match(ws[0].labels.image, /busybox/);
    assert.ok(series(e, 'container_cpu_usage_seconds_total', { ...labels, cpu: 'total' })[0].value > 0);
    for (const name of ['container_memory_rss', 'container_memory_usage_bytes', 'container_cpu_cfs_periods_total', 'container_cpu_cfs_throttled_periods_total', 'container_processes', 'container_start_time_seconds']) {
      assert.equal(series(e, name, labels).length, 1, name);
    }
    assert.ok(series(e, 'container_fs_usage_bytes', labels).length === 1);
    const rx = series(e, 'container_network_receive_bytes_total', { pod: podName, container: '', interface: 'eth0' });
    assert.equal(rx.length, 1, 'pod network series on eth0');
    assert.ok(series(e, 'skiff_cri_operations_total', { rpc: 'RunPodSandbox', code: 'OK' })[0].value >= 1);
    assert.ok(series(e, 'skiff_cri_operation_duration_seconds_count', { rpc: 'StartContainer', code: 'OK' })[0].value >= 1);
    assert.ok(series(e, 'skiff_image_pulls_total', { outcome: 'success' })[0].value >= 1);
    assert.ok(series(e, 'skiff_image_pull_bytes_total')[0].value > 0);
    assert.ok(series(e, 'skiff_containers', { state: 'running' })[0].value >= 1);
    assert.ok(series(e, 'skiff_pod_sandboxes', { state: 'ready' })[0].value >= 1);
    assert.ok(series(e, 'process_resident_memory_bytes')[0].value > 0);
    // Prometheus's own reader: only prom-client's standard nodejs_* names draw lint remarks.
    const check = await promtoolCheck(text);
    assert.ok(check.code === 0 || check.code === 3, `promtool: exit ${check.code}: ${check.problems.join('; ')}`);
    assert.deepEqual(check.problems.filter((p) => !p.startsWith('nodejs_')), []);
  });

  test('a real Prometheus scrapes skiffd and PromQL finds the pod\'s working set and the RunPodSandbox count', async () => {
    const prom = await startPrometheus([`127.0.0.1:${metricsPort}`]);
    try {
      await prom.waitForTargetsUp();
      const ws = await eventually('container_memory_working_set_bytes of the pod', async () => {
        const r = await prom.query(`container_memory_working_set_bytes{pod="${podName}",container="app"}`);
        return r.length > 0 ? r : undefined;
      });
      assert.equal(ws.length, 1);
      assert.equal(ws[0].metric.namespace, 'e2e-metrics');
      assert.equal(ws[0].metric.name, containerId);
      assert.equal(ws[0].metric.job, 'skiff');
      assert.ok(Number(ws[0].value[1]) > 0, `value ${ws[0].value[1]}`);
      const all: QueryResult[] = await prom.query(`container_memory_working_set_bytes{pod="${podName}"}`);
      assert.ok(all.length >= 1);
      const runs = await prom.query('sum(skiff_cri_operations_total{rpc="RunPodSandbox"})');
      assert.ok(Number(runs[0].value[1]) >= 1);
      const up = await prom.query('up{job="skiff"}');
      assert.equal(up[0].value[1], '1');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- prometheus log ---\n${await prom.log()}`, { cause: err });
    } finally {
      await prom.stop();
    }
  });

  test('scrapes within a second are served from one sample; a stopped container leaves /metrics', async () => {
    const [a, b] = await Promise.all([scrape(), scrape()]);
    const key = { pod: podName, container: 'app' };
    assert.deepEqual(series(a.e, 'container_cpu_usage_seconds_total', key), series(b.e, 'container_cpu_usage_seconds_total', key));
    await w.d.client.stopContainer({ container_id: containerId, timeout: '1' });
    await eventually('the stopped container to leave /metrics', async () =>
      series((await scrape()).e, 'container_memory_working_set_bytes', key).length === 0 ? true : undefined,
    );
    const s = await scrape();
    assert.equal(series(s.e, 'skiff_containers', { state: 'exited' })[0].value, 1);
  });

  test('[metrics] address = "off" serves no /metrics', async () => {
    const d = await TestDaemon.start({ toml: `[metrics]\naddress = "off"\n` });
    try {
      assert.match(await d.log(), /skiffd ready/);
      assert.doesNotMatch(await d.log(), /metrics server listening/);
    } finally {
      await d.cleanup();
    }
  });
});
