// IP and MAC addresses between their text forms and the bytes netlink carries. Pure. Node's
// net.isIP decides what is valid; this only converts.
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Buffer;
}

/** Parses an IPv4 or IPv6 address (no zone, no prefix); undefined when it is not one. */
export function parseIp(text: string): ParsedIp | undefined {
  const family = isIP(text);
  if (family === 4) return { family, bytes: Buffer.from(text.split('.').map(Number)) };
  if (family !== 6 || text.includes('%')) return undefined;
  let s = text;
  const tail: number[] = [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes the last two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    tail.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
    s = s.slice(0, -v4[1].length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const groups = (x: string): number[] => (x === '' ? [] : x.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = [...(rest === undefined ? [] : groups(rest)), ...tail];
  const fill = rest === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  const all = rest === undefined ? [...left, ...tail] : [...left, ...fill, ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((g, i) => bytes.writeUInt16BE(g, i * 2));
  return { family: 6, bytes };
}

/** The canonical text of an address (RFC 5952 for IPv6: lower case, longest zero run as ::). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((bytes[i] << 8) | bytes[i + 1]);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best === -1) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export interface Cidr extends ParsedIp {
  /** The address as written (not masked): for a gateway, its own address. */
  address: string;
  prefixLen: number;
}

/** Parses "10.88.0.1/16" or "fd00::1/64"; undefined when malformed or the prefix is too long. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.lastIndexOf('/');
  if (slash <= 0 || !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixLen = Number(text.slice(slash + 1));
  if (!ip || prefixLen > (ip.family === 4 ? 32 : 128)) return undefined;
  return { ...ip, address: formatIp(ip.bytes), prefixLen };
}

/** The IPv4 broadcast address of `bytes`/`prefixLen` (what `ip addr add … brd +` computes). */
export function broadcast4(bytes: Uint8Array, prefixLen: number): Buffer {
  const host = prefixLen === 0 ? 0xffffffff : (0xffffffff >>> prefixLen) >>> 0;
  const b = Buffer.from(bytes);
  b.writeUInt32BE((b.readUInt32BE(0) | host) >>> 0, 0);
  return b;
}

/** True when `a` and `b` (same family) lie in the same /prefixLen. */
export function samePrefix(a: Uint8Array, b: Uint8Array, prefixLen: number): boolean {
  if (a.length !== b.length) return false;
  for (let bit = 0; bit < prefixLen; bit += 8) {
    const mask = prefixLen - bit >= 8 ? 0xff : (0xff << (8 - (prefixLen - bit))) & 0xff;
    if ((a[bit / 8] & mask) !== (b[bit / 8] & mask)) return false;
  }
  return true;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** "aa:bb:cc:dd:ee:ff" → 6 bytes; undefined when malformed. */
export function parseMac(text: string): Buffer | undefined {
  return MAC_RE.test(text) ? Buffer.from(text.replaceAll(':', ''), 'hex') : undefined;
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A random unicast, locally administered MAC (what the kernel's eth_random_addr makes). */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return formatMac(b);
}

/** A usable unicast MAC: not all zeros, not multicast/broadcast. */
export function isUnicastMac(bytes: Uint8Array): boolean {
  return (bytes[0] & 0x01) === 0 && bytes.some((b) => b !== 0);
}
