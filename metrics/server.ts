// The /metrics HTTP endpoint Prometheus scrapes (plain HTTP, loopback by default, as containerd's
// and kubelet's metrics endpoints are meant to sit behind the node): GET /metrics is the registry
// in the Prometheus text format, GET /healthz answers "ok", anything else 404 (405 for another
// method on a known path).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SkiffError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import type { Exposition } from './registry.js';

const log = logger('metrics');

/** "host:port" or "[v6]:port"; port 0 picks a free one. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 0xffff) throw new SkiffError('SKIFF_CONFIG_INVALID', `metrics address "${address}" is not host:port`);
  return { host: m[1] ?? m[2], port };
}

export class MetricsServer {
  private readonly server: http.Server;
  private bound: URL | undefined;

  constructor(
    private readonly registry: Exposition,
    private readonly address: string,
  ) {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    // Scrapers reuse connections; a stuck one must not hold a socket forever.
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 30_000;
  }

  async start(): Promise<void> {
    const { host, port } = parseListenAddress(this.address);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    this.bound = new URL(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`);
    log.info({ url: this.bound.href }, 'metrics server listening');
  }

  /** The scrape URL; defined once started. */
  get url(): string {
    if (!this.bound) throw new Error('metrics server is not started');
    return this.bound.href;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://metrics.invalid').pathname;
    if (path !== '/metrics' && path !== '/healthz') return reply(res, 404, 'text/plain; charset=utf-8', `404 page not found: ${path}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return reply(res, 405, 'text/plain; charset=utf-8', `405 method not allowed: ${req.method}\n`);
    }
    if (path === '/healthz') return reply(res, 200, 'text/plain; charset=utf-8', 'ok\n', req.method === 'HEAD');
    this.registry.metrics().then(
      (body) => reply(res, 200, this.registry.contentType, body, req.method === 'HEAD'),
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'metrics collection failed');
        reply(res, 500, 'text/plain; charset=utf-8', `metrics collection failed: ${errorMessage(err)}\n`);
      },
    );
  }
}

function reply(res: http.ServerResponse, status: number, type: string, body: string, headOnly = false): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff' });
  res.end(headOnly ? undefined : body);
}
