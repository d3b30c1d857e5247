// What the two NAT backends (nftables, iptables) share: the interface Nat drives, the rule a
// hostPort becomes, the comment that ties each rule to its sandbox, and running the tools.
import { spawn } from 'node:child_process';
import { SkiffError } from '../common/errors.js';
import type { Cidr, IpFamily } from './cidr.js';

export type NatBackendName = 'nftables' | 'iptables';
export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** One hostPort in one family: traffic to hostIP:hostPort goes to podIP:containerPort. */
export interface DnatRule {
  sandboxId: string;
  family: IpFamily;
  protocol: PortProtocol;
  hostPort: number;
  /** Canonical address, or '' for any local address. */
  hostIP: string;
  podIP: string;
  containerPort: number;
}

/** A DnatRule as found installed (what its comment says), with the backend's handle on it. */
export interface InstalledRule {
  sandboxId: string;
  family: IpFamily;
  protocol: PortProtocol;
  hostPort: number;
  hostIP: string;
  /** nftables: the rule handle; iptables: the rule as iptables-save prints it. */
  ref: string;
}

export interface BaseRules {
  bridge: string;
  /** The pod subnets, at most one per family. */
  subnets: Cidr[];
}

export interface NatBackend {
  readonly name: NatBackendName;
  /** Creates the table/chains or brings their base rules up to date; per-pod rules stay. */
  ensureBase(base: BaseRules): Promise<void>;
  /** The per-pod rules installed; undefined when there is no base to hold them. */
  list(): Promise<InstalledRule[] | undefined>;
  /** Removes and adds rules, in one transaction per table. */
  apply(remove: InstalledRule[], add: DnatRule[]): Promise<void>;
  /** Removes everything of ours; succeeds when there is nothing. */
  teardown(): Promise<void>;
}

/**
 * The comment on each per-pod rule: `<sandboxId> <protocol> <hostPort> <hostIP or *>`. nftables
 * keeps at most 128 bytes of comment: a 64-character id and an IPv6 hostIP still fit.
 */
export function ruleComment(r: Pick<DnatRule, 'sandboxId' | 'protocol' | 'hostPort' | 'hostIP'>): string {
  return `${r.sandboxId} ${r.protocol} ${r.hostPort} ${r.hostIP === '' ? '*' : r.hostIP}`;
}

export function parseRuleComment(comment: string): Omit<InstalledRule, 'family' | 'ref'> | undefined {
  const m = /^(\S+) (tcp|udp|sctp) (\d{1,5}) (\S+)$/.exec(comment);
  if (!m) return undefined;
  return { sandboxId: m[1], protocol: m[2] as PortProtocol, hostPort: Number(m[3]), hostIP: m[4] === '*' ? '' : m[4] };
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const TOOL_TIMEOUT_MS = 30_000;

/** Runs a tool to its end with `input` on stdin; rejects only when it cannot be started (ENOENT). */
export function runTool(cmd: string, args: string[], input?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: TOOL_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdin.on('error', () => undefined); // a tool that exits early: its exit code tells
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, stdout, stderr: signal ? `${stderr}killed by ${signal}` : stderr }));
    child.stdin.end(input ?? '');
  });
}

/** Runs a tool that must succeed; a failure becomes SKIFF_NETWORK_FAILED saying what was being done. */
export async function mustRun(what: string, cmd: string, args: string[], input?: string): Promise<string> {
  let r: ToolResult;
  try {
    r = await runTool(cmd, args, input);
  } catch (err) {
    throw new SkiffError('SKIFF_NETWORK_FAILED', `${what}: cannot run ${cmd}: ${(err as Error).message}`, { cause: err });
  }
  if (r.code !== 0) throw new SkiffError('SKIFF_NETWORK_FAILED', `${what}: ${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}
