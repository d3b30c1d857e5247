// The CRI streaming server (kubelet cri/streaming/server.go): Exec, Attach and PortForward store
// their request behind a single-use token and answer with a URL on this server; kubelet (or the
// API server) then connects to /exec/{token}, /attach/{token} or /portforward/{token} and upgrades
// to SPDY/3.1 or WebSocket. Everything else is a 404; a known route without an upgrade is a 400.
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { SkiffError, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import type { AttachRequest, ExecRequest, PortForwardRequest, StreamingBackend } from './backend.js';
import { PORTFORWARD_SPDY_PROTOCOLS, servePortForwardSpdy } from './portforward-spdy.js';
import { REMOTECOMMAND_SPDY_PROTOCOLS, serveRemoteCommandSpdy } from './remotecommand-spdy.js';
import { RequestCache, type CachedRequest, type RequestKind } from './request-cache.js';
import { acceptSpdyUpgrade } from './spdy/upgrade.js';
import { servePortForwardWebSocket, serveRemoteCommandWebSocket } from './websocket.js';
import { rejectUpgrade } from './ws/upgrade.js';

const log = logger('streaming');

export interface StreamingServerOptions {
  /** host:port to listen on; port 0 picks one. Default 127.0.0.1:0. */
  readonly address?: string;
  /** Serve HTTPS with this PEM certificate and key. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Base of the URLs handed out, when clients must use another name than the listen address. */
  readonly baseUrl?: string;
  /** How long a URL stays usable. Default 60 s (kubelet's CacheTTL). */
  readonly tokenTtlMs?: number;
  /** How long a client has to open its streams after the upgrade. Default 30 s. */
  readonly streamCreationTimeoutMs?: number;
  /** A SPDY connection without any frame for this long is closed. Default 4 h (kubelet's StreamIdleTimeout). */
  readonly streamIdleTimeoutMs?: number;
  /** Unused URLs held at once. Default 1000 (kubelet's maxInFlight). */
  readonly maxInFlight?: number;
}

const ROUTE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)$/;

export class StreamingServer {
  private readonly cache: RequestCache;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly streamCreationTimeoutMs: number;
  private readonly streamIdleTimeoutMs: number;
  private base: URL | undefined;

  constructor(
    private readonly backend: StreamingBackend,
    private readonly options: StreamingServerOptions = {},
  ) {
    this.cache = new RequestCache(options.tokenTtlMs ?? 60_000, options.maxInFlight ?? 1000);
    this.streamCreationTimeoutMs = options.streamCreationTimeoutMs ?? 30_000;
    this.streamIdleTimeoutMs = options.streamIdleTimeoutMs ?? 4 * 3600_000;
    this.server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }) : http.createServer();
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket, head).catch((err: unknown) => {
        log.error({ err: errorMessage(err), url: req.url }, 'streaming request failed');
        socket.destroy();
      });
    });
  }

  /** Listens on the configured address. */
  async start(): Promise<void> {
    const { host, port } = parseAddress(this.options.address ?? '127.0.0.1:0');
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const bound = this.server.address() as AddressInfo;
    const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    this.base = new URL(this.options.baseUrl ?? `${this.options.tls ? 'https' : 'http'}://${shown}:${bound.port}/`);
    log.info({ url: this.base.href }, 'streaming server listening');
  }

  /** Stops listening and drops every connection, ending every session in progress. */
  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** The base URL handed-out URLs start with; defined once started. */
  get url(): string {
    return this.requireBase().href;
  }

  getExecUrl(req: ExecRequest): string {
    return this.urlFor({ kind: 'exec', req });
  }

  getAttachUrl(req: AttachRequest): string {
    return this.urlFor({ kind: 'attach', req });
  }

  getPortForwardUrl(req: PortForwardRequest): string {
    return this.urlFor({ kind: 'portforward', req });
  }

  private urlFor(request: CachedRequest): string {
    const base = this.requireBase();
    const token = this.cache.insert(request);
    return new URL(`${request.kind}/${token}`, base).href;
  }

  private requireBase(): URL {
    if (!this.base) throw new Error('streaming server is not started');
    return this.base;
  }

  private route(rawUrl: string | undefined): { kind: RequestKind; token: string; url: URL } | undefined {
    const url = new URL(rawUrl ?? '/', 'http://streaming.invalid');
    const m = ROUTE.exec(url.pathname);
    return m ? { kind: m[1] as RequestKind, token: m[2], url } : undefined;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = this.route(req.url);
    if (!route) return plain(res, 404, `404 page not found: ${req.url ?? ''}`);
    // kubelet consumes the token before the handshake; a failed handshake uses it up too.
    if (!this.cache.consume(route.token, route.kind)) return plain(res, 404, tokenMissing(route.kind));
    plain(res, 400, `unable to upgrade: ${route.kind} needs an upgrade to SPDY/3.1 or WebSocket (Connection: Upgrade)`);
  }

  private async onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', (err) => log.debug({ err: errorMessage(err) }, 'streaming socket error'));
    const route = this.route(req.url);
    if (!route) return rejectUpgrade(socket, 404, `404 page not found: ${req.url ?? ''}`);
    if (req.method !== 'GET' && req.method !== 'POST') return rejectUpgrade(socket, 404, `404 page not found: ${req.method} ${route.url.pathname}`);
    const request = this.cache.consume(route.token, route.kind);
    if (!request) return rejectUpgrade(socket, 404, tokenMissing(route.kind));
    const websocket = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    log.debug({ kind: request.kind, transport: websocket ? 'websocket' : 'spdy' }, 'streaming request');

    if (request.kind === 'portforward') {
      if (websocket) return servePortForwardWebSocket(req, socket, head, route.url, request.req.podSandboxId, this.backend);
      const up = acceptSpdyUpgrade(req, socket, head, { protocols: PORTFORWARD_SPDY_PROTOCOLS, session: { idleTimeoutMs: this.streamIdleTimeoutMs } });
      if (!up.ok) return;
      return servePortForwardSpdy(up.session, request.req.podSandboxId, this.backend, { streamCreationTimeoutMs: this.streamCreationTimeoutMs });
    }
    if (websocket) return serveRemoteCommandWebSocket(req, socket, head, request, this.backend);
    const up = acceptSpdyUpgrade(req, socket, head, { protocols: REMOTECOMMAND_SPDY_PROTOCOLS, session: { idleTimeoutMs: this.streamIdleTimeoutMs } });
    if (!up.ok) return;
    return serveRemoteCommandSpdy(up.session, up.protocol, request, this.backend, { streamCreationTimeoutMs: this.streamCreationTimeoutMs });
  }
}

function tokenMissing(kind: RequestKind): string {
  return `404 page not found: ${kind} token is unknown, expired or already used; ask the runtime for a new URL`;
}

function plain(res: http.ServerResponse, status: number, message: string): void {
  const body = `${message}\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff' });
  res.end(body);
}

/** "host:port", "[v6]:port" or ":port" (all interfaces). */
export function parseAddress(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 0xffff) throw new SkiffError('SKIFF_CONFIG_INVALID', `streaming server address "${address}" is not host:port`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}
