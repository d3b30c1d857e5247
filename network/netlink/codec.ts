// Netlink framing, pure (no sockets): nlmsghdr, rtattr/nlattr (nested included), NLMSG_ERROR acks
// with extended-ack messages, NLMSG_DONE, and multipart dumps. Layouts from linux/netlink.h and
// linux/rtnetlink.h; everything is host byte order (little endian on every machine we run on).

/** linux/netlink.h message types below NLMSG_MIN_TYPE (0x10). */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

/** nlmsg_flags. */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP_INTR = 0x10;
// GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
// flags of an NLMSG_ERROR message
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

/** Attribute type bits (linux/netlink.h); the low 14 bits are the type. */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
const NLA_TYPE_MASK = 0x3fff;

/** enum nlmsgerr_attrs: what the kernel adds to an ack when NETLINK_EXT_ACK is on. */
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const NLMSG_HDRLEN = 16;
const NLA_HDRLEN = 4;

/** NLMSG_ALIGN / RTA_ALIGN / NLA_ALIGN: everything is padded to 4 bytes. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

export class NetlinkDecodeError extends Error {
  override name = 'NetlinkDecodeError';
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** nlmsg_pid: the sender's port (0 for the kernel) or, in a request, ours. */
  pid: number;
  /** What follows the 16-byte header (nlmsg_len − 16 bytes). */
  payload: Buffer;
}

/** One message: nlmsghdr followed by `payload` (which the caller has already laid out). */
export function encodeMessage(m: { type: number; flags: number; seq: number; pid?: number; payload: Buffer }): Buffer {
  const len = NLMSG_HDRLEN + m.payload.length;
  const buf = Buffer.alloc(align4(len));
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(m.type, 4);
  buf.writeUInt16LE(m.flags, 6);
  buf.writeUInt32LE(m.seq >>> 0, 8);
  buf.writeUInt32LE((m.pid ?? 0) >>> 0, 12);
  m.payload.copy(buf, NLMSG_HDRLEN);
  return buf;
}

/** Every message in a datagram (or in several datagrams concatenated), in order. */
export function decodeMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new NetlinkDecodeError(`netlink message at offset ${off}: length ${len} does not fit ${buf.length - off} bytes`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  if (off < buf.length && buf.length - off >= 4) {
    throw new NetlinkDecodeError(`netlink datagram: ${buf.length - off} trailing bytes`);
  }
  return out;
}

// ---- attributes -------------------------------------------------------------------------------

/** One attribute: 4-byte header (len, type), data, padding to 4. */
export function attr(type: number, data: Buffer): Buffer {
  const len = NLA_HDRLEN + data.length;
  const buf = Buffer.alloc(align4(len));
  buf.writeUInt16LE(len, 0);
  buf.writeUInt16LE(type, 2);
  data.copy(buf, NLA_HDRLEN);
  return buf;
}

export function attrU8(type: number, v: number): Buffer {
  return attr(type, Buffer.from([v & 0xff]));
}

export function attrU16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v, 0);
  return attr(type, b);
}

export function attrU32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return attr(type, b);
}

export function attrS32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return attr(type, b);
}

/** A NUL-terminated string (the kernel's NLA_STRING/NLA_NUL_STRING both accept it). */
export function attrString(type: number, s: string): Buffer {
  return attr(type, Buffer.from(`${s}\0`, 'utf8'));
}

/**
 * A nested attribute holding `children` (already encoded). `flag` sets NLA_F_NESTED, which the
 * kernel needs where a legacy flat payload is also accepted (IFLA_PROTINFO); iproute2 leaves it off
 * elsewhere, and so do we.
 */
export function attrNested(type: number, children: Buffer[], flag = false): Buffer {
  return attr(flag ? type | NLA_F_NESTED : type, Buffer.concat(children));
}

export interface RawAttr {
  /** The type with NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off. */
  type: number;
  data: Buffer;
}

/** A decoded attribute list with typed getters; a repeated type keeps every occurrence. */
export class Attrs {
  constructor(readonly list: RawAttr[]) {}

  get(type: number): Buffer | undefined {
    return this.list.find((a) => a.type === type)?.data;
  }

  all(type: number): Buffer[] {
    return this.list.filter((a) => a.type === type).map((a) => a.data);
  }

  has(type: number): boolean {
    return this.list.some((a) => a.type === type);
  }

  u8(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length >= 1 ? d.readUInt8(0) : undefined;
  }

  u16(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length >= 2 ? d.readUInt16LE(0) : undefined;
  }

  u32(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length >= 4 ? d.readUInt32LE(0) : undefined;
  }

  s32(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length >= 4 ? d.readInt32LE(0) : undefined;
  }

  /** A string attribute up to its first NUL. */
  string(type: number): string | undefined {
    const d = this.get(type);
    if (!d) return undefined;
    const nul = d.indexOf(0);
    return d.toString('utf8', 0, nul === -1 ? d.length : nul);
  }

  nested(type: number): Attrs | undefined {
    const d = this.get(type);
    return d && decodeAttrs(d);
  }
}

/** The attributes in `buf` from `offset` (after a fixed header such as ifinfomsg). */
export function decodeAttrs(buf: Buffer, offset = 0): Attrs {
  const list: RawAttr[] = [];
  let off = offset;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > buf.length) {
      throw new NetlinkDecodeError(`attribute at offset ${off}: length ${len} does not fit ${buf.length - off} bytes`);
    }
    list.push({ type: buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return new Attrs(list);
}

// ---- acks, errors, dumps ----------------------------------------------------------------------

export interface Ack {
  /** 0 for an ack; otherwise the positive errno the kernel refused the request with. */
  errno: number;
  /** The extended-ack message (NETLINK_EXT_ACK), e.g. "Invalid MTU". */
  message?: string;
  /** The offset in the request of the attribute the kernel objected to. */
  offset?: number;
  /** nlmsg_seq of the request this answers. */
  seq: number;
}

/**
 * NLMSG_ERROR's payload: struct nlmsgerr { int error; struct nlmsghdr msg; } then the rest of the
 * request unless NLM_F_CAPPED, then extended-ack TLVs when NLM_F_ACK_TLVS.
 */
export function decodeAck(m: NetlinkMessage): Ack {
  const p = m.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError(`NLMSG_ERROR of ${p.length} bytes`);
  const error = p.readInt32LE(0);
  const origLen = p.readUInt32LE(4);
  const origSeq = p.readUInt32LE(12);
  const ack: Ack = { errno: error === 0 ? 0 : -error, seq: origSeq };
  if (m.flags & NLM_F_ACK_TLVS) {
    // With NLM_F_CAPPED only the request's header was echoed; otherwise all of it.
    const echoed = m.flags & NLM_F_CAPPED || error === 0 ? NLMSG_HDRLEN : align4(origLen);
    const tlvStart = 4 + echoed;
    if (tlvStart <= p.length) {
      const tlvs = decodeAttrs(p, tlvStart);
      const msg = tlvs.string(NLMSGERR_ATTR_MSG);
      if (msg) ack.message = msg;
      const offs = tlvs.u32(NLMSGERR_ATTR_OFFS);
      if (offs !== undefined) ack.offset = offs;
    }
  }
  return ack;
}

/** NLMSG_DONE carries an int: 0, or a negative errno when the dump itself failed. */
export function decodeDone(m: NetlinkMessage): Ack {
  const error = m.payload.length >= 4 ? m.payload.readInt32LE(0) : 0;
  const ack: Ack = { errno: error === 0 ? 0 : -error, seq: m.seq };
  if (m.flags & NLM_F_ACK_TLVS && m.payload.length > 4) {
    const msg = decodeAttrs(m.payload, 4).string(NLMSGERR_ATTR_MSG);
    if (msg) ack.message = msg;
  }
  return ack;
}

/** True for the message that ends the answer to a request: its ack/error, or a dump's DONE. */
export function isTerminal(m: NetlinkMessage, dump: boolean): boolean {
  return m.type === NLMSG_ERROR || (dump && m.type === NLMSG_DONE);
}

export interface Reply {
  /** The data messages (e.g. RTM_NEWLINK for a GETLINK), in order. */
  messages: NetlinkMessage[];
  /** The ack or error (for a dump, DONE's status). */
  ack: Ack;
  /** A dump whose parts came from different generations of the table (NLM_F_DUMP_INTR): retry. */
  interrupted: boolean;
}

/**
 * Sorts the messages answering request `seq` into data and ack. Messages of other sequence
 * numbers (late answers to an earlier request that timed out) are skipped. Throws when the
 * terminal message is missing.
 */
export function collectReply(all: NetlinkMessage[], seq: number, dump: boolean): Reply {
  const messages: NetlinkMessage[] = [];
  let interrupted = false;
  for (const m of all) {
    if (m.seq !== seq || m.type === NLMSG_NOOP) continue;
    if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
    if (m.type === NLMSG_ERROR) return { messages, ack: decodeAck(m), interrupted };
    if (m.type === NLMSG_DONE && dump) return { messages, ack: decodeDone(m), interrupted };
    if (m.type === NLMSG_OVERRUN) throw new NetlinkDecodeError(`answer to request ${seq}: NLMSG_OVERRUN`);
    messages.push(m);
  }
  throw new NetlinkDecodeError(`answer to request ${seq}: no ${dump ? 'NLMSG_DONE' : 'ack'}`);
}
