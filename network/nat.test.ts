// Egress masquerade and hostPorts against the real kernel, once per backend (nftables, iptables).
// Each test builds its own world — a bridge `skt…`, a pinned netns per pod on a veth, a subnet
// 10.234.X.0/24 + fd00:234:X::/64 that nothing on the host uses — and a table/chain prefix of its
// own, and removes all of it in `finally`. Traffic goes only to 127.0.0.1, the test bridge's
// addresses or the test's own namespaces. Needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { rejectsWith } from '../common/assert-error.js';
import { nativeBinary } from '../native/native.js';
import { type Cidr, cidrsOverlap, parseCidr } from './cidr.js';
import { runTool } from './nat-backend.js';
import { Nat, type NatBackendName, type PortMapping } from './nat.js';

const BACKENDS: NatBackendName[] = ['nftables', 'iptables'];
const CONTAINER_PORT = 8080;

async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await runTool(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

// ---- the test's world ---------------------------------------------------------------------------

interface Pod {
  name: string;
  netns: string;
  ipv4: string;
  ipv6: string;
  /** The TCP/UDP echo server inside the pod, listening on CONTAINER_PORT. */
  server: ChildProcess;
}

interface World {
  nat: Nat;
  backend: NatBackendName;
  /** nftables table or iptables chain prefix of this test. */
  name: string;
  bridge: string;
  bridge4: string;
  bridge6: string;
  subnets: string[];
  pods: Pod[];
}

/** A /24 (and /64) under 10.234.0.0/16 (fd00:234::/48) that no address or route of the host overlaps. */
async function freeSubnet(): Promise<number> {
  const used = [
    ...(JSON.parse(await ok('ip', '-j', 'addr')) as { addr_info: { local: string; prefixlen: number }[] }[]).flatMap((l) =>
      l.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
    ),
    ...(JSON.parse(await ok('ip', '-j', 'route', 'show', 'table', 'all')) as { dst: string }[]).map((r) => r.dst),
    ...(JSON.parse(await ok('ip', '-j', '-6', 'route', 'show', 'table', 'all')) as { dst: string }[]).map((r) => r.dst),
  ]
    .map((d) => parseCidr(d.includes('/') ? d : `${d}/${d.includes(':') ? 128 : 32}`))
    .filter((c): c is Cidr => c !== undefined && c.prefixLen > 0);
  for (let tries = 0; tries < 50; tries++) {
    const x = 1 + Math.floor(Math.random() * 254);
    const mine = [parseCidr(`10.234.${x}.0/24`)!, parseCidr(`fd00:234:${x}::/64`)!];
    if (!used.some((u) => mine.some((m) => cidrsOverlap(u, m)))) return x;
  }
  throw new Error('no free 10.234.X.0/24 on this host');
}

/** A port nothing on the host listens on (TCP or UDP, IPv4 or IPv6). */
async function freeHostPort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    try {
      const s = net.createServer();
      s.listen({ port, host: '::' });
      await once(s, 'listening');
      s.close();
      for (const type of ['udp4', 'udp6'] as const) {
        const u = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
        u.bind(port);
        await once(u, 'listening');
        u.close();
      }
      return port;
    } catch {
      // taken: try another
    }
  }
}

const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const [port, name] = process.argv.slice(1);
const peer = (a) => a.replace(/^::ffff:/, '');
let pending = 3;
const ready = () => { if (--pending === 0) console.log('ready'); };
net.createServer((s) => s.end(name + ' ' + peer(s.remoteAddress) + '\\n')).listen({ port: +port, host: '::' }, ready);
for (const type of ['udp4', 'udp6']) {
  const u = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
  u.on('message', (m, r) => u.send(name + ' ' + peer(r.address) + '\\n', r.port, r.address));
  u.bind(+port, ready);
}`;

const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: +port, timeout: 3000 });
let out = '';
s.on('data', (d) => (out += d)).on('end', () => console.log(out.trim()));
s.on('timeout', () => { console.log('ERR timeout'); s.destroy(); });
s.on('error', (e) => console.log('ERR ' + e.code));`;

async function startServer(netns: string, name: string): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', SERVER, String(CONTAINER_PORT), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pod server ${name} not ready after 10 s`)), 10_000);
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`pod server ${name} exited ${code}`));
      });
    });
  } catch (err) {
    await stop(child);
    throw err;
  }
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/**
 * Builds the world, runs `fn`, and takes everything down again whatever happens: the NAT
 * table/chains, the pods' servers, veths and pins, the bridge (with the sysctls set on it), and —
 * for iptables — the xtables tables that the test alone brought into being.
 */
async function withWorld(backend: NatBackendName, podCount: number, fn: (w: World) => Promise<void>): Promise<void> {
  const undo: (() => Promise<unknown>)[] = [];
  const hex = randomBytes(4).toString('hex');
  try {
    const x = await freeSubnet();
    const name = backend === 'nftables' ? `skt_${hex}` : `SKT${hex}`;
    const nat = new Nat({ backend, table: name, chainPrefix: name });
    const tablesBefore = await nftTables();
    undo.push(async () => {
      await nat.teardown();
      if (backend === 'iptables') await dropNewEmptyTables(tablesBefore);
    });
    const bridge = `skt${hex}`;
    await ok('ip', 'link', 'add', 'name', bridge, 'type', 'bridge');
    undo.push(() => ok('ip', 'link', 'del', bridge));
    await ok('ip', 'addr', 'add', `10.234.${x}.1/24`, 'dev', bridge);
    await ok('ip', '-6', 'addr', 'add', `fd00:234:${x}::1/64`, 'dev', bridge, 'nodad');
    await ok('ip', 'link', 'set', bridge, 'up');
    const dir = await mkdtemp(join(tmpdir(), 'skiff-nat-'));
    undo.push(() => rm(dir, { recursive: true, force: true }));
    const pods: Pod[] = [];
    for (let i = 0; i < podCount; i++) {
      const netns = join(dir, `pod${i}`);
      await ok(nativeBinary('skiff-ns'), 'netns-pin', netns);
      undo.push(() => ok(nativeBinary('skiff-ns'), 'netns-unpin', netns));
      const veth = `skv${hex}${i}`;
      await ok('ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', `skp${hex}${i}`);
      undo.push(() => runTool('ip', ['link', 'del', veth])); // gone already when its netns went first
      await ok('ip', 'link', 'set', `skp${hex}${i}`, 'netns', netns);
      await ok('ip', 'link', 'set', veth, 'master', bridge, 'up');
      // with br_netfilter a pod's DNATed packet to itself is bridged back out of the port it came
      // in by: the port needs hairpin mode (the CNI bridge plugin's hairpinMode)
      await ok('ip', 'link', 'set', veth, 'type', 'bridge_slave', 'hairpin', 'on');
      const inPod = (...args: string[]): Promise<string> => ok('nsenter', `--net=${netns}`, 'ip', ...args);
      const ipv4 = `10.234.${x}.${2 + i}`;
      const ipv6 = `fd00:234:${x}::${2 + i}`;
      await inPod('link', 'set', `skp${hex}${i}`, 'name', 'eth0');
      await inPod('addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
      await inPod('-6', 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad');
      await inPod('link', 'set', 'eth0', 'up');
      await inPod('route', 'add', 'default', 'via', `10.234.${x}.1`);
      await inPod('-6', 'route', 'add', 'default', 'via', `fd00:234:${x}::1`);
      const server = await startServer(netns, `pod${i}`);
      undo.push(() => stop(server));
      pods.push({ name: `pod${i}`, netns, ipv4, ipv6, server });
    }
    await fn({ nat, backend, name, bridge, bridge4: `10.234.${x}.1`, bridge6: `fd00:234:${x}::1`, subnets: [`10.234.${x}.0/24`, `fd00:234:${x}::/64`], pods });
  } finally {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (err) {
        console.error(`cleanup step failed: ${String(err)}`);
      }
    }
  }
}

async function nftTables(): Promise<Set<string>> {
  const doc = JSON.parse(await ok('nft', '-j', 'list', 'tables')) as { nftables: { table?: { family: string; name: string } }[] };
  return new Set(doc.nftables.flatMap((i) => (i.table ? [`${i.table.family} ${i.table.name}`] : [])));
}

/**
 * iptables-nft creates `ip nat`, `ip filter`… on first use: drop those that were not there before
 * the test and hold nothing but empty built-in chains (so never one another program is using).
 */
async function dropNewEmptyTables(before: Set<string>): Promise<void> {
  const builtin = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
  for (const t of await nftTables()) {
    if (before.has(t) || !/^ip6? (nat|filter)$/.test(t)) continue;
    const doc = JSON.parse(await ok('nft', '-j', 'list', 'table', ...t.split(' '))) as { nftables: { rule?: unknown; chain?: { name: string } }[] };
    if (doc.nftables.some((i) => i.rule || (i.chain && !builtin.has(i.chain.name)))) continue;
    await runTool('nft', ['delete', 'table', ...t.split(' ')]);
  }
}

// ---- clients and rule inspection ----------------------------------------------------------------

/** A TCP request from the host: what the pod's server answered ("pod0 <peer>"), or "ERR <code>". */
async function tcpFromHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 });
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('end', () => resolve(out.trim()));
    s.on('timeout', () => {
      s.destroy();
      resolve('ERR timeout');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`ERR ${e.code}`));
  });
}

/** A UDP round trip from the host on a fresh socket (so no earlier conntrack entry applies). */
async function udpFromHost(host: string, port: number): Promise<string> {
  const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve('ERR timeout'), 1500);
      u.on('message', (m) => {
        clearTimeout(timer);
        resolve(m.toString().trim());
      });
      u.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(`ERR ${e.code}`);
      });
      u.connect(port, host, () => u.send('ping'));
    });
  } finally {
    u.close();
  }
}

async function tcpFromPod(pod: Pod, host: string, port: number): Promise<string> {
  return (await ok('nsenter', `--net=${pod.netns}`, process.execPath, '-e', CLIENT, host, String(port))).trim();
}

/** The rules of the test's own table or chains, as text without counters or handles. */
async function ruleset(w: World): Promise<string> {
  if (w.backend === 'nftables') {
    const r = await runTool('nft', ['list', 'table', 'inet', w.name]);
    return r.code === 0 ? r.stdout : '';
  }
  const lines: string[] = [];
  for (const [save, table] of [
    ['iptables-save', 'nat'],
    ['iptables-save', 'filter'],
    ['ip6tables-save', 'nat'],
  ]) {
    const text = await ok(save, '-t', table);
    lines.push(...text.split('\n').filter((l) => l.includes(w.name)).map((l) => `${save} ${table}: ${l.replace(/ \[\d+:\d+\]$/, '')}`));
  }
  return lines.join('\n');
}

async function assertNoRulesOf(w: World, sandboxId: string): Promise<void> {
  const text = await ruleset(w);
  assert.ok(!text.includes(sandboxId), `rules of ${sandboxId} left:\n${text}`);
}

const tcp = (hostPort: number, hostIP?: string): PortMapping => ({ hostPort, containerPort: CONTAINER_PORT, protocol: 'tcp', hostIP });
const udp = (hostPort: number): PortMapping => ({ hostPort, containerPort: CONTAINER_PORT, protocol: 'udp' });
const sandbox = (label: string): string => `${label}-${randomBytes(8).toString('hex')}`;

// ---- the tests ----------------------------------------------------------------------------------

for (const backend of BACKENDS) {
  test(`[${backend}] a hostPort answers at 127.0.0.1, the bridge address and its IPv6 address, TCP and UDP; removePortMappings closes it and leaves no rule`, (t) =>
    withWorld(backend, 1, async (w) => {
      const [pod] = w.pods;
      await w.nat.ensureBase({ bridge: w.bridge, subnets: w.subnets });
      assert.equal(await w.nat.backend(), backend);
      const port = await freeHostPort();
      const id = sandbox('a');
      let t0 = performance.now();
      await w.nat.addPortMappings(id, { ipv4: pod.ipv4, ipv6: pod.ipv6 }, [tcp(port), udp(port), tcp(0)]);
      const addMs = performance.now() - t0;

      // localhost is masqueraded to the bridge address; the bridge address needs no masquerade
      assert.equal(await tcpFromHost('127.0.0.1', port), `pod0 ${w.bridge4}`);
      assert.equal(await tcpFromHost(w.bridge4, port), `pod0 ${w.bridge4}`);
      assert.equal(await tcpFromHost(w.bridge6, port), `pod0 ${w.bridge6}`);
      assert.equal(await udpFromHost('127.0.0.1', port), `pod0 ${w.bridge4}`);
      assert.equal(await udpFromHost(w.bridge4, port), `pod0 ${w.bridge4}`);
      assert.equal(await udpFromHost(w.bridge6, port), `pod0 ${w.bridge6}`);
      assert.equal((await ruleset(w)).split(id).length - 1, 4, 'tcp and udp, IPv4 and IPv6');

      t0 = performance.now();
      await w.nat.removePortMappings(id);
      const removeMs = performance.now() - t0;
      assert.equal(await tcpFromHost('127.0.0.1', port), 'ERR ECONNREFUSED');
      assert.equal(await tcpFromHost(w.bridge4, port), 'ERR ECONNREFUSED');
      assert.equal(await tcpFromHost(w.bridge6, port), 'ERR ECONNREFUSED');
      assert.match(await udpFromHost('127.0.0.1', port), /^ERR /);
      await assertNoRulesOf(w, id);
      await w.nat.removePortMappings(id); // idempotent
      t.diagnostic(`${backend}: addPortMappings ${addMs.toFixed(1)} ms, removePortMappings ${removeMs.toFixed(1)} ms`);
    }));

  test(`[${backend}] pods reach hostPorts through the bridge address, their own (hairpin) and another pod's, masqueraded`, () =>
    withWorld(backend, 2, async (w) => {
      const [a, b] = w.pods;
      await w.nat.ensureBase({ bridge: w.bridge, subnets: w.subnets });
      // pod → host address → pod is routed by the host: forwarding on the test bridge only
      await ok('sysctl', '-qw', `net.ipv4.conf.${w.bridge}.forwarding=1`);
      const port = await freeHostPort();
      await w.nat.addPortMappings(sandbox('a'), { ipv4: a.ipv4 }, [tcp(port)]);
      assert.equal(await tcpFromPod(a, w.bridge4, port), `pod0 ${w.bridge4}`);
      assert.equal(await tcpFromPod(b, w.bridge4, port), `pod0 ${w.bridge4}`);
    }));

  test(`[${backend}] hostIP limits a hostPort to one address; a hostPort held by another sandbox is refused; SCTP where the kernel tracks it`, () =>
    withWorld(backend, 2, async (w) => {
      const [a, b] = w.pods;
      await w.nat.ensureBase({ bridge: w.bridge, subnets: w.subnets });
      const port = await freeHostPort();
      const idA = sandbox('a');
      await w.nat.addPortMappings(idA, { ipv4: a.ipv4, ipv6: a.ipv6 }, [tcp(port, w.bridge4)]);
      assert.equal(await tcpFromHost(w.bridge4, port), `pod0 ${w.bridge4}`);
      assert.equal(await tcpFromHost('127.0.0.1', port), 'ERR ECONNREFUSED');
      assert.equal(await tcpFromHost(w.bridge6, port), 'ERR ECONNREFUSED');

      const idB = sandbox('b');
      await rejectsWith(w.nat.addPortMappings(idB, { ipv4: b.ipv4 }, [tcp(port)]), 'SKIFF_ALREADY_EXISTS', new RegExp(`hostPort ${port}/tcp on any IPv4 address is already mapped for sandbox ${idA}`));
      await rejectsWith(w.nat.addPortMappings(idB, { ipv4: b.ipv4 }, [tcp(port, '0.0.0.0')]), 'SKIFF_ALREADY_EXISTS');
      // another address, another protocol or another family is free
      await w.nat.addPortMappings(idB, { ipv4: b.ipv4, ipv6: b.ipv6 }, [tcp(port, '127.0.0.1'), udp(port), tcp(port, w.bridge6)]);
      assert.equal(await tcpFromHost('127.0.0.1', port), `pod1 ${w.bridge4}`);
      assert.equal(await tcpFromHost(w.bridge6, port), `pod1 ${w.bridge6}`);
      assert.equal(await tcpFromHost(w.bridge4, port), `pod0 ${w.bridge4}`);

      // a retry replaces the sandbox's own rules rather than colliding with them
      await w.nat.addPortMappings(idA, { ipv4: a.ipv4 }, [tcp(port, w.bridge4)]);
      assert.equal((await ruleset(w)).split(idA).length - 1, 1);

      const sctp: PortMapping = { hostPort: port, containerPort: CONTAINER_PORT, protocol: 'sctp' };
      const idC = sandbox('c');
      const sctpTracked = (await runTool('test', ['-e', '/proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established'])).code === 0;
      if (sctpTracked) {
        await w.nat.addPortMappings(idC, { ipv4: b.ipv4 }, [sctp]);
        assert.match(await ruleset(w), new RegExp(`${idC} sctp ${port}`));
      } else {
        await rejectsWith(w.nat.addPortMappings(idC, { ipv4: b.ipv4 }, [sctp]), 'SKIFF_INVALID_ARGUMENT', /no SCTP connection tracking/);
      }
    }));

  test(`[${backend}] reconcile removes the rules of sandboxes that are gone and keeps the others`, () =>
    withWorld(backend, 1, async (w) => {
      const [pod] = w.pods;
      await w.nat.ensureBase({ bridge: w.bridge, subnets: w.subnets });
      const [p1, p2, p3] = [await freeHostPort(), await freeHostPort(), await freeHostPort()];
      const [live, dead1, dead2] = [sandbox('live'), sandbox('dead1'), sandbox('dead2')];
      await w.nat.addPortMappings(live, { ipv4: pod.ipv4 }, [tcp(p1)]);
      await w.nat.addPortMappings(dead1, { ipv4: pod.ipv4, ipv6: pod.ipv6 }, [tcp(p2)]);
      await w.nat.addPortMappings(dead2, { ipv4: pod.ipv4 }, [udp(p3)]);
      // a new Nat, as after a daemon restart: everything it knows comes from the rules
      const restarted = new Nat({ backend, table: w.name, chainPrefix: w.name });
      assert.deepEqual(await restarted.reconcile([live]), [dead1, dead2].sort());
      assert.deepEqual(await restarted.reconcile([live]), []);
      await assertNoRulesOf(w, dead1);
      await assertNoRulesOf(w, dead2);
      assert.equal(await tcpFromHost('127.0.0.1', p1), `pod0 ${w.bridge4}`);
      assert.equal(await tcpFromHost('127.0.0.1', p2), 'ERR ECONNREFUSED');
    }));

  test(`[${backend}] ensureBase twice gives the same ruleset and keeps the hostPorts; teardown removes everything`, () =>
    withWorld(backend, 1, async (w) => {
      const [pod] = w.pods;
      await w.nat.ensureBase({ bridge: w.bridge, subnets: w.subnets });
      const port = await freeHostPort();
      await w.nat.addPortMappings(sandbox('a'), { ipv4: pod.ipv4 }, [tcp(port)]);
      const first = await ruleset(w);
      await w.nat.ensureBase({ bridge: w.bridge, subnets: w.subnets });
      assert.equal(await ruleset(w), first);
      assert.equal(await tcpFromHost('127.0.0.1', port), `pod0 ${w.bridge4}`);
      await w.nat.teardown();
      assert.equal(await ruleset(w), '');
      await w.nat.teardown(); // idempotent
      await rejectsWith(w.nat.addPortMappings(sandbox('b'), { ipv4: pod.ipv4 }, [tcp(port)]), 'SKIFF_NETWORK_FAILED', /base rules are missing/);
    }));
}

test('bad port mappings, addresses and options are refused with the value named', async () => {
  const nat = new Nat({ backend: 'nftables', table: 'skt_never_created' });
  const ips = { ipv4: '10.234.0.2' };
  const cases: [Promise<unknown>, RegExp][] = [
    [nat.addPortMappings('a b', ips, []), /sandbox id "a b"/],
    [nat.addPortMappings('a', ips, [{ hostPort: 80, containerPort: 80, protocol: 'icmp' as 'tcp' }]), /protocol "icmp"/],
    [nat.addPortMappings('a', ips, [{ hostPort: 70000, containerPort: 80, protocol: 'tcp' }]), /hostPort 70000 is not a port number/],
    [nat.addPortMappings('a', ips, [{ hostPort: 80, containerPort: 0, protocol: 'tcp' }]), /containerPort 0 of hostPort 80/],
    [nat.addPortMappings('a', ips, [{ hostPort: 80, containerPort: 80, protocol: 'tcp', hostIP: '10.0.0.300' }]), /hostIP "10\.0\.0\.300" is not an IP address/],
    [nat.addPortMappings('a', ips, [{ hostPort: 80, containerPort: 80, protocol: 'tcp', hostIP: 'fd00::1' }]), /hostIP fd00::1 is IPv6 but the pod has no IPv6 address/],
    [nat.addPortMappings('a', { ipv4: 'fd00::2' }, []), /pod address "fd00::2" is not an IPv4 address/],
    [nat.addPortMappings('a', ips, [tcp(80), tcp(80, '192.0.2.9')]), /hostPort 80\/tcp on 192\.0\.2\.9 is listed twice/],
    [nat.addPortMappings('a', {}, [tcp(80)]), /hostPort 80\/tcp but the pod has no address/],
    [nat.ensureBase({ bridge: 'a/b', subnets: ['10.0.0.0/8'] }), /bridge "a\/b" is not a valid interface name/],
    [nat.ensureBase({ bridge: 'br0', subnets: ['10.0.0.0'] }), /pod subnet "10\.0\.0\.0" is not a CIDR/],
    [nat.ensureBase({ bridge: 'br0', subnets: ['10.0.0.0/8', '10.1.0.0/16'] }), /want one IPv4 and\/or one IPv6 CIDR/],
  ];
  for (const [p, message] of cases) await rejectsWith(p, 'SKIFF_INVALID_ARGUMENT', message);
  assert.throws(() => new Nat({ table: 'no spaces' }), /nftables table name "no spaces"/);
  assert.throws(() => new Nat({ chainPrefix: 'A-VERY-LONG-PREFIX-INDEED' }), /iptables chain prefix/);
  assert.throws(() => new Nat({ backend: 'pf' as 'iptables' }), /NAT backend "pf"/);
});
