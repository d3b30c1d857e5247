import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SampleCache } from './sample-cache.js';
import { FakeSampleSource, fullContainerSample } from './fake-source.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('a sample younger than the interval is served without a read', async () => {
  const src = new FakeSampleSource({ containers: [fullContainerSample('a', 'c')], pods: [] });
  const c = clock();
  const cache = new SampleCache(src, { minIntervalMs: 1000, now: c.now });
  const first = await cache.get();
  assert.equal(first.sample.containers.length, 1);
  c.advance(999);
  assert.equal((await cache.get()).generation, first.generation);
  assert.equal(src.reads, 1);
  c.advance(1);
  src.current = { containers: [], pods: [] };
  const second = await cache.get();
  assert.equal(src.reads, 2);
  assert.notEqual(second.generation, first.generation);
  assert.equal(second.sample.containers.length, 0);
});

test('concurrent scrapes share one read', async () => {
  const src = new FakeSampleSource();
  src.delayMs = 30;
  const cache = new SampleCache(src, { minIntervalMs: 0 });
  const results = await Promise.all(Array.from({ length: 20 }, () => cache.get()));
  assert.equal(src.reads, 1);
  assert.ok(results.every((r) => r === results[0]));
});

test('a failed read serves the last good sample, flagged, and is not retried within the interval', async () => {
  const src = new FakeSampleSource({ containers: [fullContainerSample('a', 'c')], pods: [] });
  const c = clock();
  const cache = new SampleCache(src, { minIntervalMs: 1000, now: c.now });
  const good = await cache.get();
  c.advance(1000);
  src.failWith = new Error('cgroup gone');
  const bad = await cache.get();
  assert.equal(bad.ok, false);
  assert.equal(bad.generation, good.generation);
  assert.equal(bad.sample.containers.length, 1);
  assert.equal((await cache.get()).ok, false);
  assert.equal(src.reads, 2);
  c.advance(1000);
  src.failWith = undefined;
  assert.equal((await cache.get()).ok, true);
});

test('a read that hangs is abandoned after the timeout and aborted', async () => {
  const src = new FakeSampleSource();
  src.hang = true;
  const cache = new SampleCache(src, { minIntervalMs: 0, timeoutMs: 50 });
  const t0 = performance.now();
  const r = await cache.get();
  assert.equal(r.ok, false);
  assert.deepEqual(r.sample, { containers: [], pods: [] });
  assert.ok(performance.now() - t0 < 1000);
});
