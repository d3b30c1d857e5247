import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Status } from '../common/errors.js';
import { createMetrics } from './registry.js';
import { CONTAINER_METRIC_NAMES } from './container-metrics.js';
import { parseExposition, series } from './exposition.js';
import { FakeSampleSource, FakeStates, containerLabels, fullContainerSample } from './fake-source.js';
import type { Sample } from './source.js';

const BASE = ['container', 'id', 'image', 'name', 'namespace', 'pod'];

function world(sample: Sample = { containers: [], pods: [] }) {
  const src = new FakeSampleSource(sample);
  const states = new FakeStates();
  const m = createMetrics({ samples: src, states }, { minIntervalMs: 0 });
  const scrape = async () => parseExposition(await m.metrics());
  return { src, states, m, scrape };
}

test('every container_* family is exposed with kubelet cadvisor labels and the right type', async () => {
  const podLabels = { ...containerLabels('web', '', ''), id: '/kubepods/pod-web', image: '', name: '' };
  const { scrape } = world({
    containers: [fullContainerSample('web', 'app')],
    pods: [{ labels: podLabels, memoryWorkingSetBytes: 7 << 20, interfaces: [{ name: 'eth0', rxBytes: 1234, rxPackets: 10, rxErrors: 0, rxDropped: 0, txBytes: 567, txPackets: 5, txErrors: 1, txDropped: 0 }] }],
  });
  const e = await scrape();
  for (const name of CONTAINER_METRIC_NAMES) {
    const s = series(e, name);
    assert.ok(s.length > 0, `${name} has a series`);
    for (const l of BASE) assert.ok(l in s[0].labels, `${name} has label ${l}`);
    assert.equal(e.types.get(name), name.endsWith('_total') ? 'counter' : 'gauge', name);
  }
  const match = { pod: 'web', namespace: 'ns', container: 'app', name: 'web-app-id', id: '/kubepods/pod-web/web-app-id', image: 'docker.io/library/busybox:1.36' };
  assert.deepEqual(series(e, 'container_cpu_usage_seconds_total', match).map((s) => [s.labels.cpu, s.value]), [['total', 1.5]]);
  assert.equal(series(e, 'container_memory_working_set_bytes', match)[0].value, 6 << 20);
  assert.equal(series(e, 'container_memory_rss', match)[0].value, 4 << 20);
  assert.equal(series(e, 'container_cpu_cfs_throttled_periods_total', match)[0].value, 7);
  assert.equal(series(e, 'container_fs_usage_bytes', { ...match, device: '/var/lib/skiff' })[0].value, 4096);
  assert.deepEqual(
    series(e, 'container_memory_failures_total', { ...match, scope: 'container' }).map((s) => [s.labels.failure_type, s.labels.scope, s.value]),
    [
      ['pgfault', 'container', 1000],
      ['pgmajfault', 'container', 3],
    ],
  );
  const rx = series(e, 'container_network_receive_bytes_total', { pod: 'web', container: '', interface: 'eth0' });
  assert.equal(rx.length, 1);
  assert.equal(rx[0].value, 1234);
  assert.equal(series(e, 'container_network_transmit_bytes_total', { pod: 'web', interface: 'eth0' })[0].value, 567);
  assert.equal(series(e, 'container_memory_working_set_bytes', { pod: 'web', container: '', id: '/kubepods/pod-web' })[0].value, 7 << 20, 'the pod cgroup');
  assert.equal(series(e, 'container_spec_memory_limit_bytes', match)[0].value, 64 << 20);
  assert.equal(series(e, 'container_scrape_error')[0].value, 0);
  assert.ok(series(e, 'skiff_container_sample_duration_seconds')[0].value >= 0);
});

test('a number the sampler could not read has no series; a removed container disappears', async () => {
  const partial = { labels: containerLabels('p', 'c'), memoryWorkingSetBytes: 100 };
  const { src, scrape } = world({ containers: [partial, fullContainerSample('p', 'd')], pods: [] });
  let e = await scrape();
  assert.equal(series(e, 'container_memory_working_set_bytes').length, 2);
  assert.equal(series(e, 'container_cpu_usage_seconds_total').length, 1);
  src.current = { containers: [fullContainerSample('p', 'd')], pods: [] };
  e = await scrape();
  assert.deepEqual(
    series(e, 'container_memory_working_set_bytes').map((s) => s.labels.container),
    ['d'],
  );
});

test('label values are escaped as the text format wants', async () => {
  const odd = { ...fullContainerSample('p', 'c'), labels: { ...containerLabels('p', 'c'), image: 'reg\\x/"quoted"\nimage' } };
  const e = parseExposition(await world({ containers: [odd], pods: [] }).m.metrics());
  assert.equal(series(e, 'container_memory_rss')[0].labels.image, 'reg\\x/"quoted"\nimage');
});

test('a failing sampler sets container_scrape_error and keeps the last values', async () => {
  const { src, scrape } = world({ containers: [fullContainerSample('p', 'c')], pods: [] });
  await scrape();
  src.failWith = new Error('boom');
  const e = await scrape();
  assert.equal(series(e, 'container_scrape_error')[0].value, 1);
  assert.equal(series(e, 'container_memory_rss').length, 1);
});

test('concurrent scrapes read the containers once and agree', async () => {
  const { src, m } = world({ containers: [fullContainerSample('p', 'c')], pods: [] });
  src.delayMs = 20;
  const texts = await Promise.all(Array.from({ length: 8 }, () => m.metrics()));
  assert.equal(src.reads, 1);
  for (const t of texts) assert.equal(series(parseExposition(t), 'container_memory_rss').length, 1);
});

test('CRI calls are counted and timed by rpc and code; pulls by outcome; states counted at scrape time', async () => {
  const { m, states, scrape } = world();
  m.runtime.onCall('RuntimeService/RunPodSandbox', Status.OK, 0.02);
  m.runtime.onCall('RuntimeService/RunPodSandbox', Status.OK, 0.03);
  m.runtime.onCall('RuntimeService/ContainerStatus', Status.NOT_FOUND, 0.0005);
  m.runtime.onPull({ ok: true, seconds: 1.2, bytes: 2_000_000 });
  m.runtime.onPull({ ok: false, seconds: 0.3, bytes: 0 });
  states.sandboxes = ['ready', 'ready', 'notready'];
  states.containers = ['running', 'created', 'running'];
  const e = await scrape();
  assert.equal(series(e, 'skiff_cri_operations_total', { rpc: 'RunPodSandbox', code: 'OK' })[0].value, 2);
  assert.equal(series(e, 'skiff_cri_operations_total', { rpc: 'ContainerStatus', code: 'NOT_FOUND' })[0].value, 1);
  assert.equal(e.types.get('skiff_cri_operation_duration_seconds'), 'histogram');
  assert.equal(series(e, 'skiff_cri_operation_duration_seconds_count', { rpc: 'RunPodSandbox', code: 'OK' })[0].value, 2);
  assert.equal(series(e, 'skiff_cri_operation_duration_seconds_bucket', { rpc: 'RunPodSandbox', code: 'OK', le: '0.025' })[0].value, 1);
  assert.equal(series(e, 'skiff_image_pulls_total', { outcome: 'success' })[0].value, 1);
  assert.equal(series(e, 'skiff_image_pulls_total', { outcome: 'failure' })[0].value, 1);
  assert.equal(series(e, 'skiff_image_pull_bytes_total')[0].value, 2_000_000);
  assert.equal(series(e, 'skiff_image_pull_duration_seconds_count', { outcome: 'success' })[0].value, 1);
  assert.equal(series(e, 'skiff_pod_sandboxes', { state: 'ready' })[0].value, 2);
  assert.equal(series(e, 'skiff_pod_sandboxes', { state: 'notready' })[0].value, 1);
  assert.equal(series(e, 'skiff_containers', { state: 'running' })[0].value, 2);
  assert.equal(series(e, 'skiff_containers', { state: 'exited' })[0].value, 0, 'known states always have a series');
  states.containers = [];
  assert.equal(series(await scrape(), 'skiff_containers', { state: 'running' })[0].value, 0);
});

test('default process and nodejs metrics keep prom-client standard names', async () => {
  const e = await world().scrape();
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
    assert.ok(series(e, name).length > 0, name);
  }
});
