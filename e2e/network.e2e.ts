// e2e: pod networking, both ways skiff makes it. Built-in (the daemon's own bridge, subnet and NAT
// table, from the harness): two pods talk over TCP and ICMP, the host reaches a pod, a pod reaches
// a listener on the host's bridge address, a hostPort maps 127.0.0.1 and the bridge address to a
// pod; StopPodSandbox leaves no veth, address or rule. CNI: the same through Debian's reference
// plugins (bridge, host-local, portmap, loopback) with a conflist this test writes. A crash between
// the veth and the record is reclaimed at restart. Traffic only to 127.0.0.1 and the test's pods.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as v1 from '../cri/gen/v1.js';
import { hostIfName, natNames } from '../network/service.js';
import { TestDaemon } from './harness/daemon.js';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';
import { hostNatSnapshot, iptablesNat, natLinesWith, removePortmapLeftovers } from './harness/host-nat.js';

/** Reads what a TCP server at host:port says first (the pods here answer "pong"). */
function tcpRead(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`${host}:${port}: no answer in ${timeoutMs} ms (got ${JSON.stringify(got)})`));
    }, timeoutMs);
    s.on('data', (b: Buffer) => (got += b.toString()));
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

/** Retries `tcpRead` while the pod's server is starting. */
async function tcpReadSoon(host: string, port: number): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      const got = await tcpRead(host, port, 1000);
      if (got) return got;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw last instanceof Error ? last : new Error(`${host}:${port}: nothing read`);
}

const links = (): string[] => (JSON.parse(execFileSync('ip', ['-j', 'link', 'show']).toString()) as { ifname: string }[]).map((l) => l.ifname);

/** What the host's NAT holds that names `id`. */
const natRulesOf = (id: string): string[] => natLinesWith(id);

interface Env {
  w: PodWorld;
  d: TestDaemon;
  /** The host's address on the pods' bridge. */
  gateway: string;
  mode: 'builtin' | 'cni';
}

function suite(mode: 'builtin' | 'cni'): void {
  describe(`pod networking (${mode})`, () => {
    const e = {} as Env;
    let cniBridge = '';
    let cniSubnet = '';

    before(async () => {
      hostNat = hostNatSnapshot();
      if (mode === 'builtin') {
        e.w = await startPodWorld();
        e.gateway = e.w.d.subnet.replace(/\.0\/24$/, '.1');
      } else {
        cniBridge = `skc${randomBytes(3).toString('hex')}`;
        const third = randomInt(256);
        cniSubnet = `10.${224 + randomInt(16)}.${third}.0/24`;
        e.w = await startPodWorld({
          toml: async (dir) => {
            const conf = join(dir, 'cni-conf');
            await mkdir(conf, { recursive: true });
            await writeFile(
              join(conf, '10-test.conflist'),
              JSON.stringify({
                cniVersion: '1.0.0',
                name: `skiff-e2e-${cniBridge}`,
                plugins: [
                  {
                    type: 'bridge',
                    bridge: cniBridge,
                    isGateway: true,
                    ipMasq: false,
                    hairpinMode: true,
                    ipam: { type: 'host-local', ranges: [[{ subnet: cniSubnet }]], dataDir: join(dir, 'host-local') },
                  },
                  { type: 'portmap', capabilities: { portMappings: true } },
                ],
              }),
            );
            return `[network]\nmode = "cni"\ncni_conf_dir = "${conf}"\ncni_bin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]\n`;
          },
        });
        e.gateway = cniSubnet.replace(/\.0\/24$/, '.1');
      }
      e.d = e.w.d;
    });

    let hostNat = { tables: '', hadPortmap: false };
    after(async () => {
      await e.w?.close();
      if (cniBridge && links().includes(cniBridge)) execFileSync('ip', ['link', 'del', cniBridge]);
      if (mode === 'cni') removePortmapLeftovers(hostNat);
    });

    const pod = (name: string, extra: Partial<v1.PodSandboxConfig> = {}): v1.PodSandboxConfig => ({
      metadata: { name, namespace: `net-${mode}`, uid: `uid-${mode}-${name}`, attempt: 0 },
      hostname: name,
      linux: { cgroup_parent: e.w.cgroupParent },
      ...extra,
    });

    async function runPod(cfg: v1.PodSandboxConfig, command: string[]): Promise<{ podId: string; containerId: string; ip: string }> {
      const { pod_sandbox_id: podId } = await e.d.client.runPodSandbox({ config: cfg });
      const { container_id: containerId } = await e.d.client.createContainer({
        pod_sandbox_id: podId,
        config: { metadata: { name: 'c' }, image: { image: e.w.image }, command },
        sandbox_config: cfg,
      });
      await e.d.client.startContainer({ container_id: containerId });
      const ip = (await e.d.client.podSandboxStatus({ pod_sandbox_id: podId })).status?.network?.ip ?? '';
      return { podId, containerId, ip };
    }

    const sh = async (id: string, script: string): Promise<{ out: string; code: number; err: string }> => {
      const r = await e.d.client.execSync({ container_id: id, cmd: ['sh', '-c', script], timeout: '10' });
      return { out: Buffer.from(r.stdout).toString(), code: r.exit_code, err: Buffer.from(r.stderr).toString() };
    };

    const PONG = ['sh', '-c', 'while true; do echo pong | nc -l -p 8080; done'];

    test('pods get an address; they reach each other (TCP, ICMP), the host reaches them, they reach the host', async () => {
      const a = await runPod(pod('a'), PONG);
      const b = await runPod(pod('b'), ['sleep', '3600']);
      const subnet = mode === 'builtin' ? e.d.subnet : cniSubnet;
      for (const p of [a, b]) assert.ok(p.ip.startsWith(subnet.split('.').slice(0, 3).join('.') + '.'), `pod IP ${p.ip} in ${subnet}`);
      assert.notEqual(a.ip, b.ip);

      const ping = await sh(b.containerId, `ping -c 1 -W 2 ${a.ip}`);
      assert.equal(ping.code, 0, ping.out + ping.err);
      let fromB = '';
      for (let i = 0; i < 40 && fromB !== 'pong\n'; i++) {
        fromB = (await sh(b.containerId, `nc -w 2 ${a.ip} 8080 </dev/null`)).out;
        if (fromB !== 'pong\n') await sleep(50);
      }
      assert.equal(fromB, 'pong\n', 'pod b reads pod a over TCP');
      assert.equal(await tcpReadSoon(a.ip, 8080), 'pong\n', 'the host reads pod a');

      // A listener of the test's own on the host's bridge address.
      const server: Server = createServer((s) => s.end('host\n'));
      await new Promise<void>((r) => server.listen(0, e.gateway, r));
      try {
        const port = (server.address() as { port: number }).port;
        const r = await sh(b.containerId, `nc -w 2 ${e.gateway} ${port} </dev/null`);
        assert.equal(r.out, 'host\n', r.err);
      } finally {
        await new Promise((r) => server.close(r));
      }
      for (const p of [a, b]) await e.d.client.removePodSandbox({ pod_sandbox_id: p.podId });
    });

    test('a hostPort maps 127.0.0.1 and the host’s bridge address to the pod; StopPodSandbox leaves nothing', async () => {
      const hostPort = 30000 + randomInt(10000);
      const cfg = pod('web', { port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: hostPort, host_ip: '' }] });
      const web = await runPod(cfg, PONG);
      assert.equal(await tcpReadSoon('127.0.0.1', hostPort), 'pong\n', 'via 127.0.0.1');
      assert.equal(await tcpReadSoon(e.gateway, hostPort), 'pong\n', 'via the bridge address');
      if (mode === 'builtin') {
        assert.ok(links().includes(hostIfName(web.podId)), 'the pod has its veth');
        assert.ok(natRulesOf(web.podId).length > 0, 'the hostPort is a rule naming the pod');
      }

      await e.d.client.stopPodSandbox({ pod_sandbox_id: web.podId });
      await assert.rejects(tcpRead('127.0.0.1', hostPort, 1000), 'the hostPort is gone');
      assert.equal((await e.d.client.podSandboxStatus({ pod_sandbox_id: web.podId })).status?.state, 'SANDBOX_NOTREADY');
      if (mode === 'builtin') {
        // The veth goes with the namespace, which the kernel removes in the background.
        for (let i = 0; i < 150 && links().includes(hostIfName(web.podId)); i++) await sleep(20);
        assert.ok(!links().includes(hostIfName(web.podId)), 'no veth left');
        assert.deepEqual(natRulesOf(web.podId), [], 'no rule left');
        const ipam = join(e.d.root, 'network', 'ipam', e.d.bridge);
        for (const f of await readdir(ipam)) {
          assert.ok(!(await readFile(join(ipam, f), 'utf8')).includes(web.podId), `IPAM file ${f} does not name the pod`);
        }
      } else {
        assert.deepEqual(natLinesWith(`dport ${hostPort}`), [], 'portmap removed its rule');
        assert.ok(!iptablesNat().includes(`--dport ${hostPort}`));
      }
      await e.d.client.removePodSandbox({ pod_sandbox_id: web.podId });
    });

    if (mode === 'builtin') {
      test('SIGKILL after the veth was made, before the pod was recorded: the restart reclaims veth, address and rules', async () => {
        await e.d.kill();
        await e.d.launch({ SKIFF_FAILPOINTS: 'sandbox-before-ready' });
        const hostPort = 30000 + randomInt(10000);
        const cfg = pod('crash', { port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: hostPort, host_ip: '' }] });
        const pending = e.d.client.runPodSandbox({ config: cfg }).catch((err: unknown) => err);
        let veth = '';
        for (let i = 0; i < 250 && !veth; i++) {
          await sleep(20);
          veth = links().find((l) => /^skiff[0-9a-f]{10}$/.test(l)) ?? '';
        }
        assert.ok(veth, 'the veth exists before the crash');
        const id10 = veth.slice(5);
        for (let i = 0; i < 100 && natRulesOf(id10).length === 0; i++) await sleep(20);
        assert.ok(natRulesOf(id10).length > 0, 'and the hostPort rule');
        await e.d.kill();
        await pending;
        await e.d.launch();
        assert.ok(!links().includes(veth), 'veth reclaimed');
        assert.deepEqual(natRulesOf(id10), [], 'rule reclaimed');
        const ipam = join(e.d.root, 'network', 'ipam', e.d.bridge);
        for (const f of await readdir(ipam)) assert.ok(!(await readFile(join(ipam, f), 'utf8')).includes(id10), `IPAM file ${f} released`);
        // The address is free again and the pod name too: kubelet's retry works.
        const again = await runPod(cfg, PONG);
        assert.equal(await tcpReadSoon('127.0.0.1', hostPort), 'pong\n');
        await e.d.client.removePodSandbox({ pod_sandbox_id: again.podId });
      });

      test('bad network input: precise status, nothing of the pod left', async () => {
        const sandboxesBefore = await readdir(join(e.d.state, 'sandboxes'));
        const vethsBefore = links().filter((l) => l.startsWith('skiff'));
        const bad: [Partial<v1.PodSandboxConfig>, RegExp][] = [
          [{ port_mappings: [{ protocol: 'TCP', container_port: 0, host_port: 8080, host_ip: '' }] }, /container_port must be 1-65535/],
          [{ port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 70000, host_ip: '' }] }, /host_port must be 0-65535/],
          [{ port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 8080, host_ip: 'localhost' }] }, /host_ip is not an IP address/],
          [{ annotations: { 'kubernetes.io/ingress-bandwidth': 'lots' } }, /ingress-bandwidth "lots"/],
        ];
        for (const [extra, re] of bad) {
          await assert.rejects(e.d.client.runPodSandbox({ config: pod('bad', extra) }), (err: ServiceError) => err.code === GrpcStatus.INVALID_ARGUMENT && re.test(err.details), JSON.stringify(extra));
        }
        // A hostPort another pod holds: the second pod fails whole.
        const hostPort = 30000 + randomInt(10000);
        const mapping = { port_mappings: [{ protocol: 'TCP' as const, container_port: 8080, host_port: hostPort, host_ip: '' }] };
        const { pod_sandbox_id: first } = await e.d.client.runPodSandbox({ config: pod('holder', mapping) });
        await assert.rejects(e.d.client.runPodSandbox({ config: pod('taker', mapping) }), (err: ServiceError) => err.code === GrpcStatus.ALREADY_EXISTS && new RegExp(`hostPort ${hostPort}/tcp`).test(err.details));
        assert.deepEqual((await e.d.client.listPodSandbox({})).items.map((p) => p.id), [first]);
        await e.d.client.removePodSandbox({ pod_sandbox_id: first });
        for (let i = 0; i < 150 && links().filter((l) => l.startsWith('skiff')).length > vethsBefore.length; i++) await sleep(20);
        assert.deepEqual(links().filter((l) => l.startsWith('skiff')), vethsBefore, 'no veth left');
        assert.deepEqual(await readdir(join(e.d.state, 'sandboxes')), sandboxesBefore, 'no sandbox dir left');
        assert.deepEqual(await readdir(join(e.d.state, 'netns')), [], 'no netns pin left');
      });

      test('an exhausted address pool is RESOURCE_EXHAUSTED, naming the range, and the pod is not half made', async () => {
        const small = await TestDaemon.start({ toml: `[network]\nmode = "builtin"\nbridge = "skx${randomBytes(3).toString('hex')}"\nsubnets = ["10.${240 + randomInt(16)}.${randomInt(256)}.0/30"]\n` });
        try {
          const { pod_sandbox_id: only } = await small.client.runPodSandbox({ config: pod('one') });
          await assert.rejects(
            small.client.runPodSandbox({ config: pod('two') }),
            (err: ServiceError) => err.code === GrpcStatus.RESOURCE_EXHAUSTED && /no free IPv4 address in 10\.\d+\.\d+\.0\/30/.test(err.details),
          );
          assert.deepEqual((await small.client.listPodSandbox({})).items.map((p) => p.id), [only]);
          assert.deepEqual(await readdir(join(small.state, 'netns')), [only], 'only the first pod has a netns');
          assert.deepEqual((await readdir(join(small.state, 'sandboxes'))).sort(), [only]);
        } finally {
          await small.cleanup();
        }
      });

      test('hostNetwork pods get no network of their own; the NAT table is skiff’s own', async () => {
        const cfg = pod('hostnet', { linux: { cgroup_parent: e.w.cgroupParent, security_context: { namespace_options: { network: 'NODE' } } } });
        const before = links().filter((l) => l.startsWith('skiff'));
        const { podId } = await runPod(cfg, ['sleep', '3600']);
        assert.equal((await e.d.client.podSandboxStatus({ pod_sandbox_id: podId })).status?.network?.ip, '');
        assert.deepEqual(links().filter((l) => l.startsWith('skiff')), before, 'no veth for a hostNetwork pod');
        await e.d.client.removePodSandbox({ pod_sandbox_id: podId });
        const { table } = natNames(e.d.bridge);
        const tables = (() => {
          try {
            return execFileSync('nft', ['list', 'tables']).toString();
          } catch {
            return '';
          }
        })();
        if (tables) assert.match(tables, new RegExp(`\\b${table}\\b`), `table ${table} exists, not the default "skiff"`);
      });
    }
  });
}

suite('builtin');
suite('cni');
