import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostIfName, natNames } from './service.js';

test('hostIfName: "skiff" + 10 hex of the sandbox id, within IFNAMSIZ', () => {
  const id = '0123456789abcdef'.repeat(4);
  assert.equal(hostIfName(id), 'skiff0123456789');
  assert.equal(hostIfName(id).length, 15);
});

test('natNames: the default bridge gets the plain names; any other its own, short enough for iptables', () => {
  assert.deepEqual(natNames('skiff0'), { table: 'skiff', chainPrefix: 'SKIFF' });
  const a = natNames('skt00aa11');
  const b = natNames('skt00aa12');
  assert.notDeepEqual(a, b);
  assert.match(a.table, /^skiff_[0-9a-f]{8}$/);
  assert.match(a.chainPrefix, /^SK[0-9A-F]{8}$/);
  // iptables chain names are at most 28 characters; the longest of skiff's is PREFIX-POSTROUTING.
  assert.ok(`${a.chainPrefix}-POSTROUTING`.length <= 28);
  assert.deepEqual(natNames('skt00aa11'), a, 'stable');
});
