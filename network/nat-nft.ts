// The nftables backend: one table of skiff's own (family inet, so IPv4 and IPv6 share it), written
// with `nft -f -` in single transactions and read back with `nft -j list table`. Nothing outside
// that table is touched, so deleting it undoes everything.
//
//   prerouting, output (nat, -100) ── local destination ──▶ hostports: one DNAT rule per hostPort
//                                                           and family, commented with its sandbox
//   postrouting (nat, 100): pod subnets leaving by any other interface than the bridge → masquerade;
//                           DNATed traffic into the bridge from a pod subnet (hairpin, pod to pod
//                           through a hostPort) or from 127.0.0.0/8 (localhost hostPorts) → masquerade
//   input (filter, 0): 127.0.0.0/8 arriving from the bridge only as replies (route_localnet guard)
import { SkiffError } from '../common/errors.js';
import { formatCidr } from './cidr.js';
import {
  type BaseRules,
  type DnatRule,
  type InstalledRule,
  type NatBackend,
  mustRun,
  parseRuleComment,
  ruleComment,
  runTool,
} from './nat-backend.js';

/** The script that creates the table or brings its base chains up to date (hostports is kept). */
export function nftBaseScript(table: string, base: BaseRules): string {
  const t = `inet ${table}`;
  const br = JSON.stringify(base.bridge);
  const v4 = base.subnets.filter((s) => s.family === 4).map(formatCidr);
  const v6 = base.subnets.filter((s) => s.family === 6).map(formatCidr);
  const lines = [
    `add table ${t}`,
    `add chain ${t} hostports`,
    `add chain ${t} prerouting { type nat hook prerouting priority -100; policy accept; }`,
    `flush chain ${t} prerouting`,
    `add rule ${t} prerouting fib daddr type local jump hostports`,
    `add chain ${t} output { type nat hook output priority -100; policy accept; }`,
    `flush chain ${t} output`,
    // ::1 cannot be DNATed out of the host (IPv6 has no route_localnet): leave it to local listeners
    `add rule ${t} output ip6 daddr ::1 return`,
    `add rule ${t} output fib daddr type local jump hostports`,
    `add chain ${t} postrouting { type nat hook postrouting priority 100; policy accept; }`,
    `flush chain ${t} postrouting`,
  ];
  if (v4.length > 0) {
    lines.push(
      `add rule ${t} postrouting ip saddr { ${v4.join(', ')} } oifname != ${br} masquerade`,
      `add rule ${t} postrouting oifname ${br} ct status dnat ip saddr { 127.0.0.0/8, ${v4.join(', ')} } masquerade`,
    );
  }
  if (v6.length > 0) {
    lines.push(
      `add rule ${t} postrouting ip6 saddr { ${v6.join(', ')} } oifname != ${br} masquerade`,
      `add rule ${t} postrouting oifname ${br} ct status dnat ip6 saddr { ${v6.join(', ')} } masquerade`,
    );
  }
  lines.push(
    `add chain ${t} input { type filter hook input priority 0; policy accept; }`,
    `flush chain ${t} input`,
    // route_localnet=1 on the bridge lets pods address the host's 127.0.0.0/8: only replies to
    // our own DNATed localhost connections may come in that way (CVE-2020-8558, kube-proxy's guard)
    `add rule ${t} input iifname ${br} ip daddr 127.0.0.0/8 ct state != { established, related } ct status ! dnat drop`,
  );
  return lines.join('\n') + '\n';
}

/** The rule text (after `add rule inet TABLE hostports`) of one hostPort. */
export function nftDnatRule(r: DnatRule): string {
  const ip = r.family === 4 ? 'ip' : 'ip6';
  const match = r.hostIP === '' ? `meta nfproto ipv${r.family}` : `${ip} daddr ${r.hostIP}`;
  const to = r.family === 4 ? `${r.podIP}:${r.containerPort}` : `[${r.podIP}]:${r.containerPort}`;
  return `${match} ${r.protocol} dport ${r.hostPort} dnat ${ip} to ${to} comment ${JSON.stringify(ruleComment(r))}`;
}

interface NftJsonRule {
  chain?: string;
  handle?: number;
  comment?: string;
  expr?: { dnat?: { family?: string } }[];
}

export class NftBackend implements NatBackend {
  readonly name = 'nftables';

  constructor(
    private readonly table: string,
    private readonly nft = 'nft',
  ) {}

  async ensureBase(base: BaseRules): Promise<void> {
    await this.run(`set up nftables table inet ${this.table}`, nftBaseScript(this.table, base));
  }

  async list(): Promise<InstalledRule[] | undefined> {
    const r = await runTool(this.nft, ['-j', 'list', 'table', 'inet', this.table]).catch((err: unknown) => {
      throw new SkiffError('SKIFF_NETWORK_FAILED', `list nftables table inet ${this.table}: cannot run ${this.nft}: ${(err as Error).message}`, { cause: err });
    });
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return undefined;
      throw new SkiffError('SKIFF_NETWORK_FAILED', `list nftables table inet ${this.table}: ${r.stderr.trim()}`);
    }
    const doc = JSON.parse(r.stdout) as { nftables?: { chain?: { name?: string }; rule?: NftJsonRule }[] };
    const items = doc.nftables ?? [];
    if (!items.some((i) => i.chain?.name === 'hostports')) return undefined;
    const out: InstalledRule[] = [];
    for (const { rule } of items) {
      if (rule?.chain !== 'hostports' || rule.comment === undefined || rule.handle === undefined) continue;
      const parsed = parseRuleComment(rule.comment);
      const dnat = rule.expr?.find((e) => e.dnat)?.dnat;
      if (!parsed || !dnat) continue;
      out.push({ ...parsed, family: dnat.family === 'ip6' ? 6 : 4, ref: String(rule.handle) });
    }
    return out;
  }

  async apply(remove: InstalledRule[], add: DnatRule[]): Promise<void> {
    if (remove.length === 0 && add.length === 0) return;
    const t = `inet ${this.table}`;
    const script = [
      ...remove.map((r) => `delete rule ${t} hostports handle ${r.ref}`),
      ...add.map((r) => `add rule ${t} hostports ${nftDnatRule(r)}`),
    ].join('\n');
    await this.run(`update hostPorts in nftables table ${t}`, script + '\n');
  }

  async teardown(): Promise<void> {
    // Adding first makes the delete succeed whether or not the table was there.
    await this.run(`delete nftables table inet ${this.table}`, `add table inet ${this.table}\ndelete table inet ${this.table}\n`);
  }

  private async run(what: string, script: string): Promise<void> {
    await mustRun(what, this.nft, ['-f', '-'], script);
  }
}
