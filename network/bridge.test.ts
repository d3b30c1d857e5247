// The built-in bridge network against the real kernel: a bridge of the test's own (random name,
// a 10.233.N.0/24 and fd33:0:0:N::/64 nothing on the host uses), pods in namespaces pinned under a
// temp dir. Traffic goes only between the host and the test's own namespaces. Forwarding sysctls
// are written to a copy under the temp dir, never to the host's /proc/sys. Needs root. Every test
// removes its bridge, veths, pins and temp dirs, and kills only the processes it started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { rejectsWith } from '../common/assert-error.js';
import { attachPod, detachPod, ensureBridge, type AttachSpec } from './bridge.js';
import { deleteHostLink, freeTestSubnet, ipLinks, ipRoutes, ok, pingSoon, uniqueName, withNetns, withTempDir, type TestSubnet } from './kernel-fixtures.js';

/** A /proc/sys stand-in holding the two forwarding switches, both off. */
async function fakeProcSys(dir: string): Promise<string> {
  const root = join(dir, 'sys');
  await mkdir(join(root, 'net/ipv4'), { recursive: true });
  await mkdir(join(root, 'net/ipv6/conf/all'), { recursive: true });
  await writeFile(join(root, 'net/ipv4/ip_forward'), '0\n');
  await writeFile(join(root, 'net/ipv6/conf/all/forwarding'), '0\n');
  return root;
}

/** A bridge and temp dir of the test's own, removed after `fn`. */
async function withBridge(fn: (w: { bridge: string; net: TestSubnet; dir: string; procSys: string }) => Promise<void>): Promise<void> {
  const bridge = uniqueName('skt');
  const net = await freeTestSubnet();
  await withTempDir(async (dir) => {
    try {
      await fn({ bridge, net, dir, procSys: await fakeProcSys(dir) });
    } finally {
      await deleteHostLink(bridge);
    }
  });
}

async function hostLinkNames(): Promise<string[]> {
  return (await ipLinks()).map((l) => l.ifname);
}

function pod(w: { bridge: string; net: TestSubnet }, netnsPath: string, host: number, extra: Partial<AttachSpec> = {}): AttachSpec {
  return {
    bridge: w.bridge,
    netnsPath,
    hostIfName: uniqueName('skv'),
    mtu: 1500,
    addresses: [
      { address: w.net.v4(host), prefixLen: 24, gateway: w.net.v4(1) },
      { address: w.net.v6(host), prefixLen: 64, gateway: w.net.v6(1) },
    ],
    ...extra,
  };
}

/** A TCP server inside `netns` answering "pong"; resolves once it listens. */
async function podListener(netns: string, port: number): Promise<ChildProcess> {
  const code = "require('net').createServer((c) => c.end('pong')).listen(+process.argv[1], '::', () => console.log('ready'))";
  const child = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', code, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => [Buffer.from('exited')])])) as Buffer[];
  assert.match(line.toString(), /ready/);
  return child;
}

function tcpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, timeout: 3000 });
    let data = '';
    sock.on('data', (b: Buffer) => (data += b.toString()));
    sock.on('end', () => resolve(data));
    sock.on('timeout', () => sock.destroy(new Error(`connect ${host}:${port} timed out`)));
    sock.on('error', reject);
  });
}

void test('two pods on the bridge reach each other and the gateway (v4, v6); the host reaches a pod listener; hairpin on', async () => {
  await withBridge(async (w) => {
    const br = await ensureBridge({ name: w.bridge, mtu: 1500, gateways: [`${w.net.v4(1)}/24`, `${w.net.v6(1)}/64`] }, { procSys: w.procSys });
    assert.equal(br.created, true);
    await withNetns(w.dir, ['a', 'b'], async ([a, b]) => {
      const specA = pod(w, a, 2, { mac: '02:00:00:33:00:02' });
      const specB = pod(w, b, 3);
      let listener: ChildProcess | undefined;
      try {
        const pa = await attachPod(specA);
        const pb = await attachPod(specB);
        assert.equal(pa.podMac, '02:00:00:33:00:02');
        assert.match(pb.podMac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);

        // Host side: enslaved, up, hairpin on, the index we were told.
        const hostA = (await ipLinks()).find((l) => l.ifname === specA.hostIfName);
        assert.equal(hostA?.ifindex, pa.hostIfIndex);
        assert.equal(hostA?.master, w.bridge);
        assert.equal(hostA?.mtu, 1500);
        assert.ok(hostA?.flags?.includes('UP'));
        assert.equal(hostA?.linkinfo?.info_slave_data?.hairpin, true);
        const bridgeLink = JSON.parse(await ok('bridge', ['-d', '-j', 'link', 'show', 'dev', specA.hostIfName])) as { hairpin?: boolean }[];
        assert.equal(bridgeLink[0]?.hairpin, true);

        // Pod side: eth0 with its MAC, MTU and addresses; lo up; default routes via the gateways.
        const inA = await ipLinks(a);
        const eth0 = inA.find((l) => l.ifname === 'eth0');
        assert.equal(eth0?.address, pa.podMac);
        assert.equal(eth0?.mtu, 1500);
        assert.ok(eth0?.flags?.includes('UP'));
        const global = eth0?.addr_info?.filter((x) => !x.local.startsWith('fe80')).map((x) => `${x.local}/${x.prefixlen}`);
        assert.deepEqual(global, [`${w.net.v4(2)}/24`, `${w.net.v6(2)}/64`]);
        assert.ok(inA.find((l) => l.ifname === 'lo')?.flags?.includes('UP'));
        assert.ok((await ipRoutes(a, 4)).some((r) => r.dst === 'default' && r.gateway === w.net.v4(1) && r.dev === 'eth0'));
        assert.ok((await ipRoutes(a, 6)).some((r) => r.dst === 'default' && r.gateway === w.net.v6(1) && r.dev === 'eth0'));

        for (const [from, to] of [
          [a, w.net.v4(3)],
          [a, w.net.v6(3)],
          [a, w.net.v4(1)],
          [a, w.net.v6(1)],
          [b, w.net.v4(2)],
          [b, w.net.v6(1)],
        ]) {
          const r = await pingSoon(from, to);
          assert.equal(r.code, 0, `ping ${to} from ${from}: ${r.stdout}${r.stderr}`);
        }

        const port = 30000 + Math.floor(Math.random() * 20000);
        listener = await podListener(b, port);
        assert.equal(await tcpGet(w.net.v4(3), port), 'pong');
        assert.equal(await tcpGet(w.net.v6(3), port), 'pong');

        await detachPod({ hostIfName: specA.hostIfName });
        await detachPod({ hostIfName: specB.hostIfName });
        const names = await hostLinkNames();
        assert.ok(!names.includes(specA.hostIfName) && !names.includes(specB.hostIfName));
        assert.deepEqual((await ipLinks(a)).map((l) => l.ifname), ['lo']);
        assert.deepEqual((await ipLinks(b)).map((l) => l.ifname), ['lo']);
        await detachPod({ hostIfName: specA.hostIfName }); // idempotent
      } finally {
        if (listener?.pid !== undefined && listener.exitCode === null) {
          listener.kill('SIGKILL');
          await once(listener, 'exit');
        }
        await deleteHostLink(specA.hostIfName);
        await deleteHostLink(specB.hostIfName);
      }
    });
  });
});

void test('ensureBridge is idempotent: nothing changes when right, a missing address comes back, forwarding written only when off', async () => {
  await withBridge(async (w) => {
    const v4 = join(w.procSys, 'net/ipv4/ip_forward');
    const v6 = join(w.procSys, 'net/ipv6/conf/all/forwarding');
    const spec = { name: w.bridge, mtu: 1500, gateways: [`${w.net.v4(1)}/24`, `${w.net.v6(1)}/64`] };
    const first = await ensureBridge(spec, { procSys: w.procSys });
    assert.equal(first.created, true);
    assert.equal(await readFile(v4, 'utf8'), '1\n');
    assert.equal(await readFile(v6, 'utf8'), '1\n');
    const link = (await ipLinks()).find((l) => l.ifname === w.bridge);
    assert.equal(link?.linkinfo?.info_kind, 'bridge');
    assert.ok(link?.flags?.includes('UP'));
    const mac = link?.address;

    // Already on: not written again (a rewrite would end in a newline).
    await writeFile(v4, '1');
    await writeFile(v6, '1');
    const mtime = (await stat(v4)).mtimeMs;
    const again = await ensureBridge(spec, { procSys: w.procSys });
    assert.deepEqual(again, { index: first.index, created: false });
    assert.equal(await readFile(v4, 'utf8'), '1');
    assert.equal((await stat(v4)).mtimeMs, mtime);
    const addrs = (): Promise<string[]> =>
      ipLinks().then((ls) => ls.find((l) => l.ifname === w.bridge)?.addr_info?.filter((x) => !x.local.startsWith('fe80')).map((x) => `${x.local}/${x.prefixlen}`) ?? []);
    assert.deepEqual(await addrs(), spec.gateways);

    // Drift is repaired: a removed address, a downed bridge.
    await ok('ip', ['addr', 'del', spec.gateways[0], 'dev', w.bridge]);
    await ok('ip', ['link', 'set', w.bridge, 'down']);
    await ensureBridge(spec, { procSys: w.procSys });
    assert.deepEqual((await addrs()).sort(), [...spec.gateways].sort());
    const after = (await ipLinks()).find((l) => l.ifname === w.bridge);
    assert.ok(after?.flags?.includes('UP'));
    assert.equal(after?.address, mac, 'the bridge keeps its MAC');

    // IPv6 forwarding is only touched when a gateway is IPv6.
    await writeFile(v6, '0\n');
    await ensureBridge({ name: w.bridge, gateways: [spec.gateways[0]] }, { procSys: w.procSys });
    assert.equal(await readFile(v6, 'utf8'), '0\n');

    // A different prefix on the same address is a configuration problem, not something to fix.
    await rejectsWith(ensureBridge({ name: w.bridge, gateways: [`${w.net.v4(1)}/16`] }, { procSys: w.procSys }), 'SKIFF_NETWORK_FAILED', /has .*\/24, not .*\/16/);
    await rejectsWith(ensureBridge({ name: w.bridge, gateways: ['10.0.0.1'] }), 'SKIFF_INVALID_ARGUMENT', /not an address\/prefix/);
  });
});

void test('ensureBridge refuses a link of that name that is not a bridge', async () => {
  const name = uniqueName('skx');
  try {
    await ok('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', uniqueName('sky')]);
    await withTempDir(async (dir) => {
      await rejectsWith(ensureBridge({ name, gateways: [] }, { procSys: await fakeProcSys(dir) }), 'SKIFF_NETWORK_FAILED', /is a veth, not the pods' bridge/);
    });
  } finally {
    await deleteHostLink(name);
  }
});

void test('a failed attach leaves nothing behind', async () => {
  await withBridge(async (w) => {
    await ensureBridge({ name: w.bridge, gateways: [`${w.net.v4(1)}/24`, `${w.net.v6(1)}/64`] }, { procSys: w.procSys });
    await withNetns(w.dir, ['a'], async ([a]) => {
      // Other tests may be making and removing links on the host meanwhile: look only at ours.
      const leftovers = async (hostIf: string): Promise<string[]> =>
        (await ipLinks()).filter((l) => l.ifname === hostIf || l.master === w.bridge).map((l) => l.ifname);
      const made: string[] = [];
      const attempt = async (spec: AttachSpec, code: 'SKIFF_NETWORK_FAILED' | 'SKIFF_INVALID_ARGUMENT', message: RegExp): Promise<void> => {
        made.push(spec.hostIfName);
        await rejectsWith(attachPod(spec), code, message);
        assert.deepEqual(await leftovers(spec.hostIfName), [], `after: ${message}`);
        assert.deepEqual((await ipLinks(a)).map((l) => l.ifname), ['lo'], `in the pod after: ${message}`);
      };
      try {
        // The same address twice: the second add fails after the veth was made.
        const dup = pod(w, a, 5);
        dup.addresses.push({ ...dup.addresses[0] });
        await attempt(dup, 'SKIFF_NETWORK_FAILED', /add address .*: EEXIST/);
        // A gateway off the pod's subnet: the route fails last.
        await attempt(pod(w, a, 5, { addresses: [{ address: w.net.v4(5), prefixLen: 24, gateway: '10.99.0.1' }] }), 'SKIFF_NETWORK_FAILED', /add route default via 10\.99\.0\.1.*ENETUNREACH/);
        // Not a namespace; a missing bridge; bad input.
        const notNs = join(w.dir, 'not-a-netns');
        await writeFile(notNs, '');
        await attempt(pod(w, notNs, 5), 'SKIFF_INVALID_ARGUMENT', /is not a network namespace/);
        await attempt(pod(w, a, 5, { bridge: uniqueName('skz') }), 'SKIFF_NETWORK_FAILED', /does not exist/);
        await attempt(pod(w, a, 5, { mtu: 20 }), 'SKIFF_INVALID_ARGUMENT', /MTU 20/);
        await attempt(pod(w, a, 5, { addresses: [{ address: w.net.v4(5), prefixLen: 24, gateway: w.net.v6(1) }] }), 'SKIFF_INVALID_ARGUMENT', /not an IPv4 address/);

        // An eth0 already in the pod (it goes away with the namespace): the veth is never made.
        await ok('nsenter', [`--net=${a}`, 'ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
        const clash = pod(w, a, 5);
        made.push(clash.hostIfName);
        await rejectsWith(attachPod(clash), 'SKIFF_NETWORK_FAILED', /create veth .*EEXIST/);
        assert.deepEqual(await leftovers(clash.hostIfName), []);
        assert.deepEqual((await ipLinks(a)).map((l) => l.ifname).sort(), ['eth0', 'eth1', 'lo']);
      } finally {
        for (const name of made) await deleteHostLink(name);
      }
    });
  });
});

void test('an attach whose host name is taken fails without touching the link that has it', async () => {
  await withBridge(async (w) => {
    await ensureBridge({ name: w.bridge, gateways: [`${w.net.v4(1)}/24`] }, { procSys: w.procSys });
    await withNetns(w.dir, ['a'], async ([a]) => {
      const taken = uniqueName('skv');
      try {
        await ok('ip', ['link', 'add', taken, 'type', 'veth', 'peer', 'name', uniqueName('sky')]);
        await rejectsWith(attachPod(pod(w, a, 6, { hostIfName: taken })), 'SKIFF_NETWORK_FAILED', /EEXIST/);
        assert.ok((await hostLinkNames()).includes(taken), 'the existing link is still there');
        assert.deepEqual((await ipLinks(a)).map((l) => l.ifname), ['lo']);
      } finally {
        await deleteHostLink(taken);
      }
    });
  });
});

void test('detachPod: a missing link is done; a link that is not a veth is refused', async () => {
  await withBridge(async (w) => {
    await detachPod({ hostIfName: uniqueName('skv') });
    await ensureBridge({ name: w.bridge, gateways: [] }, { procSys: w.procSys });
    await rejectsWith(detachPod({ hostIfName: w.bridge }), 'SKIFF_NETWORK_FAILED', /is a bridge: not a pod's/);
    assert.ok((await hostLinkNames()).includes(w.bridge));
    await rejectsWith(detachPod({ hostIfName: 'bad/name' }), 'SKIFF_INVALID_ARGUMENT');
  });
});
