// CniNetwork with the real Debian CNI plugins (/usr/lib/cni: bridge, host-local, portmap,
// loopback) on pods in netns pinned by skiff-ns. Each test makes its own world: a conf dir with
// its own conflist, a bridge of its own name ('skc' + hex) with a 10.235.x.0/24 subnet nothing on
// the host uses, host-local state in its temp dir; and removes it all, whatever happens. Traffic
// goes only to the test's own namespaces and bridge. Needs root. ADD/DEL times are printed as
// test diagnostics (not asserted), for comparing with other runtimes.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBinary } from '../../native/native.js';
import { CniNetwork } from './cni-network.js';
import type { CniAddRequest } from './request.js';
import { CniPluginError } from './exec.js';
import { hostNatSnapshot, removePortmapLeftovers } from '../../e2e/harness/host-nat.js';
import { ok, run, type Result } from '../kernel-fixtures.js';

const PLUGIN_DIR = '/usr/lib/cni';

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : !(await Promise.all(['bridge', 'host-local', 'portmap', 'loopback'].map((p) => executable(join(PLUGIN_DIR, p))))).every(Boolean)
      ? `no CNI plugins in ${PLUGIN_DIR} (Debian containernetworking-plugins)`
      : false;

const ipv4 = (s: string): number => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);

/** A 10.235.x.0/24 that no address or route of the host overlaps. */
async function freeSubnet(): Promise<string> {
  const used: [number, number][] = [];
  const addrs = JSON.parse(await ok('ip', ['-j', '-4', 'addr'])) as { addr_info?: { local: string; prefixlen: number }[] }[];
  for (const l of addrs) for (const a of l.addr_info ?? []) used.push([ipv4(a.local), a.prefixlen]);
  const routes = JSON.parse(await ok('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as { dst: string }[];
  for (const r of routes) {
    if (r.dst === 'default' || !/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(r.dst)) continue;
    const [a, len] = r.dst.split('/');
    used.push([ipv4(a), len === undefined ? 32 : Number(len)]);
  }
  for (let i = 0; i < 64; i++) {
    const x = randomInt(256);
    const lo = ipv4(`10.235.${x}.0`);
    const hi = lo + 255;
    const clash = used.some(([a, len]) => {
      const size = 2 ** (32 - len);
      const start = a - (a % size);
      return start <= hi && start + size - 1 >= lo;
    });
    if (!clash) return `10.235.${x}`;
  }
  throw new Error('no free 10.235.x.0/24 on this host');
}

/** iptables-save arguments of a rule line, quotes removed. */
function ruleArgs(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]));
}

const natRules = (): Promise<string> => ok('iptables-save', ['-t', 'nat']);

/**
 * portmap creates its top-level chains (CNI-HOSTPORT-*) on first use and never removes them. If
 * they were not there before the test and no pod uses them any more, remove them and their jumps.
 */
async function removePortmapChains(hadThem: boolean): Promise<void> {
  if (hadThem) return;
  const rules = await natRules();
  if (rules.split('\n').some((l) => l.startsWith('-A CNI-HOSTPORT-DNAT '))) return; // in use by someone
  for (const line of rules.split('\n')) {
    if (/^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-(DNAT|MASQ)$/.test(line)) {
      await ok('iptables', ['-t', 'nat', '-D', ...ruleArgs(line).slice(1)]);
    }
  }
  for (const chain of ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK']) {
    if (!rules.includes(`:${chain} `)) continue;
    await ok('iptables', ['-t', 'nat', '-F', chain]);
    await ok('iptables', ['-t', 'nat', '-X', chain]);
  }
}

interface World {
  dir: string;
  bridge: string;
  net: string; // 10.235.x
  network: string;
  dataDir: string;
  cni: CniNetwork;
  /** Pins a new netns (lo up) for the length of the test. */
  netns(name: string): Promise<string>;
  pod(name: string, netnsPath: string): CniAddRequest;
  /** A TCP server in the netns on `port` answering `text`; killed (by pid) at the end. */
  server(netnsPath: string, port: number, text: string): Promise<void>;
}

async function withBridgeWorld(t: TestContext, fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-cni-it-'));
  const hex = randomBytes(3).toString('hex');
  const bridge = `skc${hex}`;
  const network = `skc-test-${hex}`;
  const confDir = join(dir, 'net.d');
  const dataDir = join(dir, 'ipam');
  const pins: string[] = [];
  const children: ChildProcess[] = [];
  const pods: CniAddRequest[] = [];
  const hostNat = hostNatSnapshot();
  const hadPortmapChains = (await natRules()).includes(':CNI-HOSTPORT-DNAT ');
  let cni: CniNetwork | undefined;
  try {
    await mkdir(confDir);
    const net = await freeSubnet();
    // The bridge and its address are the test's: the plugin's isGateway would also turn on the
    // host's ip_forward, a change to the host a test must not make. A set MAC keeps the bridge's
    // address from following its ports, which the bridge plugin's CHECK compares with the result.
    const mac = ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
    await ok('ip', ['link', 'add', 'name', bridge, 'address', mac, 'type', 'bridge']);
    await ok('ip', ['addr', 'add', `${net}.1/24`, 'dev', bridge]);
    await ok('ip', ['link', 'set', bridge, 'up']);
    await writeFile(
      join(confDir, '10-skc.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: network,
        plugins: [
          {
            type: 'bridge',
            bridge,
            isGateway: false,
            ipMasq: false,
            ipam: { type: 'host-local', ranges: [[{ subnet: `${net}.0/24`, gateway: `${net}.1` }]], dataDir },
          },
          { type: 'portmap', capabilities: { portMappings: true }, snat: true },
        ],
      }),
    );
    cni = new CniNetwork({ confDir, binDirs: [PLUGIN_DIR], cacheDir: join(dir, 'cache'), pluginTimeoutMs: 30_000 });
    const c = cni;
    await fn({
      dir,
      bridge,
      net,
      network,
      dataDir,
      cni: c,
      async netns(name) {
        const path = join(dir, `ns-${name}`);
        await ok(nativeBinary('skiff-ns'), ['netns-pin', path]);
        pins.push(path);
        return path;
      },
      pod(name, netnsPath) {
        const p: CniAddRequest = {
          containerId: `${hex}${name}${randomBytes(4).toString('hex')}`,
          netnsPath,
          ifName: 'eth0',
          podName: name,
          podNamespace: 'skiff-test',
          podUid: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`,
        };
        pods.push(p);
        return p;
      },
      async server(netnsPath, port, text) {
        const script = `require('net').createServer((s) => s.end(${JSON.stringify(text)})).listen(${port}, '0.0.0.0', () => console.log('listening'))`;
        const child = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        await new Promise<void>((resolve, reject) => {
          let err = '';
          child.stderr.on('data', (b: Buffer) => (err += b.toString()));
          child.stdout.on('data', (b: Buffer) => {
            if (b.toString().includes('listening')) resolve();
          });
          child.once('exit', (code) => reject(new Error(`server in ${netnsPath} exited ${code}: ${err}`)));
        });
      },
    });
  } finally {
    for (const child of children) if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    for (const p of pods) await cni?.del(p).catch((err: unknown) => t.diagnostic(`cleanup DEL ${p.containerId}: ${String(err)}`));
    for (const path of pins) await run(nativeBinary('skiff-ns'), ['netns-unpin', path]);
    await run('ip', ['link', 'del', bridge]);
    await removePortmapChains(hadPortmapChains).catch((err: unknown) => t.diagnostic(`cleanup iptables: ${String(err)}`));
    // iptables-nft made `ip nat`/`ip6 nat` tables for portmap (and iptables-save): those go too, when empty.
    removePortmapLeftovers(hostNat);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads what a TCP server at host:port says, from the host's namespace. */
function tcpRead(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: 3000 });
    let data = '';
    s.on('data', (b: Buffer) => (data += b.toString()));
    s.on('end', () => resolve(data));
    s.on('timeout', () => {
      s.destroy();
      reject(new Error(`${host}:${port}: timed out`));
    });
    s.on('error', reject);
  });
}

/** ping from a netns: iputils' ping if installed, else busybox's (busybox-static is a test dependency). */
async function pingFrom(netnsPath: string, address: string): Promise<Result> {
  const iputils = (await executable('/usr/bin/ping')) || (await executable('/bin/ping'));
  const argv = iputils ? ['ping'] : ['busybox', 'ping'];
  return run('nsenter', [`--net=${netnsPath}`, ...argv, '-c1', '-W1', address]);
}

interface Link {
  ifname: string;
  master?: string;
  flags: string[];
}
const links = async (netnsPath?: string): Promise<Link[]> =>
  JSON.parse(await ok(netnsPath ? 'nsenter' : 'ip', netnsPath ? [`--net=${netnsPath}`, 'ip', '-j', 'link'] : ['-j', 'link'])) as Link[];

test('two pods on the bridge chain get IPs from host-local, reach each other and are reachable from the host; DEL removes veth and IP', { skip }, async (t) => {
  await withBridgeWorld(t, async (w) => {
    const [nsA, nsB] = [await w.netns('a'), await w.netns('b')];
    const [podA, podB] = [w.pod('a', nsA), w.pod('b', nsB)];
    let t0 = performance.now();
    const ra = await w.cni.add(podA);
    const addA = performance.now() - t0;
    t0 = performance.now();
    const rb = await w.cni.add(podB);
    const addB = performance.now() - t0;

    for (const r of [ra, rb]) {
      assert.equal(r.ips.length, 1);
      assert.equal(r.ips[0].family, 4);
      assert.equal(r.ips[0].prefixLen, 24);
      assert.equal(r.ips[0].gateway, `${w.net}.1`);
      assert.equal(r.ips[0].interface, 'eth0');
      assert.ok(r.ips[0].address.startsWith(`${w.net}.`), r.ips[0].address);
    }
    const [ipA, ipB] = [ra.ips[0].address, rb.ips[0].address];
    assert.notEqual(ipA, ipB);
    const files = await readdir(join(w.dataDir, w.network));
    assert.ok(files.includes(ipA) && files.includes(ipB), `host-local reserved both: ${files.join(' ')}`);

    const vethA = ra.interfaces.find((i) => !i.sandbox && i.name !== w.bridge)?.name;
    const vethB = rb.interfaces.find((i) => !i.sandbox && i.name !== w.bridge)?.name;
    assert.ok(vethA && vethB);
    const hostLinks = await links();
    assert.equal(hostLinks.find((l) => l.ifname === vethA)?.master, w.bridge);
    assert.equal(hostLinks.find((l) => l.ifname === vethB)?.master, w.bridge);
    assert.ok((await links(nsA)).some((l) => l.ifname === 'eth0' && l.flags.includes('UP')));

    const pingAB = await pingFrom(nsA, ipB);
    assert.equal(pingAB.code, 0, `ping ${ipB} from a: ${pingAB.stdout}${pingAB.stderr}`);
    const pingBA = await pingFrom(nsB, ipA);
    assert.equal(pingBA.code, 0, `ping ${ipA} from b: ${pingBA.stdout}${pingBA.stderr}`);

    await w.server(nsB, 8080, 'hello from b');
    assert.equal(await tcpRead(ipB, 8080), 'hello from b');
    assert.equal(await w.cni.check(podA), true, 'CHECK of bridge, host-local and portmap (no port mappings) passes');

    t0 = performance.now();
    await w.cni.del(podA);
    const delA = performance.now() - t0;
    t0 = performance.now();
    await w.cni.del(podB);
    const delB = performance.now() - t0;
    t.diagnostic(`bridge+host-local+portmap: pod a ADD ${addA.toFixed(1)} ms DEL ${delA.toFixed(1)} ms; pod b ADD ${addB.toFixed(1)} ms DEL ${delB.toFixed(1)} ms`);

    const after = await links();
    assert.ok(!after.some((l) => l.ifname === vethA || l.ifname === vethB), 'host veths gone');
    assert.ok(!(await links(nsA)).some((l) => l.ifname === 'eth0'), 'eth0 gone from the pod');
    const left = await readdir(join(w.dataDir, w.network));
    assert.ok(!left.includes(ipA) && !left.includes(ipB), `IPs released: ${left.join(' ')}`);
    assert.deepEqual(await readdir(join(w.dir, 'cache', 'results')), []);
    await w.cni.del(podA); // idempotent
  });
});

test('a portMapping makes the pod reachable at the bridge address:hostPort; CHECK runs; DEL removes the iptables rules', { skip }, async (t) => {
  await withBridgeWorld(t, async (w) => {
    const ns = await w.netns('c');
    const pod = w.pod('c', ns);
    const hostPort = 20000 + randomInt(20000);
    const r = await w.cni.add({ ...pod, capabilities: { portMappings: [{ hostPort, containerPort: 8080, protocol: 'TCP' }] } });
    const ip = r.ips[0].address;
    const ours = (rules: string): string[] => rules.split('\n').filter((l) => l.includes(`"${pod.containerId}"`) || l.includes(`--dports ${hostPort} `));
    const before = ours(await natRules());
    assert.ok(before.some((l) => l.includes('CNI-HOSTPORT-DNAT') && l.includes(`--dports ${hostPort}`)), before.join('\n'));

    await w.server(ns, 8080, 'hello from c');
    assert.equal(await tcpRead(`${w.net}.1`, hostPort), 'hello from c', 'through the DNAT rule');
    assert.equal(await tcpRead(ip, 8080), 'hello from c', 'directly');
    // portmap 1.1.1 (Debian 12) CHECKs IPv6 rules an IPv4-only pod never had (containernetworking/
    // plugins#819, fixed later): its error must come through verbatim; a fixed portmap passes.
    await w.cni.check(pod).then(
      (ran) => assert.equal(ran, true),
      (err: unknown) => {
        assert.ok(err instanceof CniPluginError, String(err));
        assert.equal(err.plugin, 'portmap');
        assert.match(err.cniMsg, /^could not check ipv6 dnat: chain CNI-DN-[0-9a-f]+ not found in iptables table nat$/);
      },
    );

    await w.cni.del(pod);
    assert.deepEqual(ours(await natRules()), [], "portmap's rules for the pod are gone");
    assert.ok(!(await readdir(join(w.dataDir, w.network))).includes(ip));
  });
});

test('DEL after the netns is gone (and from a restarted skiff) releases the IP and the port rules', { skip }, async (t) => {
  await withBridgeWorld(t, async (w) => {
    const ns = await w.netns('d');
    const pod = w.pod('d', ns);
    const hostPort = 20000 + randomInt(20000);
    const r = await w.cni.add({ ...pod, capabilities: { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] } });
    const veth = r.interfaces.find((i) => !i.sandbox && i.name !== w.bridge)?.name;
    await ok(nativeBinary('skiff-ns'), ['netns-unpin', ns]); // the namespace, and with it the veth pair, goes
    // The kernel tears a namespace down on a workqueue, after the last reference is dropped.
    let vethLeft = true;
    for (let i = 0; i < 100 && vethLeft; i++) {
      vethLeft = (await links()).some((l) => l.ifname === veth);
      if (vethLeft) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!vethLeft, `host veth ${veth ?? '?'} gone with the namespace`);

    const restarted = new CniNetwork({ confDir: join(w.dir, 'elsewhere'), binDirs: [PLUGIN_DIR], cacheDir: join(w.dir, 'cache') });
    await restarted.del(pod);
    assert.ok(!(await readdir(join(w.dataDir, w.network))).includes(r.ips[0].address), 'IP released');
    assert.ok(!(await natRules()).includes(`"${pod.containerId}"`), 'port rules removed');
    assert.deepEqual(await readdir(join(w.dir, 'cache', 'results')), []);
  });
});

test('ADD and DEL timing over a few pods (printed, not asserted)', { skip }, async (t) => {
  await withBridgeWorld(t, async (w) => {
    const adds: number[] = [];
    const dels: number[] = [];
    for (let i = 0; i < 6; i++) {
      const pod = w.pod(`t${i}`, await w.netns(`t${i}`));
      let t0 = performance.now();
      await w.cni.add(pod);
      adds.push(performance.now() - t0);
      t0 = performance.now();
      await w.cni.del(pod);
      dels.push(performance.now() - t0);
    }
    const median = (xs: number[]): string => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(1);
    t.diagnostic(`bridge+host-local+portmap over ${adds.length} pods: ADD median ${median(adds)} ms, DEL median ${median(dels)} ms, ADD+DEL median ${median(adds.map((a, i) => a + dels[i]))} ms`);
    t.diagnostic(`ADD ${adds.map((x) => x.toFixed(1)).join(' ')} ms; DEL ${dels.map((x) => x.toFixed(1)).join(' ')} ms`);
  });
});

test('the loopback plugin from a .conf (0.3.1) brings lo up; status() is ready for the Debian plugins at 1.0.0, not at 1.1.0', { skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-cni-lo-'));
  const path = join(dir, 'ns');
  try {
    await mkdir(join(dir, 'net.d'));
    await writeFile(join(dir, 'net.d', '99-lo.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'skc-lo', type: 'loopback' }));
    const cni = new CniNetwork({ confDir: join(dir, 'net.d'), binDirs: [PLUGIN_DIR], cacheDir: join(dir, 'cache') });
    await ok(nativeBinary('skiff-ns'), ['netns-pin', path]);
    await ok('nsenter', [`--net=${path}`, 'ip', 'link', 'set', 'lo', 'down']);
    const pod: CniAddRequest = { containerId: `lo${randomBytes(4).toString('hex')}`, netnsPath: path, ifName: 'eth0', podName: 'lo', podNamespace: 'skiff-test', podUid: 'u' };
    try {
      const r = await cni.add(pod);
      assert.equal(r.cniVersion, '0.3.1');
      assert.ok(r.ips.some((ip) => ip.address === '127.0.0.1' && ip.prefixLen === 8 && ip.family === 4), JSON.stringify(r.raw));
      assert.ok((await links(path)).find((l) => l.ifname === 'lo')?.flags.includes('UP'), 'lo is up');
      assert.deepEqual(await cni.status(), { ready: true });

      await writeFile(join(dir, 'net.d', '99-lo.conf'), JSON.stringify({ cniVersion: '1.1.0', name: 'skc-lo', type: 'loopback' }));
      const s = await cni.status();
      assert.equal(s.ready, false);
      assert.match(s.message ?? '', /plugin loopback does not support CNI version 1\.1\.0/);
      t.diagnostic(s.message ?? '');
    } finally {
      await cni.del(pod);
    }
  } finally {
    await run(nativeBinary('skiff-ns'), ['netns-unpin', path]);
    await rm(dir, { recursive: true, force: true });
  }
});
