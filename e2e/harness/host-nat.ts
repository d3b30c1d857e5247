// The host's NAT as tests and benchmarks that run the CNI portmap plugin leave it: that plugin never
// removes its CNI-HOSTPORT-* chains, and iptables-nft makes `ip nat`/`ip6 nat` tables. A snapshot
// taken before says what was the host's; only what came after is removed.
import { execFileSync } from 'node:child_process';

export interface HostNatSnapshot {
  tables: string;
  hadPortmap: boolean;
}

const nftTables = (): string => {
  try {
    return execFileSync('nft', ['list', 'tables']).toString();
  } catch {
    return '';
  }
};
const run = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  } catch {
    return '';
  }
};

/** iptables-nft keeps its rules in nftables tables; reading them through iptables-save would create them. */
const iptablesIsNft = (): boolean => run('iptables', ['-V']).includes('nf_tables');

/** The IPv4 nat rules of iptables, read without creating anything. */
export function iptablesNat(): string {
  if (!iptablesIsNft()) return run('iptables-save', ['-t', 'nat']);
  return nftTables().includes('table ip nat') ? run('nft', ['list', 'table', 'ip', 'nat']) : '';
}

/** Every line of the host's NAT rules (nftables, and legacy iptables where that is in use) that holds `needle`. */
export function natLinesWith(needle: string): string[] {
  const texts = [run('nft', ['list', 'ruleset'])];
  if (!iptablesIsNft()) texts.push(run('iptables-save', ['-t', 'nat']), run('ip6tables-save', ['-t', 'nat']));
  return texts.flatMap((t) => t.split('\n')).filter((l) => l.includes(needle));
}

/**
 * The portmap plugin never removes its CNI-HOSTPORT-* chains, and iptables-nft makes `ip nat`
 * tables: what this test made of them (and only that) goes.
 */
export function removePortmapLeftovers(before: HostNatSnapshot): void {
  if (!before.hadPortmap && iptablesNat().includes('CNI-HOSTPORT-DNAT')) {
    const quiet = (args: string[]): void => {
      try {
        execFileSync('iptables', ['-w', '-t', 'nat', ...args], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    };
    quiet(['-D', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'CNI-HOSTPORT-DNAT']);
    quiet(['-D', 'OUTPUT', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'CNI-HOSTPORT-DNAT']);
    quiet(['-D', 'POSTROUTING', '-m', 'comment', '--comment', 'CNI portfwd requiring masquerade', '-j', 'CNI-HOSTPORT-MASQ']);
    for (const chain of ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK']) {
      quiet(['-F', chain]);
      quiet(['-X', chain]);
    }
  }
  for (const family of ['ip', 'ip6']) {
    const name = `table ${family} nat`;
    // An `ip nat` table without a single rule does nothing, and iptables-nft makes it again when
    // it needs it: one that is empty goes even if it was there before (tests running side by side
    // each see the others' as "before").
    if (!nftTables().includes(name)) continue;
    const listed = JSON.parse(execFileSync('nft', ['-j', 'list', 'table', family, 'nat']).toString()) as { nftables: Record<string, unknown>[] };
    // Only chains and no rule: nothing of anyone else's.
    if (!listed.nftables.some((o) => 'rule' in o)) {
      execFileSync('nft', ['delete', 'table', family, 'nat']);
    }
  }
}

export function hostNatSnapshot(): HostNatSnapshot {
  return { tables: nftTables(), hadPortmap: iptablesNat().includes('CNI-HOSTPORT-DNAT') };
}
