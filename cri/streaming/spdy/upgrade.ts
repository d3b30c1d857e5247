// The HTTP side of a SPDY connection: checks an 'upgrade' request, negotiates the stream
// subprotocol (v4.channel.k8s.io…) and answers 101 Switching Protocols, the way apimachinery's
// httpstream/spdy UpgradeResponse and httpstream.Handshake do, then starts a server session.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SpdySession, type SpdySessionOptions } from './session.js';

export const HEADER_PROTOCOL_VERSION = 'X-Stream-Protocol-Version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';
export const UPGRADE_SPDY31 = 'SPDY/3.1';

export interface SpdyUpgradeOptions {
  /** Subprotocols the caller serves. The client's order decides among the common ones. */
  protocols: readonly string[];
  session?: SpdySessionOptions;
}

export type SpdyUpgradeResult =
  | { ok: true; session: SpdySession; protocol: string }
  /** The request was refused; the HTTP error response has been written and the socket ended. */
  | { ok: false; status: 400 | 403; reason: string };

/**
 * Answers the request of an http.Server 'upgrade' event. On success the 101 response is written
 * and the session owns the socket; on failure an HTTP error is written and the socket ended.
 */
export function acceptSpdyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, options: SpdyUpgradeOptions): SpdyUpgradeResult {
  const connection = (req.headers.connection ?? '').toLowerCase();
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (!connection.includes('upgrade') || !upgrade.includes(UPGRADE_SPDY31.toLowerCase())) {
    return refuse(socket, 400, `unable to upgrade: missing upgrade headers in request (Connection: "${connection}", Upgrade: "${upgrade}"), expected Upgrade: ${UPGRADE_SPDY31}`);
  }
  const offered = clientProtocols(req);
  if (offered.length === 0) {
    return refuse(socket, 400, `unable to upgrade: ${HEADER_PROTOCOL_VERSION} is required`);
  }
  const protocol = negotiateProtocol(offered, options.protocols);
  if (protocol === null) {
    return refuse(
      socket,
      403,
      `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${options.protocols.join(' ')}]`,
      options.protocols.map((p) => `${HEADER_ACCEPTED_PROTOCOL_VERSIONS}: ${p}`),
    );
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      `Upgrade: ${UPGRADE_SPDY31}\r\n` +
      `${HEADER_PROTOCOL_VERSION}: ${protocol}\r\n\r\n`,
  );
  return { ok: true, session: new SpdySession(socket, options.session, head), protocol };
}

/**
 * apimachinery's negotiateProtocol: the first of the client's protocols the server accepts. kubectl
 * lists its newest protocol first, so this is the highest version both sides speak.
 */
export function negotiateProtocol(client: readonly string[], server: readonly string[]): string | null {
  return client.find((p) => server.includes(p)) ?? null;
}

/** Every X-Stream-Protocol-Version value, one header per protocol or comma-separated. */
function clientProtocols(req: IncomingMessage): string[] {
  const values = req.headersDistinct[HEADER_PROTOCOL_VERSION.toLowerCase()] ?? [];
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

function refuse(socket: Duplex, status: 400 | 403, reason: string, extra: string[] = []): SpdyUpgradeResult {
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Forbidden'}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      extra.map((h) => `${h}\r\n`).join('') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  return { ok: false, status, reason };
}
