// IP addresses and CIDR blocks as BigInt, for the IPAM's arithmetic (next address, range bounds,
// containment) and for canonical text (RFC 5952 for IPv6), so that one address always has one
// spelling — it names a file in the IPAM's directory and appears in NAT rules. Pure.
import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

export interface Ip {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  /** The first address of the block (host bits zero). */
  network: bigint;
  prefixLen: number;
  /** True when the text had host bits set (10.88.0.5/16): a mistake in a subnet. */
  hostBits: boolean;
}

export const familyBits = (family: IpFamily): number => (family === 4 ? 32 : 128);

/** Parses an IPv4 or IPv6 address (no zone, no prefix); undefined when it is not one. */
export function parseIp(text: string): Ip | undefined {
  const family = isIP(text);
  if (family === 4) {
    return { family, value: text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n) };
  }
  if (family !== 6 || text.includes('%')) return undefined;
  let s = text;
  const tail: number[] = [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is the last two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    tail.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
    s = s.slice(0, -v4[0].length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const groups = (x: string): number[] => (x === '' ? [] : x.split(':').map((g) => parseInt(g, 16)));
  const [head, rest] = s.split('::') as [string, string | undefined];
  const left = groups(head);
  const right = [...(rest === undefined ? [] : groups(rest)), ...tail];
  const all = rest === undefined ? [...left, ...tail] : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return { family: 6, value: all.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n) };
}

/** Canonical text: dotted quad, or RFC 5952 (lower case, no leading zeros, longest zero run as ::). */
export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952 4.2: the longest run of two or more zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** The canonical text of an address given as text; undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip.family, ip.value);
}

/** Parses `address/prefixLen`; undefined when it is not a CIDR. */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const ip = parseIp(m[1]);
  const prefixLen = Number(m[2]);
  if (!ip || prefixLen > familyBits(ip.family) || (m[2].length > 1 && m[2].startsWith('0'))) return undefined;
  const network = ip.value & ~hostMask(ip.family, prefixLen);
  return { family: ip.family, network, prefixLen, hostBits: network !== ip.value };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.network)}/${c.prefixLen}`;
}

/** The last address of the block (IPv4: its broadcast address). */
export function lastAddress(c: Cidr): bigint {
  return c.network | hostMask(c.family, c.prefixLen);
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return ip.family === c.family && (ip.value & ~hostMask(c.family, c.prefixLen)) === c.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const shorter = a.prefixLen <= b.prefixLen ? a : b;
  return cidrContains(shorter, { family: a.family, value: a.prefixLen <= b.prefixLen ? b.network : a.network });
}

function hostMask(family: IpFamily, prefixLen: number): bigint {
  return (1n << BigInt(familyBits(family) - prefixLen)) - 1n;
}
