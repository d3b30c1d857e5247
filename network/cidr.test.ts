// IP text ↔ BigInt and CIDR arithmetic, table-driven.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, cidrContains, cidrsOverlap, formatCidr, formatIp, lastAddress, parseCidr, parseIp } from './cidr.js';

test('parseIp and formatIp round-trip to the canonical spelling', () => {
  const cases: [string, string | undefined][] = [
    ['10.88.0.1', '10.88.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['010.0.0.1', undefined],
    ['10.0.0', undefined],
    ['::', '::'],
    ['::1', '::1'],
    ['FD00:0088:0000:0000:0000:0000:0000:0002', 'fd00:88::2'],
    ['fd00:88::', 'fd00:88::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // RFC 5952 4.2.3: the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // RFC 5952 4.2.2: one zero group stays
    ['::ffff:10.1.2.3', '::ffff:a01:203'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['fe80::1%eth0', undefined],
    ['1::2::3', undefined],
    ['bogus', undefined],
  ];
  for (const [text, want] of cases) assert.equal(canonicalIp(text), want, text);
});

test('parseIp values', () => {
  assert.deepEqual(parseIp('10.0.0.1'), { family: 4, value: 0x0a000001n });
  assert.deepEqual(parseIp('::1'), { family: 6, value: 1n });
  assert.equal(formatIp(6, (1n << 128n) - 1n), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
});

test('parseCidr: network, prefix, host bits, last address', () => {
  const c = parseCidr('10.88.0.0/16')!;
  assert.equal(formatCidr(c), '10.88.0.0/16');
  assert.equal(c.hostBits, false);
  assert.equal(formatIp(4, lastAddress(c)), '10.88.255.255');
  assert.equal(parseCidr('10.88.0.5/16')!.hostBits, true);
  assert.equal(formatCidr(parseCidr('fd00:88:0::/64')!), 'fd00:88::/64');
  assert.equal(formatIp(6, lastAddress(parseCidr('fd00:88::/64')!)), 'fd00:88::ffff:ffff:ffff:ffff');
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10.0.0.300/8', 'fd00::/129', '/8', 'x/8']) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});

test('cidrContains and cidrsOverlap', () => {
  const c = parseCidr('10.88.0.0/16')!;
  assert.ok(cidrContains(c, parseIp('10.88.255.1')!));
  assert.ok(!cidrContains(c, parseIp('10.89.0.1')!));
  assert.ok(!cidrContains(c, parseIp('::a58:1')!));
  assert.ok(cidrsOverlap(c, parseCidr('10.88.3.0/24')!));
  assert.ok(cidrsOverlap(parseCidr('10.0.0.0/8')!, c));
  assert.ok(!cidrsOverlap(c, parseCidr('10.89.0.0/16')!));
});
