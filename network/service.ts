// A pod's network, whichever way it is made: the built-in bridge (veth + IPAM over rtnetlink, NAT
// and hostPorts in skiff's own nftables table or iptables chains), or the node's CNI plugin chain.
// The mode a pod got is the caller's to remember: a pod made by one is always unmade by the same,
// even when the node's CNI config appears or goes in between. Knows nothing of CRI.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SkiffError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import { attachPod, detachPod, ensureBridge } from './bridge.js';
import { CniNetwork, type CniBandwidth, type CniDnsConfig } from './cni/index.js';
import { Ipam, type IpamAddress } from './ipam.js';
import { deleteLink, getLink, listLinks } from './links.js';
import { Nat, type PortMapping } from './nat.js';
import { hostRouteSocket } from './netlink/netns.js';

const log = logger('network');

export type NetworkMode = 'builtin' | 'cni';
export type { PortMapping } from './nat.js';

export interface NetworkConfig {
  /** auto: CNI when cniConfDir holds a network config, else the built-in bridge. */
  mode: 'auto' | NetworkMode;
  /** The built-in network's bridge, its subnets (one IPv4 and/or one IPv6 CIDR) and MTU. */
  bridge: string;
  subnets: string[];
  mtu: number;
  /** Egress masquerade and hostPorts: nftables, iptables, or whichever the host has (auto). */
  natBackend: 'auto' | 'nftables' | 'iptables';
  cniConfDir: string;
  cniBinDirs: string[];
  /** Where the IPAM allocations and the CNI result cache live (under skiffd's root). */
  dataDir: string;
}

export interface PodNetworkRequest {
  sandboxId: string;
  netnsPath: string;
  podName: string;
  podNamespace: string;
  podUid: string;
  portMappings: PortMapping[];
  dns?: CniDnsConfig;
  bandwidth?: CniBandwidth;
}

export interface PodNetworkResult {
  mode: NetworkMode;
  /** The pod's addresses, IPv4 first (kubelet takes the first as the pod IP). */
  ips: string[];
}

export interface NetworkStatus {
  ready: boolean;
  reason?: string;
  message?: string;
}

/** The host end of a pod's veth: "skiff" + 10 hex of the sandbox id (15 bytes, IFNAMSIZ-1). */
export function hostIfName(sandboxId: string): string {
  return `skiff${sandboxId.slice(0, 10)}`;
}

const POD_IFNAME = 'eth0';
/** How long the kernel gets to remove a veth with its namespace before skiff deletes it itself. */
const VETH_SWEEP_MS = 3000;

/**
 * skiff's nftables table and iptables chain prefix for a bridge: the default bridge gets the plain
 * names, any other (tests, a second daemon) its own, so that two never share rules.
 */
export function natNames(bridge: string): { table: string; chainPrefix: string } {
  if (bridge === 'skiff0') return { table: 'skiff', chainPrefix: 'SKIFF' };
  const own = createHash('sha256').update(bridge).digest('hex').slice(0, 8);
  return { table: `skiff_${own}`, chainPrefix: `SK${own.toUpperCase()}` };
}

/** Removes the built-in network's bridge and NAT rules (uninstall, and tests' cleanup). */
export async function removeBuiltinNetwork(bridge: string, natBackend: NetworkConfig['natBackend'] = 'auto'): Promise<void> {
  await new Nat({ backend: natBackend, ...natNames(bridge) }).teardown();
  const sock = await hostRouteSocket();
  const link = await getLink(sock, bridge);
  if (link?.kind === 'bridge') await deleteLink(sock, link.index);
}

export class PodNetwork {
  private readonly ipam: Ipam;
  private readonly nat: Nat;
  private readonly cni: CniNetwork;
  /** The built-in network's bridge and base rules, made once (again after a failure). */
  private builtinReady: Promise<void> | undefined;

  constructor(private readonly cfg: NetworkConfig) {
    this.ipam = new Ipam({ dir: join(cfg.dataDir, 'ipam', cfg.bridge), ranges: cfg.subnets.map((subnet) => ({ subnet })) });
    this.nat = new Nat({ backend: cfg.natBackend, ...natNames(cfg.bridge) });
    this.cni = new CniNetwork({ confDir: cfg.cniConfDir, binDirs: cfg.cniBinDirs, cacheDir: join(cfg.dataDir, 'cni') });
  }

  /** The mode a new pod gets now: auto means CNI while the conf dir holds a network config. */
  async modeForNewPod(): Promise<NetworkMode> {
    if (this.cfg.mode !== 'auto') return this.cfg.mode;
    return (await this.cni.config()) ? 'cni' : 'builtin';
  }

  /** NetworkReady: the mode new pods get can set them up. */
  async status(): Promise<NetworkStatus> {
    const mode = await this.modeForNewPod().catch(() => 'builtin' as const);
    if (mode === 'cni') return this.cni.status();
    try {
      await this.ensureBuiltin();
      return { ready: true };
    } catch (err) {
      return { ready: false, reason: 'NetworkPluginNotReady', message: `built-in network: ${errorMessage(err)}` };
    }
  }

  /** Sets up the pod's network in its (pinned) namespace; on failure nothing of it is left. */
  async attach(req: PodNetworkRequest): Promise<PodNetworkResult> {
    const mode = await this.modeForNewPod();
    return mode === 'cni' ? this.attachCni(req) : this.attachBuiltin(req);
  }

  /**
   * Undoes attach; idempotent, and fine for a pod whose attach never finished. `o.hostPorts`: the
   * pod had hostPort mappings (else there are no rules to look for). `o.namespaceGoes`: the
   * caller unpins the pod's namespace right after, and the kernel then removes the veth with it
   * in the background — deleting it here would wait out the kernel's RCU grace periods (~30 ms).
   * A veth still there a little later (something else kept the namespace) is deleted then.
   */
  async detach(mode: NetworkMode, sandboxId: string, netnsPath?: string, o: { hostPorts?: boolean; namespaceGoes?: boolean } = {}): Promise<void> {
    if (mode === 'cni') {
      await this.cni.del({ containerId: sandboxId, ifName: POD_IFNAME, ...(netnsPath ? { netnsPath } : {}) });
      return;
    }
    const veth = hostIfName(sandboxId);
    const failures: string[] = [];
    const steps: [string, () => Promise<unknown>][] = [];
    if (o.hostPorts !== false) steps.push(['hostPort rules', () => this.nat.removePortMappings(sandboxId)]);
    if (o.namespaceGoes) this.sweepLater(veth);
    else steps.push(['veth', () => detachPod({ hostIfName: veth })]);
    steps.push(['IP addresses', () => this.ipam.release(sandboxId)]);
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        failures.push(`${what}: ${errorMessage(err)}`);
      }
    }
    if (failures.length) throw new SkiffError('SKIFF_NETWORK_FAILED', `pod ${sandboxId} network teardown: ${failures.join('; ')}`);
  }

  /** Deletes `veth` if it outlived its namespace by a few seconds. */
  private sweepLater(veth: string): void {
    setTimeout(() => {
      void (async () => {
        const sock = await hostRouteSocket();
        if (!(await getLink(sock, veth))) return;
        log.warn({ link: veth }, 'a pod veth outlived its network namespace; deleting it');
        await detachPod({ hostIfName: veth });
      })().catch((err: unknown) => log.error({ err, link: veth }, 'cannot delete a leftover pod veth'));
    }, VETH_SWEEP_MS).unref();
  }

  /**
   * At start: releases what pods that no longer exist still hold (a crash between making a pod's
   * network and recording the pod): IP allocations, hostPort rules, veths, CNI attachments.
   */
  async reconcile(live: ReadonlySet<string>): Promise<void> {
    const freed = await this.ipam.reclaim(live);
    for (const a of freed) log.warn({ sandbox: a.sandboxId, addresses: a.addresses.map((x) => x.address) }, 'released the addresses of a pod that no longer exists');
    try {
      for (const id of await this.nat.reconcile(live)) log.warn({ sandbox: id }, 'removed the hostPort rules of a pod that no longer exists');
    } catch (err) {
      log.warn({ err }, 'hostPort rules not reconciled');
    }
    const prefixes = new Set([...live].map((id) => hostIfName(id)));
    const sock = await hostRouteSocket();
    for (const link of await listLinks(sock)) {
      if (link.kind !== 'veth' || !/^skiff[0-9a-f]{10}$/.test(link.name) || prefixes.has(link.name)) continue;
      log.warn({ link: link.name }, 'removing the veth of a pod that no longer exists');
      await detachPod({ hostIfName: link.name }).catch((err: unknown) => log.error({ err, link: link.name }, 'cannot remove a stale veth'));
    }
    const gc = await this.cni.gc([...live].map((containerId) => ({ containerId, ifName: POD_IFNAME })));
    for (const err of gc.errors) log.warn({ err }, 'CNI garbage collection');
  }

  private ensureBuiltin(): Promise<void> {
    this.builtinReady ??= (async () => {
      const gateways = this.ipam.gateways().map((g) => `${g.address}/${g.prefixLen}`);
      await ensureBridge({ name: this.cfg.bridge, mtu: this.cfg.mtu, gateways });
      await this.nat.ensureBase({ bridge: this.cfg.bridge, subnets: this.cfg.subnets });
    })().catch((err: unknown) => {
      this.builtinReady = undefined; // tried again at the next pod
      throw err;
    });
    return this.builtinReady;
  }

  private async attachBuiltin(req: PodNetworkRequest): Promise<PodNetworkResult> {
    await this.ensureBuiltin();
    let addresses: IpamAddress[] = [];
    try {
      addresses = await this.ipam.allocate(req.sandboxId);
      await attachPod({
        bridge: this.cfg.bridge,
        netnsPath: req.netnsPath,
        hostIfName: hostIfName(req.sandboxId),
        podIfName: POD_IFNAME,
        mtu: this.cfg.mtu,
        addresses: addresses.map((a) => ({ address: a.address, prefixLen: a.prefixLen, gateway: a.gateway })),
      });
      if (req.portMappings.length) {
        const ipv4 = addresses.find((a) => a.family === 4)?.address;
        const ipv6 = addresses.find((a) => a.family === 6)?.address;
        await this.nat.addPortMappings(req.sandboxId, { ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}) }, req.portMappings);
      }
    } catch (err) {
      await this.detach('builtin', req.sandboxId).catch((undo: unknown) => log.error({ err: undo, sandbox: req.sandboxId }, 'undoing a failed pod network left something'));
      throw err;
    }
    return { mode: 'builtin', ips: sortIps(addresses.map((a) => a.address)) };
  }

  private async attachCni(req: PodNetworkRequest): Promise<PodNetworkResult> {
    const result = await this.cni.add({
      containerId: req.sandboxId,
      ifName: POD_IFNAME,
      netnsPath: req.netnsPath,
      podName: req.podName,
      podNamespace: req.podNamespace,
      podUid: req.podUid,
      capabilities: {
        ...(req.portMappings.length ? { portMappings: req.portMappings.map((m) => ({ ...m, hostIP: m.hostIP ?? '' })) } : {}),
        ...(req.dns ? { dns: req.dns } : {}),
        ...(req.bandwidth ? { bandwidth: req.bandwidth } : {}),
      },
    });
    // The pod's own addresses: those on its eth0 (a chain may report the host side's too).
    const mine = result.ips.filter((ip) => ip.interface === undefined || ip.interface === POD_IFNAME);
    return { mode: 'cni', ips: sortIps(mine.map((ip) => ip.address)) };
  }
}

/** IPv4 first, as kubelet reads the first as the pod IP and the rest as additional IPs. */
function sortIps(ips: string[]): string[] {
  return [...ips.filter((ip) => !ip.includes(':')), ...ips.filter((ip) => ip.includes(':'))];
}
