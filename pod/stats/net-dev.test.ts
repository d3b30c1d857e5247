import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetDev } from './net-dev.js';

const TEXT = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 1828151569   59031    2    3    0     0          0         0  8424084   48020    4    5    0     0       0          0
  net1:12 1 0 0 0 0 0 0 34 2 0 0 0 0 0 0
`;

test('net/dev: every interface but loopback, with bytes, packets, errors and drops each way', () => {
  assert.deepEqual(parseNetDev(TEXT), [
    { name: 'eth0', rxBytes: 1828151569, rxPackets: 59031, rxErrors: 2, rxDropped: 3, txBytes: 8424084, txPackets: 48020, txErrors: 4, txDropped: 5 },
    { name: 'net1', rxBytes: 12, rxPackets: 1, rxErrors: 0, rxDropped: 0, txBytes: 34, txPackets: 2, txErrors: 0, txDropped: 0 },
  ]);
});

test('net/dev: malformed lines are skipped', () => {
  assert.deepEqual(parseNetDev('h1\nh2\n  bad line\n  eth0: 1 2 3\n'), []);
});
