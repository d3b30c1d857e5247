// SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00 §2.2–2.6 plus the 3.1 session window): pure
// encode and decode of every frame type and of the uncompressed name/value header block. Header
// blocks travel here still compressed; header-codec.ts owns the zlib contexts. kubelet's client
// (moby/spdystream) writes version 3 on the wire even though the HTTP Upgrade token says SPDY/3.1.

export const SPDY_VERSION = 3;
export const FRAME_HEADER_SIZE = 8;
/** The largest length the 24-bit length field can carry. */
export const MAX_FRAME_LENGTH = 0xffffff;
export const MAX_STREAM_ID = 0x7fffffff;
/** Flow-control windows may not grow beyond 2^31-1 (§2.6.8). */
export const MAX_WINDOW = 0x7fffffff;
/** The initial stream and session window when SETTINGS says nothing (§2.6.8, SPDY/3.1 §2.6.8). */
export const DEFAULT_WINDOW = 65536;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** DATA, SYN_STREAM, SYN_REPLY and HEADERS: the sender's half of the stream is closed. */
export const FLAG_FIN = 0x01;
/** SYN_STREAM: the recipient may not send on this stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;
/** SETTINGS: forget persisted settings. */
export const FLAG_SETTINGS_CLEAR = 0x01;

/** RST_STREAM status codes (§2.6.3). */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  INVALID_CREDENTIALS: 10,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes (§2.6.6). */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** SETTINGS ids (§2.6.4); only the two below change how a server session behaves. */
export const SettingsId = { MAX_CONCURRENT_STREAMS: 4, INITIAL_WINDOW_SIZE: 7 } as const;

export interface SettingsEntry {
  id: number;
  flags: number;
  value: number;
}

export type Frame =
  | { type: 'DATA'; streamId: number; flags: number; data: Buffer }
  | {
      type: 'SYN_STREAM';
      streamId: number;
      associatedStreamId: number;
      /** 0 (highest) to 7. */
      priority: number;
      slot: number;
      flags: number;
      headerBlock: Buffer;
    }
  | { type: 'SYN_REPLY'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'RST_STREAM'; streamId: number; status: number }
  | { type: 'SETTINGS'; flags: number; entries: SettingsEntry[] }
  | { type: 'PING'; id: number }
  | { type: 'GOAWAY'; lastGoodStreamId: number; status: number }
  | { type: 'HEADERS'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'WINDOW_UPDATE'; streamId: number; delta: number }
  /** A control frame of a type this version does not define (CREDENTIAL, NOOP…): ignored (§2.2.1). */
  | { type: 'UNKNOWN'; frameType: number; flags: number; payload: Buffer };

/** Headers as SPDY carries them: lower-case names, each with one or more values. */
export type SpdyHeaders = ReadonlyMap<string, readonly string[]>;

/** A violation of the protocol; `status` is the GOAWAY or RST_STREAM status it calls for. */
export class SpdyProtocolError extends Error {
  override name = 'SpdyProtocolError';
  readonly code = 'SPDY_PROTOCOL_ERROR';
  constructor(
    message: string,
    readonly status: number = GoAwayStatus.PROTOCOL_ERROR,
  ) {
    super(message);
  }
}

function control(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_LENGTH) throw new RangeError(`SPDY frame of ${payload.length} bytes is too long`);
  const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([head, payload]);
}

function u31(n: number): number {
  return n & 0x7fffffff;
}

/** Encodes one frame; header blocks must already be compressed. */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case 'DATA': {
      if (frame.data.length > MAX_FRAME_LENGTH) throw new RangeError(`SPDY DATA of ${frame.data.length} bytes is too long`);
      const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
      head.writeUInt32BE(u31(frame.streamId), 0);
      head.writeUInt32BE(((frame.flags & 0xff) << 24) | frame.data.length, 4);
      return Buffer.concat([head, frame.data]);
    }
    case 'SYN_STREAM': {
      const fixed = Buffer.allocUnsafe(10);
      fixed.writeUInt32BE(u31(frame.streamId), 0);
      fixed.writeUInt32BE(u31(frame.associatedStreamId), 4);
      fixed[8] = (frame.priority & 0x7) << 5;
      fixed[9] = frame.slot & 0xff;
      return control(FrameType.SYN_STREAM, frame.flags, Buffer.concat([fixed, frame.headerBlock]));
    }
    case 'SYN_REPLY':
    case 'HEADERS': {
      const fixed = Buffer.allocUnsafe(4);
      fixed.writeUInt32BE(u31(frame.streamId), 0);
      const type = frame.type === 'SYN_REPLY' ? FrameType.SYN_REPLY : FrameType.HEADERS;
      return control(type, frame.flags, Buffer.concat([fixed, frame.headerBlock]));
    }
    case 'RST_STREAM':
      return control(FrameType.RST_STREAM, 0, pair(u31(frame.streamId), frame.status));
    case 'SETTINGS': {
      const body = Buffer.allocUnsafe(4 + 8 * frame.entries.length);
      body.writeUInt32BE(frame.entries.length, 0);
      frame.entries.forEach((e, i) => {
        body.writeUInt32BE((((e.flags & 0xff) << 24) | (e.id & 0xffffff)) >>> 0, 4 + 8 * i);
        body.writeUInt32BE(e.value >>> 0, 8 + 8 * i);
      });
      return control(FrameType.SETTINGS, frame.flags, body);
    }
    case 'PING': {
      const body = Buffer.allocUnsafe(4);
      body.writeUInt32BE(frame.id >>> 0, 0);
      return control(FrameType.PING, 0, body);
    }
    case 'GOAWAY':
      return control(FrameType.GOAWAY, 0, pair(u31(frame.lastGoodStreamId), frame.status));
    case 'WINDOW_UPDATE':
      return control(FrameType.WINDOW_UPDATE, 0, pair(u31(frame.streamId), u31(frame.delta)));
    case 'UNKNOWN':
      return control(frame.frameType, frame.flags, frame.payload);
  }
}

function pair(a: number, b: number): Buffer {
  const body = Buffer.allocUnsafe(8);
  body.writeUInt32BE(a >>> 0, 0);
  body.writeUInt32BE(b >>> 0, 4);
  return body;
}

function expectLength(name: string, payload: Buffer, length: number): void {
  if (payload.length !== length) {
    throw new SpdyProtocolError(`${name} frame has length ${payload.length}, expected ${length}`);
  }
}

function minLength(name: string, payload: Buffer, length: number): void {
  if (payload.length < length) {
    throw new SpdyProtocolError(`${name} frame has length ${payload.length}, expected at least ${length}`);
  }
}

/** Decodes one control frame's payload. Throws SpdyProtocolError on a malformed frame. */
function decodeControl(type: number, flags: number, p: Buffer): Frame {
  switch (type) {
    case FrameType.SYN_STREAM:
      minLength('SYN_STREAM', p, 10);
      return {
        type: 'SYN_STREAM',
        streamId: u31(p.readUInt32BE(0)),
        associatedStreamId: u31(p.readUInt32BE(4)),
        priority: p[8] >> 5,
        slot: p[9],
        flags,
        headerBlock: p.subarray(10),
      };
    case FrameType.SYN_REPLY:
    case FrameType.HEADERS:
      minLength(type === FrameType.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS', p, 4);
      return {
        type: type === FrameType.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS',
        streamId: u31(p.readUInt32BE(0)),
        flags,
        headerBlock: p.subarray(4),
      };
    case FrameType.RST_STREAM:
      expectLength('RST_STREAM', p, 8);
      return { type: 'RST_STREAM', streamId: u31(p.readUInt32BE(0)), status: p.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      minLength('SETTINGS', p, 4);
      const count = p.readUInt32BE(0);
      if (p.length !== 4 + 8 * count) {
        throw new SpdyProtocolError(`SETTINGS frame of ${p.length} bytes cannot hold ${count} entries`);
      }
      const entries: SettingsEntry[] = [];
      for (let i = 0; i < count; i++) {
        const idf = p.readUInt32BE(4 + 8 * i);
        entries.push({ flags: idf >>> 24, id: idf & 0xffffff, value: p.readUInt32BE(8 + 8 * i) });
      }
      return { type: 'SETTINGS', flags, entries };
    }
    case FrameType.PING:
      expectLength('PING', p, 4);
      return { type: 'PING', id: p.readUInt32BE(0) };
    case FrameType.GOAWAY:
      expectLength('GOAWAY', p, 8);
      return { type: 'GOAWAY', lastGoodStreamId: u31(p.readUInt32BE(0)), status: p.readUInt32BE(4) };
    case FrameType.WINDOW_UPDATE:
      expectLength('WINDOW_UPDATE', p, 8);
      return { type: 'WINDOW_UPDATE', streamId: u31(p.readUInt32BE(0)), delta: u31(p.readUInt32BE(4)) };
    default:
      return { type: 'UNKNOWN', frameType: type, flags, payload: p };
  }
}

export interface FrameReaderLimits {
  /** The longest control frame accepted (a SYN_STREAM's compressed header block plus 18 bytes). */
  maxControlFrame: number;
  /** The longest DATA frame accepted. */
  maxDataFrame: number;
}

/**
 * Splits a byte stream into frames. Bytes are appended with push(); next() returns the next
 * complete frame or null, and throws SpdyProtocolError on garbage or on a frame beyond the limits
 * (checked from the 8-byte header, so an oversized frame is refused before it is buffered).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly limits: FrameReaderLimits) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.length;
  }

  next(): Frame | null {
    if (this.length < FRAME_HEADER_SIZE) return null;
    const head = this.peek(FRAME_HEADER_SIZE);
    const word0 = head.readUInt32BE(0);
    const word1 = head.readUInt32BE(4);
    const flags = word1 >>> 24;
    const len = word1 & 0xffffff;
    const isControl = (word0 & 0x80000000) !== 0;
    if (isControl) {
      const version = (word0 >>> 16) & 0x7fff;
      if (version !== SPDY_VERSION) {
        throw new SpdyProtocolError(`control frame of SPDY version ${version}, expected ${SPDY_VERSION}`);
      }
      if (len > this.limits.maxControlFrame) {
        throw new SpdyProtocolError(`control frame of ${len} bytes exceeds the limit of ${this.limits.maxControlFrame}`);
      }
    } else if (len > this.limits.maxDataFrame) {
      throw new SpdyProtocolError(`DATA frame of ${len} bytes exceeds the limit of ${this.limits.maxDataFrame}`);
    }
    if (this.length < FRAME_HEADER_SIZE + len) return null;
    this.consume(FRAME_HEADER_SIZE);
    const payload = this.consume(len);
    if (!isControl) return { type: 'DATA', streamId: word0 & 0x7fffffff, flags, data: payload };
    return decodeControl(word0 & 0xffff, flags, payload);
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private consume(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.chunks[0];
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let need = n;
      while (need > 0) {
        const c = this.chunks[0];
        if (c.length <= need) {
          parts.push(c);
          this.chunks.shift();
          need -= c.length;
        } else {
          parts.push(c.subarray(0, need));
          this.chunks[0] = c.subarray(need);
          need = 0;
        }
      }
      out = Buffer.concat(parts, n);
    }
    this.length -= n;
    return out;
  }
}

/** Encodes an uncompressed name/value block (§2.6.10): multiple values are joined with NUL. */
export function encodeHeaderBlock(headers: Iterable<readonly [string, readonly string[]]>): Buffer {
  const parts: Buffer[] = [];
  let count = 0;
  for (const [name, values] of headers) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(n.length);
    const vhead = Buffer.allocUnsafe(4);
    vhead.writeUInt32BE(v.length);
    parts.push(head, n, vhead, v);
    count++;
  }
  const total = Buffer.allocUnsafe(4);
  total.writeUInt32BE(count);
  return Buffer.concat([total, ...parts]);
}

/**
 * Decodes an uncompressed name/value block. Rejects what §2.6.10 forbids and what Go's framer
 * (spdystream's) rejects too: empty or upper-case names, duplicate names, truncated blocks.
 */
export function decodeHeaderBlock(block: Buffer): Map<string, string[]> {
  const fail = (why: string): never => {
    throw new SpdyProtocolError(`malformed header block: ${why}`);
  };
  if (block.length < 4) fail('shorter than its count');
  const count = block.readUInt32BE(0);
  // Each pair needs at least 8 bytes, so a count beyond that is a lie, not a reason to loop.
  if (count > (block.length - 4) / 8) fail(`${count} pairs cannot fit in ${block.length} bytes`);
  const headers = new Map<string, string[]>();
  let off = 4;
  const take = (): string => {
    if (off + 4 > block.length) fail('truncated length');
    const len = block.readUInt32BE(off);
    off += 4;
    if (off + len > block.length) fail('truncated string');
    const s = block.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = take();
    const value = take();
    if (name.length === 0) fail('empty header name');
    if (name !== name.toLowerCase()) fail(`header name "${name}" is not lower-case`);
    if (headers.has(name)) fail(`duplicate header "${name}"`);
    headers.set(name, value.split('\0'));
  }
  if (off !== block.length) fail(`${block.length - off} bytes after the last pair`);
  return headers;
}
