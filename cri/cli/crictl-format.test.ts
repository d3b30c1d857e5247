// The pure pieces of crictl's output and filters that the pod and container commands share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ago, goTime, humanDuration, rfc3339Nano } from './commands/times.js';
import { goMap, mapLines } from './commands/status.js';
import { newestFirst, parseLabels } from './commands/filters.js';

void test('humanDuration matches go-units HumanDuration', () => {
  const S = 1000;
  const H = 3600 * S;
  const cases: [number, string][] = [
    [999, 'Less than a second'],
    [1 * S, '1 second'],
    [59 * S, '59 seconds'],
    [60 * S, 'About a minute'],
    [119 * S, 'About a minute'],
    [59 * 60 * S, '59 minutes'],
    [60 * 60 * S, 'About an hour'],
    [89 * 60 * S, 'About an hour'],
    [91 * 60 * S, '2 hours'],
    [47 * H, '47 hours'],
    [48 * H, '2 days'],
    [14 * 24 * H, '2 weeks'],
    [60 * 24 * H, '2 months'],
    [2 * 365 * 24 * H, '2 years'],
  ];
  for (const [ms, text] of cases) assert.equal(humanDuration(ms), text, String(ms));
  assert.equal(ago(BigInt(Date.parse('2024-01-01T00:00:00Z')) * 1_000_000n, Date.parse('2024-01-01T00:05:30Z')), '5 minutes ago');
});

void test('CRI nanosecond times in Go\'s RFC3339Nano and %v forms, trailing zeros trimmed', () => {
  assert.equal(rfc3339Nano('1700000000000000000'), '2023-11-14T22:13:20Z');
  assert.equal(rfc3339Nano('1700000000000000100'), '2023-11-14T22:13:20.0000001Z');
  assert.equal(rfc3339Nano('0'), '1970-01-01T00:00:00Z');
  assert.equal(goTime('1700000000500000000'), '2023-11-14 22:13:20.5 +0000 UTC');
});

void test('maps print as Go does, and as crictl\'s Labels: blocks', () => {
  assert.equal(goMap({ b: '2', a: '1' }), 'map[a:1 b:2]');
  assert.equal(goMap({}), 'map[]');
  assert.equal(mapLines('Labels', { b: '2', a: '1' }), 'Labels:\n\ta -> 1\n\tb -> 2\n');
  assert.equal(mapLines('Labels', {}), '');
});

void test('labels need exactly one =, and -l/-n cut the newest-first list', () => {
  assert.deepEqual(parseLabels(['a=1', 'b=']), { a: '1', b: '' });
  assert.throws(() => parseLabels(['a=1=2']), /incorrectly specified label: a=1=2/);
  const items = [{ created_at: '2' }, { created_at: '30' }, { created_at: '10' }];
  assert.deepEqual(newestFirst(items, false, 0).map((i) => i.created_at), ['30', '10', '2']);
  assert.deepEqual(newestFirst(items, true, 0).map((i) => i.created_at), ['30']);
  assert.deepEqual(newestFirst(items, true, 2).map((i) => i.created_at), ['30', '10'], '--last wins over --latest, as in crictl');
  assert.deepEqual(newestFirst(items, false, 9).length, 3);
});
