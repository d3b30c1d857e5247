import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, Gauge } from 'prom-client';
import { isSkiffError } from '../common/errors.js';
import { MetricsServer, parseListenAddress } from './server.js';
import { parseExposition, series } from './exposition.js';

async function served(t: { after: (fn: () => Promise<void>) => void }, registry = new Registry()): Promise<MetricsServer> {
  const s = new MetricsServer(registry, '127.0.0.1:0');
  await s.start();
  t.after(() => s.stop());
  return s;
}

test('GET /metrics answers the registry in the Prometheus text format', async (t) => {
  const registry = new Registry();
  new Gauge({ name: 'test_gauge', help: 'a test gauge', labelNames: ['x'], registers: [registry] }).set({ x: 'a"b' }, 3);
  const s = await served(t, registry);
  const res = await fetch(s.url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const e = parseExposition(await res.text());
  assert.equal(series(e, 'test_gauge', { x: 'a"b' })[0].value, 3);
  const head = await fetch(s.url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
});

test('/healthz answers ok; other paths 404; other methods 405', async (t) => {
  const s = await served(t);
  const base = new URL(s.url);
  const health = await fetch(new URL('/healthz', base));
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok\n');
  for (const path of ['/', '/metrics/', '/debug/pprof', '/metricsx']) {
    const r = await fetch(new URL(path, base));
    assert.equal(r.status, 404, path);
    await r.body?.cancel();
  }
  const post = await fetch(s.url, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  await post.body?.cancel();
  // A query string is not part of the path.
  const q = await fetch(s.url + '?name[]=x');
  assert.equal(q.status, 200);
  await q.body?.cancel();
});

test('a collector that fails makes the scrape answer 500, and the server keeps serving', async (t) => {
  const registry = new Registry();
  let fail = true;
  new Gauge({
    name: 'test_flaky',
    help: 'fails on cue',
    registers: [registry],
    collect() {
      if (fail) throw new Error('collector broke');
      this.set(1);
    },
  });
  const s = await served(t, registry);
  const bad = await fetch(s.url);
  assert.equal(bad.status, 500);
  assert.match(await bad.text(), /collector broke/);
  fail = false;
  assert.equal((await fetch(s.url)).status, 200);
});

test('stop closes kept-alive connections and the port', async () => {
  const s = new MetricsServer(new Registry(), '127.0.0.1:0');
  await s.start();
  const url = s.url;
  await (await fetch(url)).text();
  await s.stop();
  await assert.rejects(fetch(url));
  await s.stop(); // idempotent
});

test('listen addresses are host:port or [v6]:port', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9105'), { host: '127.0.0.1', port: 9105 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListenAddress('localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['', '9105', ':9105', '127.0.0.1', '127.0.0.1:99999', 'a b:1', '[::1:1']) {
    assert.throws(() => parseListenAddress(bad), (e: unknown) => isSkiffError(e, 'SKIFF_CONFIG_INVALID'), bad);
  }
});
