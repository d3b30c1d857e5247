// Address text ⇄ bytes, table-driven.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { broadcast4, formatIp, formatMac, isUnicastMac, parseCidr, parseIp, parseMac, randomMac, samePrefix } from './ip.js';

void test('parseIp and formatIp round trip to the canonical spelling', () => {
  const cases: [string, string, string][] = [
    ['10.88.0.1', '0a580001', '10.88.0.1'],
    ['0.0.0.0', '00000000', '0.0.0.0'],
    ['fd00:88::1', 'fd000088000000000000000000000001', 'fd00:88::1'],
    ['::', '00000000000000000000000000000000', '::'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['1::', '00010000000000000000000000000000', '1::'],
    ['FD33:0:0:7::B', 'fd33000000000007000000000000000b', 'fd33:0:0:7::b'],
    ['1:0:0:2:0:0:0:3', '00010000000000020000000000000003', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    ['::ffff:10.1.2.3', '00000000000000000000ffff0a010203', '::ffff:a01:203'],
    ['64:ff9b::1.2.3.4', '0064ff9b000000000000000001020304', '64:ff9b::102:304'],
  ];
  for (const [text, bytes, canonical] of cases) {
    const p = parseIp(text);
    assert.ok(p, text);
    assert.equal(p.bytes.toString('hex'), bytes, text);
    assert.equal(formatIp(p.bytes), canonical, text);
  }
  for (const bad of ['', '10.0.0', '10.0.0.256', '1::2::3', 'fe80::1%eth0', 'x', '10.0.0.1/8']) assert.equal(parseIp(bad), undefined, bad);
});

void test('parseCidr keeps the address as written and checks the prefix length', () => {
  assert.deepEqual(parseCidr('10.88.0.1/16'), { family: 4, bytes: Buffer.from([10, 88, 0, 1]), address: '10.88.0.1', prefixLen: 16 });
  assert.equal(parseCidr('fd00:88:0::1/64')?.address, 'fd00:88::1');
  for (const bad of ['10.0.0.1', '10.0.0.1/33', 'fd00::/129', '10.0.0.1/', '/8', '10.0.0.1/1a']) assert.equal(parseCidr(bad), undefined, bad);
});

void test('broadcast4 and samePrefix', () => {
  assert.equal(formatIp(broadcast4(parseIp('10.88.3.1')!.bytes, 16)), '10.88.255.255');
  assert.equal(formatIp(broadcast4(parseIp('10.88.3.1')!.bytes, 30)), '10.88.3.3');
  assert.equal(formatIp(broadcast4(parseIp('10.88.3.1')!.bytes, 0)), '255.255.255.255');
  const b = (s: string): Buffer => parseIp(s)!.bytes;
  assert.ok(samePrefix(b('10.88.0.1'), b('10.88.255.3'), 16));
  assert.ok(!samePrefix(b('10.88.0.1'), b('10.89.0.1'), 16));
  assert.ok(samePrefix(b('10.88.0.1'), b('10.88.0.7'), 29));
  assert.ok(!samePrefix(b('10.88.0.1'), b('10.88.0.9'), 29));
  assert.ok(!samePrefix(b('10.88.0.1'), b('fd00::1'), 0));
});

void test('MAC addresses: parse, format, random ones are unicast and locally administered', () => {
  assert.equal(parseMac('02:AA:bb:0c:dd:ee')?.toString('hex'), '02aabb0cddee');
  for (const bad of ['02:aa:bb:cc:dd', '02-aa-bb-cc-dd-ee', '02:aa:bb:cc:dd:eg', '']) assert.equal(parseMac(bad), undefined, bad);
  assert.equal(formatMac(Buffer.from([2, 0, 0, 0, 0x0a, 0xff])), '02:00:00:00:0a:ff');
  for (let i = 0; i < 50; i++) {
    const mac = parseMac(randomMac())!;
    assert.ok(isUnicastMac(mac));
    assert.equal(mac[0] & 0x02, 0x02);
  }
  assert.ok(!isUnicastMac(Buffer.alloc(6)));
  assert.ok(!isUnicastMac(Buffer.from([1, 0, 0x5e, 0, 0, 1])));
});
