// Dials a URL that Exec, Attach or PortForward returned, as a WebSocket client offering the
// Kubernetes channel subprotocols (client-go's websocket executor). The runtime hands out http(s)
// URLs; they are dialled as ws(s). Like crictl, the server's certificate is not verified unless a
// CA or a client certificate is given: the URL came from the runtime over its own socket.
import type { IncomingMessage } from 'node:http';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import type { ChannelProtocol } from '../streaming/ws/channel.js';

/** TLS for an https streaming URL (crictl's --tls-ca, --tls-cert, --tls-key, --tls-sni). */
export interface StreamTls {
  /** PEM; verify the server against it. Without ca, cert and key nothing is verified. */
  readonly ca?: Buffer;
  /** PEM client certificate and key, sent when the server asks. */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** The name the server's certificate must carry (crictl's default is "localhost"). */
  readonly serverName?: string;
}

export interface DialOptions {
  readonly tls?: StreamTls;
  /** How long the connection and the upgrade may take. Default 30 s. */
  readonly handshakeTimeoutMs?: number;
}

export interface ChannelHandlers {
  message(data: Buffer): void;
  close(code: number, reason: string): void;
}

export interface ChannelSocket {
  readonly ws: WebSocket;
  readonly protocol: ChannelProtocol;
  /**
   * Routes the socket's messages and its close to `handlers`, starting with those that came
   * before this call: ws delivers what arrived with the handshake before an awaiting caller runs.
   */
  listen(handlers: ChannelHandlers): void;
}

// crictl's stand-in for a URL without scheme or host, as kubelet once returned them.
const KUBELET_BASE = 'http://127.0.0.1:10250';

/** The ws:// or wss:// form of a streaming URL. */
export function webSocketUrl(url: string): URL {
  const u = new URL(url, KUBELET_BASE);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`streaming URL ${u.origin}${u.pathname}: unsupported scheme ${u.protocol}`);
  return u;
}

/**
 * Opens a WebSocket to `url` offering `protocols` (most preferred first) and resolves once the
 * server has agreed on one. A refused upgrade rejects with the server's status and message.
 */
export function dialChannels(url: string | URL, protocols: readonly ChannelProtocol[], options: DialOptions = {}): Promise<ChannelSocket> {
  const target = typeof url === 'string' ? webSocketUrl(url) : url;
  // The path's last segment is a single-use token: errors name the route, not the token.
  const shown = `${target.origin}${target.pathname.replace(/[^/]+$/, '…')}`;
  const ws = new WebSocket(target, protocols.map((p) => p.name), {
    perMessageDeflate: false,
    handshakeTimeout: options.handshakeTimeoutMs ?? 30_000,
    ...tlsOptions(options.tls),
  });
  const early: Buffer[] = [];
  let closed: [number, string] | undefined;
  let handlers: ChannelHandlers | undefined;
  ws.on('message', (data: RawData) => {
    if (handlers) handlers.message(messageBytes(data));
    else early.push(messageBytes(data));
  });
  ws.on('close', (code: number, reason: Buffer) => {
    if (handlers) handlers.close(code, reason.toString());
    else closed = [code, reason.toString()];
  });
  const listen = (h: ChannelHandlers): void => {
    handlers = h;
    for (const m of early.splice(0)) h.message(m);
    if (closed) h.close(...closed);
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      reject(err);
    };
    ws.once('error', (err) => fail(new Error(`connect to streaming server ${shown}: ${err.message}`, { cause: err })));
    ws.once('unexpected-response', (req, res: IncomingMessage) => {
      void readBody(res).then((body) => {
        req.destroy();
        const text = body.trim();
        fail(new Error(`streaming server ${shown} refused the upgrade: ${res.statusCode ?? 0} ${res.statusMessage ?? ''}${text ? `: ${text}` : ''}`));
      });
    });
    ws.once('open', () => {
      const protocol = protocols.find((p) => p.name === ws.protocol);
      if (!protocol) return fail(new Error(`streaming server ${shown} chose subprotocol "${ws.protocol}", which was not offered`));
      settled = true;
      ws.removeAllListeners('error');
      ws.removeAllListeners('unexpected-response');
      // The session adds its own; 'close' always follows an 'error'.
      ws.on('error', () => undefined);
      resolve({ ws, protocol, listen });
    });
  });
}

function tlsOptions(tls: StreamTls | undefined): ClientOptions {
  if (!tls || (!tls.ca && !tls.cert && !tls.key)) return { rejectUnauthorized: false };
  return {
    rejectUnauthorized: true,
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
    // Like Go's tls.Config.ServerName: sent as SNI, and the name the certificate must carry
    // (Node checks against servername when it is set), whatever the URL's host.
    ...(tls.serverName ? { servername: tls.serverName } : {}),
  };
}

/** Up to 4 KiB of an error response's body (the streaming server explains itself in plain text). */
function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (size < 4096) parts.push(chunk);
      size += chunk.length;
    });
    res.once('end', () => resolve(Buffer.concat(parts).subarray(0, 4096).toString('utf8')));
    res.once('error', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

/** A received message as one Buffer. */
export function messageBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
