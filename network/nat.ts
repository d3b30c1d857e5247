// Egress masquerade and hostPorts of the built-in pod network, in skiff's own nftables table or,
// where nft is missing, in skiff's own iptables chains (nat-nft.ts, nat-iptables.ts draw the
// rules). Each hostPort rule carries its sandbox id in a comment, so removing a pod's ports, or
// every port of pods that no longer exist (reconcile after a crash), needs no state of ours.
//
// What the rules give (the CNI portmap plugin's behaviour): a hostPort answers on the host's
// addresses (or only on hostIP), from outside, from the host itself — 127.0.0.1 included, which
// needs route_localnet=1 on the bridge and masquerading of 127.0.0.0/8 — and from pods, the pod
// that owns the port included (hairpin: masqueraded so that replies come back through the host).
// IPv6 hostPorts answer on the host's IPv6 addresses but not on ::1, which cannot leave the host.
//
// Left to the caller: forwarding (net.ipv4.ip_forward, or per bridge), the filter policy of
// forwarded traffic, and hairpin mode on the bridge ports — with br_netfilter loaded, a pod's
// DNATed packet to its own hostPort is bridged back out of the port it came in by.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { SkiffError, errnoCode } from '../common/errors.js';
import { logger } from '../common/log.js';
import { type Cidr, type IpFamily, canonicalIp, formatCidr, parseCidr, parseIp } from './cidr.js';
import { type DnatRule, type InstalledRule, type NatBackend, type NatBackendName, type PortProtocol, runTool } from './nat-backend.js';
import { NftBackend } from './nat-nft.js';
import { IptablesBackend } from './nat-iptables.js';

export type { NatBackendName, PortProtocol } from './nat-backend.js';

const log = logger('nat');

export interface NatOptions {
  /** 'auto' (default): nftables when `nft` works, else iptables. */
  backend?: NatBackendName | 'auto';
  /** The nftables table (family inet); default 'skiff'. */
  table?: string;
  /** The iptables chains' prefix (PREFIX-HOSTPORTS, PREFIX-POSTROUTING, PREFIX-INPUT); default 'SKIFF'. */
  chainPrefix?: string;
}

export interface NatBase {
  /** The bridge the pods hang on; it must exist (route_localnet is set on it). */
  bridge: string;
  /** The pod subnets: one IPv4 and/or one IPv6 CIDR. */
  subnets: string[];
}

export interface PortMapping {
  /** 0: no host port (kubelet passes every container port); such entries are skipped. */
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
  /** '', undefined, 0.0.0.0 or ::: any local address. */
  hostIP?: string;
}

export interface PodIPs {
  ipv4?: string;
  ipv6?: string;
}

const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp'];
// Present once nf_conntrack is loaded with SCTP (CONFIG_NF_CT_PROTO_SCTP); ensureBase loads it.
const SCTP_CONNTRACK = '/proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established';

export class Nat {
  private readonly table: string;
  private readonly chainPrefix: string;
  private readonly wanted: NatBackendName | 'auto';
  private chosen?: Promise<NatBackend>;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(options: NatOptions = {}) {
    this.wanted = options.backend ?? 'auto';
    if (!['auto', 'nftables', 'iptables'].includes(this.wanted)) throw invalid(`NAT backend "${String(this.wanted)}": want auto, nftables or iptables`);
    this.table = options.table ?? 'skiff';
    if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(this.table)) throw invalid(`nftables table name "${this.table}": want a letter, then up to 31 letters, digits or _`);
    this.chainPrefix = options.chainPrefix ?? 'SKIFF';
    if (!/^[A-Za-z][A-Za-z0-9_]{0,15}$/.test(this.chainPrefix)) throw invalid(`iptables chain prefix "${this.chainPrefix}": want a letter, then up to 15 letters, digits or _`);
  }

  /** The backend in use (probing for nft on first use when 'auto'). */
  async backend(): Promise<NatBackendName> {
    return (await this.impl()).name;
  }

  /** Creates the table/chains and base rules, or brings them up to date. Idempotent. */
  async ensureBase(base: NatBase): Promise<void> {
    const bridge = checkBridge(base.bridge);
    const subnets = checkSubnets(base.subnets);
    return this.serialize(async (b) => {
      if (subnets.some((s) => s.family === 4)) await enableRouteLocalnet(bridge);
      await b.ensureBase({ bridge, subnets });
      log.debug({ backend: b.name, bridge, subnets: subnets.map(formatCidr) }, 'base rules in place');
    });
  }

  /**
   * Maps the sandbox's hostPorts, replacing any it had (a retry installs the same rules again).
   * A hostPort+protocol+hostIP that another sandbox holds is refused (SKIFF_ALREADY_EXISTS).
   */
  async addPortMappings(sandboxId: string, ips: PodIPs, mappings: PortMapping[]): Promise<void> {
    checkSandboxId(sandboxId);
    const rules = expand(sandboxId, ips, mappings);
    return this.serialize(async (b) => {
      const installed = await b.list();
      if (!installed) throw new SkiffError('SKIFF_NETWORK_FAILED', `hostPorts of sandbox ${sandboxId}: the ${b.name} base rules are missing (ensureBase first)`);
      for (const r of rules) {
        const taken = installed.find((o) => o.sandboxId !== sandboxId && overlaps(o, r));
        if (taken) throw new SkiffError('SKIFF_ALREADY_EXISTS', `hostPort ${describe(r)} is already mapped for sandbox ${taken.sandboxId}`);
      }
      const mine = installed.filter((o) => o.sandboxId === sandboxId);
      if (rules.some((r) => r.protocol === 'sctp') && !existsSync(SCTP_CONNTRACK)) {
        throw invalid(`hostPort of sandbox ${sandboxId}: this kernel has no SCTP connection tracking (nf_conntrack sctp), so SCTP ports cannot be mapped`);
      }
      try {
        await b.apply(mine, rules);
      } catch (err) {
        // iptables commits IPv4 and IPv6 apart: take out whatever half of the change landed
        const left = (await b.list().catch(() => undefined))?.filter((o) => o.sandboxId === sandboxId) ?? [];
        if (left.length > 0) await b.apply(left, []).catch((e: unknown) => log.error({ sandboxId, err: e }, 'rollback of hostPorts failed'));
        throw err;
      }
      log.debug({ sandboxId, hostPorts: rules.map(describe) }, 'hostPorts mapped');
    });
  }

  /** Removes the sandbox's hostPorts; a sandbox with none succeeds. */
  removePortMappings(sandboxId: string): Promise<void> {
    return this.serialize(async (b) => {
      const mine = (await b.list())?.filter((o) => o.sandboxId === sandboxId) ?? [];
      await b.apply(mine, []);
      if (mine.length > 0) log.debug({ sandboxId, rules: mine.length }, 'hostPorts removed');
    });
  }

  /** Removes the hostPorts of every sandbox not in `liveSandboxIds`; returns those sandboxes' ids. */
  reconcile(liveSandboxIds: Iterable<string>): Promise<string[]> {
    const live = new Set(liveSandboxIds);
    return this.serialize(async (b) => {
      const dead = (await b.list())?.filter((o) => !live.has(o.sandboxId)) ?? [];
      await b.apply(dead, []);
      const ids = [...new Set(dead.map((o) => o.sandboxId))].sort();
      if (ids.length > 0) log.info({ sandboxIds: ids }, 'removed the hostPorts of sandboxes that are gone');
      return ids;
    });
  }

  /** Removes the whole table (nftables) or all our chains and jumps (iptables). */
  teardown(): Promise<void> {
    return this.serialize(async (b) => {
      await b.teardown();
    });
  }

  private impl(): Promise<NatBackend> {
    this.chosen ??= (async () => {
      let name = this.wanted;
      if (name === 'auto') {
        const probe = await runTool('nft', ['list', 'tables']).catch(() => undefined);
        name = probe?.code === 0 ? 'nftables' : 'iptables';
        log.info({ backend: name }, 'NAT backend chosen');
      }
      return name === 'nftables' ? new NftBackend(this.table) : new IptablesBackend(this.chainPrefix);
    })();
    return this.chosen;
  }

  private serialize<T>(fn: (b: NatBackend) => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => fn(await this.impl()));
    this.tail = run.catch(() => undefined);
    return run;
  }
}

function invalid(message: string): SkiffError {
  return new SkiffError('SKIFF_INVALID_ARGUMENT', message);
}

function checkSandboxId(sandboxId: string): void {
  // it goes into rule comments: no spaces or quotes, and short enough for nftables' 128 bytes
  if (typeof sandboxId !== 'string' || !SANDBOX_ID.test(sandboxId)) throw invalid(`sandbox id ${JSON.stringify(sandboxId)}: want 1-64 letters, digits, _ . or -`);
}

function checkBridge(bridge: string): string {
  if (typeof bridge !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(bridge) || bridge === '.' || bridge === '..') {
    throw invalid(`bridge ${JSON.stringify(bridge)} is not a valid interface name`);
  }
  return bridge;
}

function checkSubnets(subnets: string[]): Cidr[] {
  if (!Array.isArray(subnets) || subnets.length === 0) throw invalid('NAT: no pod subnet given');
  const out = subnets.map((s) => {
    const c = typeof s === 'string' ? parseCidr(s) : undefined;
    if (!c) throw invalid(`pod subnet ${JSON.stringify(s)} is not a CIDR`);
    return c;
  });
  for (const family of [4, 6] as const) {
    if (out.filter((c) => c.family === family).length > 1) throw invalid(`pod subnets ${subnets.join(', ')}: want one IPv4 and/or one IPv6 CIDR`);
  }
  return out;
}

/** route_localnet=1 on the bridge: 127.0.0.1 may then be routed to it (localhost hostPorts). */
async function enableRouteLocalnet(bridge: string): Promise<void> {
  try {
    await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1');
  } catch (err) {
    const why = errnoCode(err) === 'ENOENT' ? 'no such interface' : (err as Error).message;
    throw new SkiffError('SKIFF_NETWORK_FAILED', `set route_localnet on bridge ${bridge}: ${why}`, { cause: err });
  }
}

/** Validates the mappings and turns each into one rule per family it applies to. */
function expand(sandboxId: string, ips: PodIPs, mappings: PortMapping[]): DnatRule[] {
  const podIP = new Map<IpFamily, string>();
  for (const [family, text] of [
    [4, ips.ipv4],
    [6, ips.ipv6],
  ] as const) {
    if (text === undefined || text === '') continue;
    const ip = parseIp(text);
    if (ip?.family !== family) throw invalid(`sandbox ${sandboxId}: pod address ${JSON.stringify(text)} is not an IPv${family} address`);
    podIP.set(family, canonicalIp(text)!);
  }
  const rules: DnatRule[] = [];
  for (const m of mappings) {
    if (!PROTOCOLS.includes(m.protocol)) throw invalid(`port mapping of sandbox ${sandboxId}: protocol ${JSON.stringify(m.protocol)}: want tcp, udp or sctp`);
    if (!Number.isInteger(m.hostPort) || m.hostPort < 0 || m.hostPort > 65535) throw invalid(`port mapping of sandbox ${sandboxId}: hostPort ${m.hostPort} is not a port number`);
    if (m.hostPort === 0) continue;
    if (!Number.isInteger(m.containerPort) || m.containerPort < 1 || m.containerPort > 65535) {
      throw invalid(`port mapping of sandbox ${sandboxId}: containerPort ${m.containerPort} of hostPort ${m.hostPort} is not a port number`);
    }
    const any = m.hostIP === undefined || m.hostIP === '' || m.hostIP === '0.0.0.0' || m.hostIP === '::';
    const hostIP = any ? '' : canonicalIp(m.hostIP!);
    if (hostIP === undefined) throw invalid(`port mapping of sandbox ${sandboxId}: hostIP ${JSON.stringify(m.hostIP)} is not an IP address`);
    const families: IpFamily[] = any ? [...podIP.keys()] : [parseIp(hostIP)!.family];
    for (const family of families) {
      const ip = podIP.get(family);
      if (ip === undefined) throw invalid(`port mapping of sandbox ${sandboxId}: hostIP ${hostIP} is IPv${family} but the pod has no IPv${family} address`);
      const rule: DnatRule = { sandboxId, family, protocol: m.protocol, hostPort: m.hostPort, hostIP, podIP: ip, containerPort: m.containerPort };
      const twice = rules.find((r) => overlaps(r, rule));
      if (twice) throw invalid(`port mappings of sandbox ${sandboxId}: hostPort ${describe(rule)} is listed twice`);
      rules.push(rule);
    }
    if (families.length === 0) throw invalid(`port mapping of sandbox ${sandboxId}: hostPort ${m.hostPort}/${m.protocol} but the pod has no address`);
  }
  return rules;
}

/** Two rules that would catch the same packets: same port and protocol, and a hostIP in common. */
function overlaps(a: Pick<InstalledRule, 'family' | 'protocol' | 'hostPort' | 'hostIP'>, b: DnatRule): boolean {
  return a.family === b.family && a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIP === '' || b.hostIP === '' || a.hostIP === b.hostIP);
}

function describe(r: Pick<DnatRule, 'family' | 'protocol' | 'hostPort' | 'hostIP'>): string {
  return `${r.hostPort}/${r.protocol} on ${r.hostIP === '' ? `any IPv${r.family} address` : r.hostIP}`;
}
