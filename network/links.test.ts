// Link, address and route operations against the real kernel, each inside namespaces pinned for
// the test (nothing touches the host's). Checked both through our own parser and through `ip -j`.
// Needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsWith } from '../common/assert-error.js';
import { errnoOf, openRouteSocket, type RouteSocket } from './netlink/netns.js';
import {
  addAddress,
  addBridge,
  addDefaultRoute,
  addRoute,
  addVethPair,
  deleteAddress,
  deleteLink,
  getLink,
  linkOps,
  listAddresses,
  listLinks,
  listRoutes,
  renameLink,
  setHairpin,
  setLink,
  setLinkUp,
} from './links.js';
import { ipLinks, ipRoutes, withNetns, withTempDir } from './kernel-fixtures.js';

/** Sockets in fresh namespaces a and b for the length of `fn`. */
async function inNamespaces(fn: (a: RouteSocket, b: RouteSocket, paths: string[]) => Promise<void>): Promise<void> {
  await withTempDir((dir) =>
    withNetns(dir, ['a', 'b'], async (paths) => {
      const a = await openRouteSocket(paths[0]);
      const b = await openRouteSocket(paths[1]);
      try {
        await fn(a, b, paths);
      } finally {
        a.close();
        b.close();
      }
    }),
  );
}

void test('bridge: created with MTU, MAC and up; changed; listed; deleted (then deleting again is false)', async () => {
  await inNamespaces(async (a, _b, [pa]) => {
    await addBridge(a, 'br0', { mtu: 1400, mac: '02:00:00:aa:bb:01', up: true });
    const br = await getLink(a, 'br0');
    assert.ok(br);
    assert.equal(br.kind, 'bridge');
    assert.equal(br.mtu, 1400);
    assert.equal(br.mac, '02:00:00:aa:bb:01');
    assert.equal(br.up, true);
    assert.deepEqual(await getLink(a, br.index), br);

    await setLink(a, br.index, { mtu: 1300, mac: '02:00:00:aa:bb:02', up: false });
    const changed = await getLink(a, 'br0');
    assert.equal(changed?.mtu, 1300);
    assert.equal(changed?.mac, '02:00:00:aa:bb:02');
    assert.equal(changed?.up, false);
    await renameLink(a, br.index, 'br1');
    assert.equal(await getLink(a, 'br0'), undefined);
    assert.equal((await getLink(a, br.index))?.name, 'br1');
    assert.deepEqual((await listLinks(a)).map((l) => l.name).sort(), ['br1', 'lo']);
    const seen = (await ipLinks(pa)).find((l) => l.ifname === 'br1');
    assert.equal(seen?.linkinfo?.info_kind, 'bridge');
    assert.equal(seen?.address, '02:00:00:aa:bb:02');

    assert.equal(await deleteLink(a, 'br1'), true);
    assert.equal(await deleteLink(a, 'br1'), false);
    assert.equal(await getLink(a, br.index), undefined);
  });
});

void test('veth pair: the peer is born in the other namespace under its own name; master, hairpin', async () => {
  await inNamespaces(async (a, b, [pa, pb]) => {
    await addBridge(a, 'br0', { up: true });
    const br = (await getLink(a, 'br0'))!;
    await addVethPair(a, {
      name: 'veth0',
      mtu: 1450,
      master: br.index,
      up: true,
      peer: { name: 'eth0', mtu: 1450, mac: '02:00:00:00:00:0e', netnsFd: b.nsFd },
    });
    const host = (await getLink(a, 'veth0'))!;
    assert.equal(host.kind, 'veth');
    assert.equal(host.master, br.index);
    assert.equal(host.slaveKind, 'bridge');
    assert.equal(host.hairpin, false);
    assert.equal(host.mtu, 1450);
    assert.equal(host.up, true);
    assert.equal(await getLink(a, 'eth0'), undefined, 'the peer is not in a');
    const peer = (await getLink(b, 'eth0'))!;
    assert.equal(peer.index, host.peerIndex);
    assert.equal(peer.mac, '02:00:00:00:00:0e');
    assert.equal(peer.mtu, 1450);
    assert.equal(peer.up, false);
    await setLinkUp(b, peer.index);
    assert.equal((await getLink(b, peer.index))?.up, true);

    await setHairpin(a, host.index, true);
    assert.equal((await getLink(a, host.index))?.hairpin, true);
    const seen = (await ipLinks(pa)).find((l) => l.ifname === 'veth0');
    assert.equal(seen?.linkinfo?.info_slave_data?.hairpin, true);
    assert.equal(seen?.master, 'br0');
    await setHairpin(a, host.index, false);
    assert.equal((await getLink(a, host.index))?.hairpin, false);

    await setLink(a, host.index, { master: 0 });
    assert.equal((await getLink(a, host.index))?.master, undefined);

    // Deleting one end takes the other along, across namespaces.
    assert.equal(await deleteLink(a, 'veth0'), true);
    assert.equal(await getLink(b, 'eth0'), undefined);
    assert.deepEqual((await ipLinks(pb)).map((l) => l.ifname), ['lo']);
  });
});

void test('addresses v4 and v6 and default routes via gateways', async () => {
  await inNamespaces(async (a, b, [, pb]) => {
    await addVethPair(a, { name: 'veth0', up: true, peer: { name: 'eth0', netnsFd: b.nsFd } });
    const peer = (await getLink(b, 'eth0'))!;
    await setLinkUp(b, peer.index);
    await addAddress(b, peer.index, { address: '10.233.250.5', prefixLen: 24 });
    await addAddress(b, peer.index, 'fd33:0:0:fa::5/64', { noDad: true });
    const addrs = (await listAddresses(b, { index: peer.index })).filter((x) => x.scope === 0);
    assert.deepEqual(
      addrs.map((x) => `${x.address}/${x.prefixLen}`),
      ['10.233.250.5/24', 'fd33:0:0:fa::5/64'],
    );
    assert.equal((await listAddresses(b, { family: 6 })).every((x) => x.family === 6), true);

    await addDefaultRoute(b, '10.233.250.1', peer.index);
    await addRoute(b, { dst: 'default', gateway: 'fd33:0:0:fa::1' });
    await addRoute(b, { dst: '10.233.251.0/24', oif: peer.index });
    const v4 = await listRoutes(b, 4);
    assert.ok(v4.some((r) => r.dstLen === 0 && r.gateway === '10.233.250.1' && r.oif === peer.index));
    assert.ok(v4.some((r) => r.dst === '10.233.251.0' && r.dstLen === 24 && r.gateway === undefined));
    assert.ok((await listRoutes(b, 6)).some((r) => r.dstLen === 0 && r.gateway === 'fd33:0:0:fa::1'));
    assert.ok((await ipRoutes(pb, 4)).some((r) => r.dst === 'default' && r.gateway === '10.233.250.1' && r.dev === 'eth0'));
    assert.ok((await ipRoutes(pb, 6)).some((r) => r.dst === 'default' && r.gateway === 'fd33:0:0:fa::1'));

    // The kernel refuses what it must: the same address twice, a gateway that is not on a link.
    await assert.rejects(addAddress(b, peer.index, '10.233.250.5/24'), (err) => errnoOf(err) === 'EEXIST');
    await assert.rejects(addDefaultRoute(b, '10.99.0.1'), (err) => errnoOf(err) === 'ENETUNREACH');

    await deleteAddress(b, peer.index, '10.233.250.5/24');
    assert.deepEqual(
      (await listAddresses(b, { family: 4, index: peer.index })).map((x) => x.address),
      [],
    );
  });
});

void test('bad input is SKIFF_INVALID_ARGUMENT before any request', async () => {
  await inNamespaces(async (a) => {
    await rejectsWith(addBridge(a, 'a/b'), 'SKIFF_INVALID_ARGUMENT', /interface name|bridge name/);
    await rejectsWith(addBridge(a, 'sixteen-chars-xx'), 'SKIFF_INVALID_ARGUMENT', /not valid/);
    await rejectsWith(addBridge(a, 'br0', { mtu: 40 }), 'SKIFF_INVALID_ARGUMENT', /MTU 40/);
    await rejectsWith(addBridge(a, 'br0', { mac: '01:00:5e:00:00:01' }), 'SKIFF_INVALID_ARGUMENT', /not a unicast MAC/);
    await rejectsWith(addAddress(a, 1, '10.0.0.1'), 'SKIFF_INVALID_ARGUMENT', /address\/prefix/);
    await rejectsWith(addDefaultRoute(a, 'nope'), 'SKIFF_INVALID_ARGUMENT', /not an IP address/);
    await rejectsWith(addRoute(a, { dst: '10.0.0.0/8', gateway: 'fd00::1' }), 'SKIFF_INVALID_ARGUMENT', /family/);
    assert.throws(() => linkOps.setLink('lo', { name: 'lo2' }), /by its index/);
    assert.throws(() => linkOps.getLink(0), /index 0/);
    assert.equal(await getLink(a, 'br0'), undefined);
  });
});
