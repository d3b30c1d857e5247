// The channel framing Kubernetes streaming speaks over WebSocket (apimachinery
// util/httpstream/wsstream/conn.go): every message starts with the number of the channel it belongs
// to. Binary subprotocols carry the number as one byte and the payload raw; base64 subprotocols
// carry it as an ASCII digit ('0' + n) and the payload base64-encoded in a text message. v5 adds the
// close signal: channel 255 with one byte naming the channel the peer has finished writing.
// Pure functions only: no sockets here.

/** The subprotocols kubelet's streaming server accepts, and what each changes. */
export interface ChannelProtocol {
  /** The Sec-WebSocket-Protocol token; '' when the client offered none (kubelet serves binary, pre-v4). */
  readonly name: string;
  /** Payloads are base64 text after an ASCII channel digit. */
  readonly base64: boolean;
  /** 1: plain-text error channel; 4: metav1.Status JSON on the error channel; 5: v4 plus the close signal. */
  readonly version: 1 | 4 | 5;
}

export const V5_CHANNEL: ChannelProtocol = { name: 'v5.channel.k8s.io', base64: false, version: 5 };
export const V4_CHANNEL: ChannelProtocol = { name: 'v4.channel.k8s.io', base64: false, version: 4 };
export const V4_BASE64_CHANNEL: ChannelProtocol = { name: 'v4.base64.channel.k8s.io', base64: true, version: 4 };
export const CHANNEL: ChannelProtocol = { name: 'channel.k8s.io', base64: false, version: 1 };
export const BASE64_CHANNEL: ChannelProtocol = { name: 'base64.channel.k8s.io', base64: true, version: 1 };
export const NO_SUBPROTOCOL: ChannelProtocol = { name: '', base64: false, version: 1 };

/**
 * exec and attach (kubelet cri/streaming/remotecommand/websocket.go plus the v5 close signal of
 * KEP-4006), most preferred first: v5 > v4 > pre-v4, binary before base64 within a version.
 */
export const REMOTECOMMAND_PROTOCOLS: readonly ChannelProtocol[] = [
  V5_CHANNEL,
  V4_CHANNEL,
  V4_BASE64_CHANNEL,
  CHANNEL,
  BASE64_CHANNEL,
  NO_SUBPROTOCOL,
];

/** port-forward (kubelet cri/streaming/portforward/websocket.go): v4 only, no close signal. */
export const PORTFORWARD_PROTOCOLS: readonly ChannelProtocol[] = [V4_CHANNEL, V4_BASE64_CHANNEL, NO_SUBPROTOCOL];

/** v5: a message on this channel says the peer closed the channel named by its one payload byte. */
export const CLOSE_SIGNAL = 255;

/** The tokens of a Sec-WebSocket-Protocol header (it may repeat; tokens are comma-separated). */
export function offeredProtocols(header: string | string[] | undefined): string[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  return values.flatMap((v) => v.split(',')).map((t) => t.trim()).filter((t) => t.length > 0);
}

/**
 * The subprotocol to answer with, or undefined when none of the offered ones is supported. An empty
 * offer selects the '' entry if `supported` has one (kubelet accepts clients that negotiate nothing).
 * Among several acceptable offers the server's order wins, so a client listing v4 before v5 still
 * gets v5 (kubelet itself takes the client's first acceptable token; every client we know lists
 * newest first, so the results agree).
 */
export function negotiateProtocol(offered: readonly string[], supported: readonly ChannelProtocol[]): ChannelProtocol | undefined {
  if (offered.length === 0) return supported.find((p) => p.name === '');
  return supported.find((p) => p.name !== '' && offered.includes(p.name));
}

/** One message, ready for ws.send: a Buffer for binary subprotocols, a string for base64 ones. */
export function encodeFrame(protocol: ChannelProtocol, channel: number, payload: Uint8Array): Buffer | string {
  if (!Number.isInteger(channel) || channel < 0 || channel > 255) throw new RangeError(`channel ${channel} is not a byte`);
  if (protocol.base64) {
    // '0' + n, as kubelet writes it: channels past 9 continue up the ASCII table (':' is 10).
    if (channel > 0xff - 0x30) throw new RangeError(`channel ${channel} has no base64 channel character`);
    return String.fromCharCode(0x30 + channel) + Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
  }
  const frame = Buffer.allocUnsafe(payload.byteLength + 1);
  frame[0] = channel;
  frame.set(payload, 1);
  return frame;
}

export type DecodedFrame =
  | { readonly kind: 'data'; readonly channel: number; readonly payload: Buffer }
  | { readonly kind: 'close'; readonly channel: number }
  | { readonly kind: 'invalid'; readonly reason: string };

// Go's base64.StdEncoding: padded, standard alphabet; it skips \r and \n.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes one received message (text or binary alike, as kubelet does) for a connection with
 * `channelCount` channels numbered from 0. Anything the protocol does not allow comes back as
 * 'invalid' with a reason short enough for a WebSocket close frame.
 */
export function decodeFrame(protocol: ChannelProtocol, message: Buffer, channelCount: number): DecodedFrame {
  if (message.length === 0) return { kind: 'invalid', reason: 'empty message: no channel byte' };
  const first = message[0];
  if (protocol.version === 5 && !protocol.base64 && first === CLOSE_SIGNAL) {
    if (message.length !== 2) return { kind: 'invalid', reason: `close signal of ${message.length} bytes, want 2` };
    const closed = message[1];
    if (closed >= channelCount) return { kind: 'invalid', reason: `close signal for unknown channel ${closed}` };
    return { kind: 'close', channel: closed };
  }
  const channel = protocol.base64 ? first - 0x30 : first;
  if (channel < 0 || channel >= channelCount) {
    const shown = protocol.base64 ? JSON.stringify(String.fromCharCode(first)) : String(first);
    return { kind: 'invalid', reason: `message for unknown channel ${shown}` };
  }
  if (!protocol.base64) return { kind: 'data', channel, payload: message.subarray(1) };
  const text = message.toString('latin1', 1).replace(/[\r\n]/g, '');
  if (text.length % 4 !== 0 || !BASE64.test(text)) return { kind: 'invalid', reason: `channel ${channel}: payload is not base64` };
  return { kind: 'data', channel, payload: Buffer.from(text, 'base64') };
}
