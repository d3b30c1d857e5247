// CNI results of every spec version read into one shape, malformed ones refused, and results
// converted between versions for prevResult.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertResult, parseCidr, parseResult, type CniResult } from './result.js';

type Want = Omit<CniResult, 'raw' | 'routes'> & { routes?: CniResult['routes'] };

const cases: { name: string; raw: Record<string, unknown>; fallback?: string; want: Want }[] = [
  {
    name: '0.2.0 ip4 and ip6 with routes and dns',
    raw: {
      cniVersion: '0.2.0',
      ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] },
      ip6: { ip: 'fd00::5/64' },
      dns: { nameservers: ['10.1.0.1'] },
    },
    want: {
      cniVersion: '0.2.0',
      ips: [
        { address: '10.1.0.5', prefixLen: 16, family: 4, gateway: '10.1.0.1' },
        { address: 'fd00::5', prefixLen: 64, family: 6 },
      ],
      interfaces: [],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.1.0.1'] },
    },
  },
  {
    name: '0.3.1 bridge result: version field, interface index into interfaces',
    raw: {
      cniVersion: '0.3.1',
      interfaces: [{ name: 'cni0', mac: '0a:58:0a:58:00:01' }, { name: 'veth1', mac: 'aa:bb:cc:dd:ee:ff' }, { name: 'eth0', mac: '0a:58:0a:58:00:05', sandbox: '/run/netns/x' }],
      ips: [{ version: '4', interface: 2, address: '10.88.0.5/16', gateway: '10.88.0.1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.88.0.1' }],
      dns: {},
    },
    want: {
      cniVersion: '0.3.1',
      ips: [{ address: '10.88.0.5', prefixLen: 16, family: 4, gateway: '10.88.0.1', interface: 'eth0' }],
      interfaces: [
        { name: 'cni0', mac: '0a:58:0a:58:00:01' },
        { name: 'veth1', mac: 'aa:bb:cc:dd:ee:ff' },
        { name: 'eth0', mac: '0a:58:0a:58:00:05', sandbox: '/run/netns/x' },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '10.88.0.1' }],
    },
  },
  {
    name: '0.4.0 dual stack',
    raw: {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', sandbox: '/n' }],
      ips: [
        { version: '4', interface: 0, address: '10.0.0.2/24' },
        { version: '6', interface: 0, address: '2001:db8::2/64', gateway: '2001:db8::1' },
      ],
    },
    want: {
      cniVersion: '0.4.0',
      ips: [
        { address: '10.0.0.2', prefixLen: 24, family: 4, interface: 'eth0' },
        { address: '2001:db8::2', prefixLen: 64, family: 6, gateway: '2001:db8::1', interface: 'eth0' },
      ],
      interfaces: [{ name: 'eth0', sandbox: '/n' }],
    },
  },
  {
    name: '1.0.0 without ips[].version, dns with search and options',
    raw: {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', sandbox: '/n' }],
      ips: [{ interface: 0, address: '192.0.2.9/32' }],
      dns: { nameservers: ['192.0.2.53'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] },
    },
    want: {
      cniVersion: '1.0.0',
      ips: [{ address: '192.0.2.9', prefixLen: 32, family: 4, interface: 'eth0' }],
      interfaces: [{ name: 'eth0', sandbox: '/n' }],
      dns: { nameservers: ['192.0.2.53'], domain: 'cluster.local', search: ['svc.cluster.local'], options: ['ndots:5'] },
    },
  },
  {
    name: '1.1.0 with interface mtu and route attributes',
    raw: {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', sandbox: '/n', mtu: 1450, socketPath: '/s', pciID: '0000:00:01.0' }],
      ips: [{ interface: 0, address: '10.9.0.3/24', gateway: '10.9.0.1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.9.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }],
    },
    want: {
      cniVersion: '1.1.0',
      ips: [{ address: '10.9.0.3', prefixLen: 24, family: 4, gateway: '10.9.0.1', interface: 'eth0' }],
      interfaces: [{ name: 'eth0', sandbox: '/n', mtu: 1450 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.9.0.1' }],
    },
  },
  {
    name: 'a result naming no version is read in the config version; an IPAM-style result has no interfaces',
    raw: { ips: [{ address: '10.0.0.7/8' }] },
    fallback: '1.0.0',
    want: { cniVersion: '1.0.0', ips: [{ address: '10.0.0.7', prefixLen: 8, family: 4 }], interfaces: [] },
  },
];

for (const c of cases) {
  test(`parseResult: ${c.name}`, () => {
    const got = parseResult(c.raw, c.fallback ?? '1.0.0');
    const { raw, ...rest } = got;
    assert.equal(raw, c.raw, 'raw is the result as printed');
    assert.deepEqual(rest, { routes: [], ...c.want });
  });
}

test('parseResult refuses malformed results with the reason', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.300/24' }] }, /invalid address "10\.0\.0\.300\/24"/],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.3' }] }, /invalid address/],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.3/33' }] }, /invalid address/],
    [{ cniVersion: '1.0.0', ips: [{}] }, /ips\[0\] has no address/],
    [{ cniVersion: '1.0.0', ips: {} }, /ips is not a list/],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.3/24', interface: 4 }] }, /interface 4 is not in interfaces/],
    [{ cniVersion: '1.0.0', interfaces: [{ mac: 'x' }] }, /interfaces\[0\] has no name/],
    [{ cniVersion: '1.0.0', routes: [{ gw: '1.2.3.4' }] }, /routes\[0\] has no dst/],
    [{ cniVersion: '1.0.0', dns: { nameservers: 'x' } }, /dns.nameservers is not a list of strings/],
    [{ cniVersion: '0.2.0', ip4: { gateway: '1.2.3.4' } }, /ip4 has no ip/],
  ];
  for (const [raw, msg] of bad) assert.throws(() => parseResult(raw, '1.0.0'), msg, JSON.stringify(raw));
});

test('parseCidr', () => {
  assert.deepEqual(parseCidr('10.0.0.1/32'), { address: '10.0.0.1', prefixLen: 32, family: 4 });
  assert.deepEqual(parseCidr('::/0'), { address: '::', prefixLen: 0, family: 6 });
  assert.throws(() => parseCidr('fd00::1/129'));
  assert.throws(() => parseCidr('hello/8'));
  assert.throws(() => parseCidr('10.0.0.1/'));
});

test('convertResult: ips[].version added for 0.3.x/0.4.0, dropped from 1.0.0 on; other fields kept', () => {
  const v1 = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: 'fd00::2/64', interface: 0 }, { address: '10.0.0.2/24' }], dns: {} };
  assert.deepEqual(convertResult(v1, '0.4.0'), {
    cniVersion: '0.4.0',
    interfaces: [{ name: 'eth0' }],
    ips: [{ version: '6', address: 'fd00::2/64', interface: 0 }, { version: '4', address: '10.0.0.2/24' }],
    dns: {},
  });
  const v04 = { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24' }], routes: [{ dst: '0.0.0.0/0' }] };
  assert.deepEqual(convertResult(v04, '1.1.0'), { cniVersion: '1.1.0', ips: [{ address: '10.0.0.2/24' }], routes: [{ dst: '0.0.0.0/0' }] });
  assert.deepEqual(convertResult(v04, '0.4.0'), v04, 'same version: equal');
  assert.notEqual(convertResult(v04, '0.4.0'), v04, 'a copy, the cached result is never changed');
});

test('convertResult: a 0.2.0 result becomes the list form; targets before 0.3.0 are left alone', () => {
  const v02 = { cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24', gateway: '10.0.0.1', routes: [{ dst: '0.0.0.0/0' }] }, dns: { nameservers: ['1.1.1.1'] } };
  assert.deepEqual(convertResult(v02, '0.3.1'), {
    cniVersion: '0.3.1',
    interfaces: [],
    ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1' }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: ['1.1.1.1'] },
  });
  assert.equal(convertResult(v02, '0.2.0'), v02);
});
