// The iptables backend, for hosts without nft: chains of skiff's own in the nat (and, for IPv4,
// filter) tables of iptables and ip6tables, reached by one jump rule from each built-in chain.
// Changes go through `iptables-restore --noflush` (one commit per table), reads through
// `iptables-save -t TABLE`. Same rules as the nftables backend (see nat-nft.ts):
//
//   nat PREROUTING, OUTPUT ─ -m addrtype --dst-type LOCAL ─▶ P-HOSTPORTS: DNAT per hostPort
//   nat POSTROUTING ─▶ P-POSTROUTING: egress and hairpin/localhost masquerade
//   filter INPUT ─▶ P-INPUT: 127.0.0.0/8 from the bridge only as replies
import { SkiffError } from '../common/errors.js';
import { type IpFamily, formatCidr } from './cidr.js';
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

interface Chains {
  hostports: string;
  postrouting: string;
  input: string;
}

export function iptablesChains(prefix: string): Chains {
  return { hostports: `${prefix}-HOSTPORTS`, postrouting: `${prefix}-POSTROUTING`, input: `${prefix}-INPUT` };
}

/** The rule (after `-A P-HOSTPORTS`) of one hostPort. */
export function iptablesDnatRule(r: DnatRule): string {
  const dst = r.hostIP === '' ? '' : `-d ${r.hostIP}/${r.family === 4 ? 32 : 128} `;
  const to = r.family === 4 ? `${r.podIP}:${r.containerPort}` : `[${r.podIP}]:${r.containerPort}`;
  return `${dst}-p ${r.protocol} -m ${r.protocol} --dport ${r.hostPort} -m comment --comment "${ruleComment(r)}" -j DNAT --to-destination ${to}`;
}

/**
 * The restore script of one family's base, given what iptables-save shows now: our own chains
 * are declared (which flushes them) except HOSTPORTS, which holds the per-pod rules; the jumps
 * from the built-in chains are added when missing.
 */
export function iptablesBaseScript(prefix: string, family: IpFamily, base: BaseRules, savedNat: string, savedFilter: string): string {
  const c = iptablesChains(prefix);
  const br = base.bridge;
  const subnets = base.subnets.filter((s) => s.family === family).map(formatCidr);
  const nat = ['*nat'];
  if (!hasChain(savedNat, c.hostports)) nat.push(`:${c.hostports} - [0:0]`);
  nat.push(`:${c.postrouting} - [0:0]`);
  for (const s of subnets) {
    nat.push(`-A ${c.postrouting} -s ${s} ! -o ${br} -j MASQUERADE`);
    nat.push(`-A ${c.postrouting} -s ${s} -o ${br} -m conntrack --ctstate DNAT -j MASQUERADE`);
  }
  if (family === 4 && subnets.length > 0) nat.push(`-A ${c.postrouting} -s 127.0.0.0/8 -o ${br} -m conntrack --ctstate DNAT -j MASQUERADE`);
  const notLoopback6 = family === 6 ? '! -d ::1/128 ' : ''; // ::1 cannot be DNATed out of the host
  if (!hasJump(savedNat, 'PREROUTING', c.hostports)) {
    nat.push(`-I PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "${prefix} hostPorts" -j ${c.hostports}`);
  }
  if (!hasJump(savedNat, 'OUTPUT', c.hostports)) {
    nat.push(`-I OUTPUT ${notLoopback6}-m addrtype --dst-type LOCAL -m comment --comment "${prefix} hostPorts" -j ${c.hostports}`);
  }
  if (!hasJump(savedNat, 'POSTROUTING', c.postrouting)) {
    nat.push(`-A POSTROUTING -m comment --comment "${prefix} masquerade" -j ${c.postrouting}`);
  }
  nat.push('COMMIT');
  if (family === 6) return nat.join('\n') + '\n';
  const filter = ['*filter', `:${c.input} - [0:0]`];
  // route_localnet=1 on the bridge lets pods address the host's 127.0.0.0/8: only replies to our
  // own DNATed localhost connections may come in that way (CVE-2020-8558, kube-proxy's guard)
  filter.push(`-A ${c.input} -i ${br} -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`);
  if (!hasJump(savedFilter, 'INPUT', c.input)) filter.push(`-I INPUT -m comment --comment "${prefix} localnet" -j ${c.input}`);
  filter.push('COMMIT');
  return [...nat, ...filter].join('\n') + '\n';
}

function hasChain(saved: string, chain: string): boolean {
  return saved.split('\n').some((l) => l.startsWith(`:${chain} `));
}

function jumpLines(saved: string, from: string, to: string): string[] {
  return saved.split('\n').filter((l) => l.startsWith(`-A ${from} `) && (l.endsWith(` -j ${to}`) || l.includes(` -j ${to} `)));
}

function hasJump(saved: string, from: string, to: string): boolean {
  return jumpLines(saved, from, to).length > 0;
}

const COMMENT = /--comment (?:"([^"]*)"|(\S+))/;

interface Tools {
  save: string;
  restore: string;
}

export class IptablesBackend implements NatBackend {
  readonly name = 'iptables';
  private readonly chains: Chains;
  private readonly tools: Record<IpFamily, Tools> = {
    4: { save: 'iptables-save', restore: 'iptables-restore' },
    6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
  };
  private v6?: Promise<boolean>;

  constructor(private readonly prefix: string) {
    this.chains = iptablesChains(prefix);
  }

  async ensureBase(base: BaseRules): Promise<void> {
    for (const family of [4, 6] as const) {
      if (family === 6 && !(await this.hasV6())) {
        if (base.subnets.some((s) => s.family === 6)) throw new SkiffError('SKIFF_NETWORK_FAILED', 'IPv6 pod subnet configured but ip6tables is not installed');
        continue;
      }
      const savedNat = await this.save(family, 'nat');
      const savedFilter = family === 4 ? await this.save(family, 'filter') : '';
      await this.restore(family, `set up ${this.prefix} chains`, iptablesBaseScript(this.prefix, family, base, savedNat, savedFilter));
    }
  }

  async list(): Promise<InstalledRule[] | undefined> {
    const out: InstalledRule[] = [];
    for (const family of [4, 6] as const) {
      if (family === 6 && !(await this.hasV6())) continue;
      const saved = await this.save(family, 'nat');
      if (!hasChain(saved, this.chains.hostports)) {
        if (family === 4) return undefined;
        continue;
      }
      for (const line of saved.split('\n')) {
        if (!line.startsWith(`-A ${this.chains.hostports} `)) continue;
        const m = COMMENT.exec(line);
        const parsed = m && parseRuleComment(m[1] ?? m[2]);
        if (parsed) out.push({ ...parsed, family, ref: line });
      }
    }
    return out;
  }

  async apply(remove: InstalledRule[], add: DnatRule[]): Promise<void> {
    for (const family of [4, 6] as const) {
      const rm = remove.filter((r) => r.family === family);
      const mk = add.filter((r) => r.family === family);
      if (rm.length === 0 && mk.length === 0) continue;
      if (family === 6 && !(await this.hasV6())) throw new SkiffError('SKIFF_NETWORK_FAILED', 'IPv6 hostPort but ip6tables is not installed');
      const script = [
        '*nat',
        ...rm.map((r) => r.ref.replace(/^-A /, '-D ')),
        ...mk.map((r) => `-A ${this.chains.hostports} ${iptablesDnatRule(r)}`),
        'COMMIT',
      ];
      await this.restore(family, 'update hostPorts', script.join('\n') + '\n');
    }
  }

  async teardown(): Promise<void> {
    for (const family of [4, 6] as const) {
      if (family === 6 && !(await this.hasV6())) continue;
      const script: string[] = [];
      const tables: [string, [string, string][]][] = [
        ['nat', [['PREROUTING', this.chains.hostports], ['OUTPUT', this.chains.hostports], ['POSTROUTING', this.chains.postrouting]]],
        ['filter', [['INPUT', this.chains.input]]],
      ];
      for (const [table, jumps] of tables) {
        const saved = await this.save(family, table);
        const lines = jumps.flatMap(([from, to]) => jumpLines(saved, from, to).map((l) => l.replace(/^-A /, '-D ')));
        for (const chain of new Set(jumps.map(([, to]) => to))) {
          if (hasChain(saved, chain)) lines.push(`-F ${chain}`, `-X ${chain}`);
        }
        if (lines.length > 0) script.push(`*${table}`, ...lines, 'COMMIT');
      }
      if (script.length > 0) await this.restore(family, `remove ${this.prefix} chains`, script.join('\n') + '\n');
    }
  }

  private hasV6(): Promise<boolean> {
    this.v6 ??= runTool(this.tools[6].save, ['--version']).then(
      (r) => r.code === 0,
      () => false,
    );
    return this.v6;
  }

  private save(family: IpFamily, table: string): Promise<string> {
    return mustRun(`read ${family === 4 ? 'iptables' : 'ip6tables'} ${table} table`, this.tools[family].save, ['-t', table]);
  }

  private async restore(family: IpFamily, what: string, script: string): Promise<void> {
    await mustRun(`${what} (${family === 4 ? 'iptables' : 'ip6tables'})`, this.tools[family].restore, ['-w', '--noflush'], script);
  }
}
