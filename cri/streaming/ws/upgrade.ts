// Turns an HTTP upgrade request into a WebSocket speaking one of the channel subprotocols, or
// refuses it with an HTTP error the client can read. The caller owns the http.Server and routes its
// 'upgrade' event here (ws in noServer mode), so this module never listens on anything.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { logger } from '../../../common/log.js';
import { negotiateProtocol, offeredProtocols, type ChannelProtocol } from './channel.js';

const log = logger('stream-ws');

/** A WebSocket and the subprotocol agreed for it. */
export interface ChannelWebSocket {
  readonly ws: WebSocket;
  readonly protocol: ChannelProtocol;
}

export interface AcceptOptions {
  /** Largest message accepted from the client; larger ones close the socket with 1009. Default 4 MiB. */
  readonly maxPayload?: number;
}

const DEFAULT_MAX_PAYLOAD = 4 << 20;

/**
 * Completes the WebSocket handshake with the most preferred of `supported` that the client offers.
 * Resolves undefined, having answered the client itself, when the request is not a WebSocket
 * upgrade (400), offers no supported subprotocol (403, as kubelet's x/net/websocket handshake
 * answers), or fails ws's own checks (400).
 */
export function acceptChannelWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  supported: readonly ChannelProtocol[],
  options: AcceptOptions = {},
): Promise<ChannelWebSocket | undefined> {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    rejectUpgrade(socket, 400, `${req.url ?? ''}: expected a WebSocket upgrade request`);
    return Promise.resolve(undefined);
  }
  const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
  const protocol = negotiateProtocol(offered, supported);
  if (!protocol) {
    const names = supported.map((p) => (p.name === '' ? '(none)' : p.name)).join(', ');
    const asked = offered.length === 0 ? '(none)' : offered.join(', ');
    log.debug({ url: req.url, offered }, 'websocket subprotocol refused');
    rejectUpgrade(socket, 403, `websocket subprotocol(s) not supported: ${asked}; this endpoint speaks ${names}`);
    return Promise.resolve(undefined);
  }
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    handleProtocols: () => protocol.name,
  });
  return new Promise((resolve) => {
    // ws answers a malformed handshake itself unless someone listens here; say why, then give up.
    server.once('wsClientError', (err: Error, failed: Duplex) => {
      rejectUpgrade(failed, 400, `websocket handshake: ${err.message}`);
      resolve(undefined);
    });
    const gone = (): void => resolve(undefined);
    socket.once('close', gone);
    server.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', gone);
      ws.on('error', (err) => log.debug({ err }, 'websocket error'));
      resolve({ ws, protocol });
    });
  });
}

/** Answers an upgrade request with a plain-text HTTP error and closes the connection. */
export function rejectUpgrade(socket: Duplex, status: 400 | 403 | 404 | 500, message: string): void {
  const body = `${message}\n`;
  socket.on('error', () => undefined); // the client may already be gone; nothing is left to tell it
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `\r\n${body}`,
  );
}
