// Benchmark, network part: the time to set up and to tear down one pod's network, for the
// built-in network (veth + IPAM over rtnetlink in-process) and for the CNI reference chain
// (bridge + host-local + portmap, each plugin a process), through the same PodNetwork API that
// RunPodSandbox and StopPodSandbox use (teardown includes unpinning the namespace, as
// StopPodSandbox does). Pods are pinned network namespaces (skiff-ns); no hostPorts.
import { randomBytes, randomInt } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { hostNatSnapshot, removePortmapLeftovers } from '../e2e/harness/host-nat.js';
import { nativeBinary } from '../native/native.js';
import { PodNetwork, removeBuiltinNetwork, type NetworkConfig, type PodNetworkRequest } from '../network/service.js';
import { unpinNamespace } from '../pod/host.js';
import { percentile, table } from './stats.js';

const PODS = Number(process.env.SKIFF_BENCH_NETPODS ?? 30);
const GOAL_SPEEDUP = 5;

interface Figures {
  label: string;
  setUp: number[];
  tearDown: number[];
}

/** Sets up every pod's network one after another, then tears each down with its namespace pin. */
async function measure(label: string, net: PodNetwork, netns: string[]): Promise<Figures> {
  const f: Figures = { label, setUp: [], tearDown: [] };
  const ids = netns.map(() => randomBytes(32).toString('hex'));
  const request = (i: number): PodNetworkRequest => ({ sandboxId: ids[i], netnsPath: netns[i], podName: `bench-${i}`, podNamespace: 'bench', podUid: `uid-${i}`, portMappings: [] });
  // One untimed pod first (its own namespace): the bridge, base rules and the netlink worker are made once.
  const warmNs = `${netns[0]}-warm`;
  execFileSync(nativeBinary('skiff-ns'), ['netns-pin', warmNs]);
  const warmId = randomBytes(32).toString('hex');
  const warm = await net.attach({ ...request(0), sandboxId: warmId, netnsPath: warmNs });
  await net.detach(warm.mode, warmId, warmNs);
  await unpinNamespace(warmNs);
  const modes: string[] = [];
  for (let i = 0; i < netns.length; i++) {
    const t0 = performance.now();
    const r = await net.attach(request(i));
    f.setUp.push(performance.now() - t0);
    if (r.ips.length === 0) throw new Error(`${label}: pod ${i} got no address`);
    modes.push(r.mode);
  }
  // Teardown as StopPodSandbox does it: the network, then the namespace's pin.
  for (let i = 0; i < netns.length; i++) {
    const t0 = performance.now();
    await net.detach(modes[i] as 'builtin' | 'cni', ids[i], netns[i], { hostPorts: false, namespaceGoes: true });
    await unpinNamespace(netns[i]);
    f.tearDown.push(performance.now() - t0);
  }
  return f;
}

export async function benchNetwork(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-bench-net-'));
  const ns = nativeBinary('skiff-ns');
  const netns: string[] = [];
  const builtinBridge = `skb${randomBytes(3).toString('hex')}`;
  const cniBridge = `skc${randomBytes(3).toString('hex')}`;
  const nat = hostNatSnapshot();
  const results: Figures[] = [];
  try {
    const pin = (target: string): string[] => {
      const paths = Array.from({ length: PODS }, (_, i) => join(dir, `${target}-${i}`));
      for (const path of paths) execFileSync(ns, ['netns-pin', path]);
      netns.push(...paths);
      return paths;
    };
    const base: Omit<NetworkConfig, 'mode' | 'bridge' | 'subnets' | 'dataDir'> = {
      mtu: 1500,
      natBackend: 'auto',
      cniConfDir: join(dir, 'cni-conf'),
      cniBinDirs: ['/usr/lib/cni', '/opt/cni/bin'],
    };
    const builtin = new PodNetwork({ ...base, mode: 'builtin', bridge: builtinBridge, subnets: [`10.${240 + randomInt(16)}.${randomInt(256)}.0/24`], dataDir: join(dir, 'builtin') });
    results.push(await measure('built-in (rtnetlink)', builtin, pin('builtin')));

    const cniSubnet = `10.${224 + randomInt(16)}.${randomInt(256)}.0/24`;
    await mkdir(base.cniConfDir, { recursive: true });
    await writeFile(
      join(base.cniConfDir, '10-bench.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `skiff-bench-${cniBridge}`,
        plugins: [
          { type: 'bridge', bridge: cniBridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: 'host-local', ranges: [[{ subnet: cniSubnet }]], dataDir: join(dir, 'host-local') } },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    const cni = new PodNetwork({ ...base, mode: 'cni', bridge: cniBridge, subnets: [cniSubnet], dataDir: join(dir, 'cni') });
    results.push(await measure('CNI bridge+host-local+portmap', cni, pin('cni')));
  } finally {
    await removeBuiltinNetwork(builtinBridge).catch(() => undefined);
    try {
      execFileSync('ip', ['link', 'del', cniBridge], { stdio: 'ignore' });
    } catch {
      /* not made */
    }
    // ipMasq rules of the bridge plugin go with its DEL; portmap's chains stay unless removed.
    removePortmapLeftovers(nat);
    for (const path of netns) await unpinNamespace(path).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  const ms = (v: number): string => v.toFixed(2);
  const rows = results.map((r) => [r.label, ms(percentile(r.setUp, 50)), ms(percentile(r.setUp, 90)), ms(percentile(r.tearDown, 50)), ms(percentile(r.tearDown, 90))]);
  const total = (r: Figures): number => percentile(r.setUp, 50) + percentile(r.tearDown, 50);
  const speedup = total(results[1]) / total(results[0]);
  return [
    `${PODS} pods (+1 warm-up) each, set up one after another then torn down; pinned network namespaces, no hostPorts.`,
    table(['network', 'setup p50 ms', 'setup p90 ms', 'teardown p50 ms', 'teardown p90 ms'], rows),
    `built-in vs CNI exec path, setup + teardown p50: ${speedup.toFixed(1)}x faster (goal >= ${GOAL_SPEEDUP}x: ${speedup >= GOAL_SPEEDUP ? 'ok' : 'over'})`,
  ].join('\n');
}
