// IP and MAC addresses between their text forms and the bytes netlink carries. Pure. The text
// forms are network/cidr.ts's (one parser, one RFC 5952 formatter); this only converts to bytes.
import { randomBytes } from 'node:crypto';
import { formatIp as formatIpValue, parseIp as parseIpValue, type IpFamily } from '../cidr.js';

export type { IpFamily };

export interface ParsedIp {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Buffer;
}

/** Parses an IPv4 or IPv6 address (no zone, no prefix); undefined when it is not one. */
export function parseIp(text: string): ParsedIp | undefined {
  const ip = parseIpValue(text);
  if (!ip) return undefined;
  const bytes = Buffer.alloc(ip.family === 4 ? 4 : 16);
  let v = ip.value;
  for (let i = bytes.length - 1; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return { family: ip.family, bytes };
}

/** The canonical text of an address (RFC 5952 for IPv6: lower case, longest zero run as ::). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length !== 4 && bytes.length !== 16) throw new Error(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  return formatIpValue(bytes.length === 4 ? 4 : 6, bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n));
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
