import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuRates } from './cpu-rate.js';

const S = 1_000_000_000n;

test('the first sample of an id has no rate; the next one a second later has usage over wall time', () => {
  const r = new CpuRates();
  assert.equal(r.rate('c', 0n, 10n * S), undefined);
  assert.equal(r.rate('c', S / 2n, 11n * S), 500_000_000, 'half a core');
  assert.equal(r.rate('c', S / 2n + 2n * S, 12n * S), 2_000_000_000, 'two cores');
});

test('a caller polling faster than a second gets a rate over the last full-second window', () => {
  const r = new CpuRates();
  r.rate('c', 0n, 0n);
  assert.equal(r.rate('c', S / 10n, S / 10n), 1_000_000_000, 'a short window only while there is no older base');
  r.rate('c', S, S); // becomes the base: one second after the first
  // 100 ms later: measured against the base of one second before that (0 s), not the 100 ms window.
  assert.equal(r.rate('c', S + S / 10n, S + S / 10n), 1_000_000_000);
});

test('a counter that goes backwards (a new cgroup under the id) starts over', () => {
  const r = new CpuRates();
  r.rate('c', 5n * S, 0n);
  assert.equal(r.rate('c', S, 2n * S), undefined);
  assert.equal(r.rate('c', 2n * S, 3n * S), 1_000_000_000);
});

test('ids not sampled for ten minutes are forgotten', () => {
  const r = new CpuRates();
  r.rate('old', 0n, 0n);
  r.rate('new', 0n, 600n * S);
  r.prune(601n * S);
  assert.equal(r.rate('old', S, 602n * S), undefined, 'old had to start over');
  assert.equal(r.rate('new', 2n * S, 602n * S), 1_000_000_000);
});
