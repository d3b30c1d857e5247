// The built-in network's IPAM against a real directory: allocation, idempotence, exhaustion,
// concurrency, restart, reclaim, dual-stack rollback and config validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejectsWith } from '../common/assert-error.js';
import { Ipam, type IpamRange } from './ipam.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-ipam-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('allocate gives one address per family, skipping network and gateway; the gateway defaults to the first host', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/16' }, { subnet: 'fd00:88::/64' }] });
    assert.deepEqual(await ipam.allocate('a'), [
      { address: '10.88.0.2', prefixLen: 16, gateway: '10.88.0.1', family: 4 },
      { address: 'fd00:88::2', prefixLen: 64, gateway: 'fd00:88::1', family: 6 },
    ]);
    assert.deepEqual(
      ipam.gateways().map((g) => g.address),
      ['10.88.0.1', 'fd00:88::1'],
    );
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ['10.88.0.2', 'fd00:88::2', 'last_reserved_ip.ipv4', 'last_reserved_ip.ipv6']);
    assert.deepEqual(JSON.parse(await readFile(join(dir, '10.88.0.2'), 'utf8')), {
      version: 1,
      sandboxId: 'a',
      address: '10.88.0.2',
      prefixLen: 16,
      gateway: '10.88.0.1',
    });
  }));

test('allocate of the same sandbox twice returns the same addresses', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/24' }, { subnet: 'fd00:88::/64' }] });
    const first = await ipam.allocate('a');
    const [again, concurrent] = await Promise.all([ipam.allocate('a'), ipam.allocate('a')]);
    assert.deepEqual(again, first);
    assert.deepEqual(concurrent, first);
    assert.equal((await ipam.allocations()).length, 1);
  }));

test('a configured gateway and range are honoured; the gateway is never handed out', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/24', gateway: '10.88.0.11', rangeStart: '10.88.0.10', rangeEnd: '10.88.0.12' }] });
    const got = [await ipam.allocate('a'), await ipam.allocate('b')].map((r) => r[0]);
    assert.deepEqual(
      got.map((a) => [a.address, a.gateway]),
      [
        ['10.88.0.10', '10.88.0.11'],
        ['10.88.0.12', '10.88.0.11'],
      ],
    );
    await rejectsWith(ipam.allocate('c'), 'SKIFF_NETWORK_EXHAUSTED', 'no free IPv4 address in 10.88.0.0/24 (10.88.0.10-10.88.0.12): 2 of 2 in use');
  }));

test('a released address is not reused at once: the cursor moves on and wraps around', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/29' }] }); // .2-.6
    assert.equal((await ipam.allocate('a'))[0].address, '10.88.0.2');
    await ipam.release('a');
    assert.equal((await ipam.allocate('b'))[0].address, '10.88.0.3');
    for (const id of ['c', 'd', 'e']) await ipam.allocate(id);
    // .2 was the only one free, found after wrapping around past .6
    assert.equal((await ipam.allocate('f'))[0].address, '10.88.0.2');
  }));

test('200 parallel allocations in a /24 never collide; the 254th address request is refused as exhausted', (t) =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.7.0/24' }] });
    const t0 = performance.now();
    const first = await Promise.all(Array.from({ length: 200 }, (_, i) => ipam.allocate(`pod-${i}`)));
    const ms = performance.now() - t0;
    const addresses = new Set(first.map((r) => r[0].address));
    assert.equal(addresses.size, 200);
    assert.ok(!addresses.has('10.88.7.0') && !addresses.has('10.88.7.1') && !addresses.has('10.88.7.255'));
    // .2-.254 is 253 addresses: 53 more fit, the next one does not
    const rest = await Promise.allSettled(Array.from({ length: 54 }, (_, i) => ipam.allocate(`pod-${200 + i}`)));
    const failed = rest.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 1);
    assert.match(String(failed[0].reason), /no free IPv4 address in 10\.88\.7\.0\/24 \(10\.88\.7\.1-10\.88\.7\.254\): 253 of 253 in use/);
    assert.equal((failed[0].reason as { code: string }).code, 'SKIFF_NETWORK_EXHAUSTED');
    const all = await ipam.allocations();
    assert.equal(all.length, 253);
    assert.equal(new Set(all.map((a) => a.addresses[0].address)).size, 253);
    assert.equal((await readdir(dir)).filter((n) => n.startsWith('10.88.7.')).length, 253);
    t.diagnostic(`200 parallel allocations: ${ms.toFixed(0)} ms`);
  }));

test('a new Ipam on the same directory sees the earlier allocations and cursor', () =>
  withDir(async (dir) => {
    const ranges: IpamRange[] = [{ subnet: '10.88.0.0/24' }, { subnet: 'fd00:88::/64' }];
    const before = new Ipam({ dir, ranges });
    const a = await before.allocate('a');
    await before.allocate('b');
    await before.release('b');
    const after = new Ipam({ dir, ranges });
    assert.deepEqual(await after.allocate('a'), a);
    // b's .3 was freed but the cursor says .3 was the last handed out
    assert.deepEqual(
      (await after.allocate('c')).map((x) => x.address),
      ['10.88.0.4', 'fd00:88::4'],
    );
    assert.deepEqual(
      (await after.allocations()).map((x) => x.sandboxId),
      ['a', 'c'],
    );
  }));

test('a record file put there by another writer is never handed out again', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/24' }] });
    await ipam.allocations(); // state read: empty
    await writeFile(join(dir, '10.88.0.2'), JSON.stringify({ version: 1, sandboxId: 'x', address: '10.88.0.2', prefixLen: 24, gateway: '10.88.0.1' }));
    assert.equal((await ipam.allocate('a'))[0].address, '10.88.0.3');
    assert.deepEqual(
      (await ipam.allocations()).map((x) => x.sandboxId),
      ['a', 'x'],
    );
  }));

test('release is idempotent and frees the files', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/24' }, { subnet: 'fd00:88::/64' }] });
    await ipam.allocate('a');
    assert.equal((await ipam.release('a')).length, 2);
    assert.deepEqual(await ipam.release('a'), []);
    assert.deepEqual(await ipam.release('never-seen'), []);
    assert.deepEqual((await readdir(dir)).filter((n) => !n.startsWith('last_reserved')), []);
  }));

test('reclaim frees the addresses of sandboxes that are gone, unreadable records and crash leftovers', () =>
  withDir(async (dir) => {
    const ranges: IpamRange[] = [{ subnet: '10.88.0.0/24' }];
    const ipam = new Ipam({ dir, ranges });
    for (const id of ['live', 'dead1', 'dead2']) await ipam.allocate(id);
    await writeFile(join(dir, '10.88.0.100'), 'garbage');
    await writeFile(join(dir, '.10.88.0.101.abcdef.tmp'), 'half-written');
    const restarted = new Ipam({ dir, ranges });
    const freed = await restarted.reclaim(['live']);
    assert.deepEqual(
      freed.map((f) => [f.sandboxId, f.addresses.map((a) => a.address)]),
      [
        ['', ['10.88.0.100']],
        ['dead1', ['10.88.0.3']],
        ['dead2', ['10.88.0.4']],
      ],
    );
    assert.deepEqual(await restarted.reclaim(['live']), []);
    assert.deepEqual(
      (await restarted.allocations()).map((a) => a.sandboxId),
      ['live'],
    );
    assert.deepEqual((await readdir(dir)).sort(), ['10.88.0.2', 'last_reserved_ip.ipv4']);
  }));

test('a dual-stack allocation that fails on IPv6 leaves no IPv4 address behind', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/24' }, { subnet: 'fd00:88::/126' }] }); // v6: ::2, ::3
    await ipam.allocate('a');
    await ipam.allocate('b');
    await rejectsWith(ipam.allocate('c'), 'SKIFF_NETWORK_EXHAUSTED', /no free IPv6 address in fd00:88::\/126 \(fd00:88::1-fd00:88::3\): 2 of 2 in use/);
    assert.deepEqual(
      (await ipam.allocations()).map((a) => a.sandboxId),
      ['a', 'b'],
    );
    assert.equal((await readdir(dir)).filter((n) => n.startsWith('10.88.')).length, 2);
  }));

test('a failed write on IPv6 leaves nothing half-allocated', () =>
  withDir(async (dir) => {
    const ipam = new Ipam({ dir, ranges: [{ subnet: '10.88.0.0/24' }, { subnet: 'fd00:88::/64' }] });
    await ipam.allocations(); // state read
    await mkdir(join(dir, 'last_reserved_ip.ipv6')); // the IPv6 cursor cannot be written
    await assert.rejects(ipam.allocate('a'), /EISDIR/);
    assert.deepEqual(await ipam.allocations(), []);
    assert.deepEqual((await readdir(dir)).sort(), ['last_reserved_ip.ipv4', 'last_reserved_ip.ipv6']);
  }));

test('config validation names the bad value', () => {
  const dir = '/nonexistent';
  const cases: [IpamRange[], RegExp][] = [
    [[], /no address range/],
    [[{ subnet: '10.88.0.0' }], /subnet "10\.88\.0\.0" is not a CIDR/],
    [[{ subnet: '10.88.0.300/16' }], /subnet "10\.88\.0\.300\/16" is not a CIDR/],
    [[{ subnet: '10.88.0.5/16' }], /subnet "10\.88\.0\.5\/16" has host bits set \(the network is 10\.88\.0\.0\/16\)/],
    [[{ subnet: '10.88.0.0/31' }], /too small for pods \(at most \/30 for IPv4\)/],
    [[{ subnet: '10.88.0.0/16', gateway: '10.89.0.1' }], /10\.88\.0\.0\/16: gateway "10\.89\.0\.1" is outside the subnet/],
    [[{ subnet: '10.88.0.0/16', gateway: '10.88.255.255' }], /gateway "10\.88\.255\.255" is the subnet's broadcast address/],
    [[{ subnet: '10.88.0.0/16', gateway: 'fd00::1' }], /gateway "fd00::1" is not an IPv4 address/],
    [[{ subnet: '10.88.0.0/16', rangeStart: '10.88.0.0' }], /rangeStart "10\.88\.0\.0" is the subnet's network address/],
    [[{ subnet: '10.88.0.0/16', rangeEnd: '10.90.0.0' }], /rangeEnd "10\.90\.0\.0" is outside the subnet/],
    [[{ subnet: '10.88.0.0/16', rangeStart: '10.88.5.0', rangeEnd: '10.88.4.0' }], /rangeStart "10\.88\.5\.0" is after rangeEnd "10\.88\.4\.0"/],
    [[{ subnet: '10.88.0.0/16', rangeStart: '10.88.0.1', rangeEnd: '10.88.0.1' }], /holds only the gateway 10\.88\.0\.1/],
    [[{ subnet: 'fd00:88::/64', gateway: 'fd00:89::1' }], /fd00:88::\/64: gateway "fd00:89::1" is outside the subnet/],
    [[{ subnet: '10.88.0.0/16' }, { subnet: '10.99.0.0/16' }], /2 IPv4 ranges \(10\.88\.0\.0\/16, 10\.99\.0\.0\/16\); want at most one per family/],
  ];
  for (const [ranges, message] of cases) {
    assert.throws(
      () => new Ipam({ dir, ranges }),
      (err: unknown) => {
        assert.equal((err as { code?: string }).code, 'SKIFF_INVALID_ARGUMENT', String(err));
        assert.match((err as Error).message, message);
        return true;
      },
      JSON.stringify(ranges),
    );
  }
  assert.throws(() => new Ipam({ dir: '', ranges: [{ subnet: '10.88.0.0/16' }] }), /no state directory/);
});
