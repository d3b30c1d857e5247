// One HTTP exchange with a registry or token server: keep-alive agents, a deadline for the
// connection and response headers, cancellation that destroys the socket, and redirects that
// never carry credentials to another origin. Retries and status handling live in client.ts.
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { isSkiffError, SkiffError } from '../../common/errors.js';
import { logger } from '../../common/log.js';

const log = logger('registry');

// Enough for a registry → CDN → signed-URL chain; more is a loop.
const MAX_REDIRECTS = 10;

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  /** The URL that answered, after redirects. */
  url: URL;
}

export interface TransportOptions {
  userAgent: string;
  connectTimeoutMs: number;
  lookup?: LookupFunction;
}

/** The error a cancelled exchange fails with; `what` names the operation ("pull x:y"). */
export function cancelled(what: string): SkiffError {
  return new SkiffError('SKIFF_CANCELLED', `${what}: cancelled`);
}

export class Transport {
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent = new https.Agent({ keepAlive: true });

  constructor(private readonly opts: TransportOptions) {}

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /**
   * Sends `req`, following redirects for GET. The Authorization header goes only to the origin
   * it was meant for: a blob redirect to a CDN or object store must not receive the registry's
   * token (and S3 rejects requests that carry a second credential).
   */
  async request(req: HttpRequest, signal: AbortSignal, what: string): Promise<HttpResponse> {
    const headers = { ...req.headers };
    const origin = req.url.origin;
    let url = req.url;
    for (let hop = 0; ; hop++) {
      if (url.origin !== origin) delete headers.authorization;
      const res = await this.once(req.method, url, headers, req.body, signal, what);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (req.method !== 'GET' || ![301, 302, 303, 307, 308].includes(status) || !location) {
        return { status, headers: res.headers, body: res, url };
      }
      res.resume();
      if (hop >= MAX_REDIRECTS) {
        throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: more than ${MAX_REDIRECTS} redirects from ${req.url.host}`);
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch (err) {
        throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: ${url.host} redirected to an invalid URL`, { cause: err });
      }
      log.trace({ from: url.href, to: next.origin + next.pathname, status }, 'redirect');
      url = next;
    }
  }

  private once(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal,
    what: string,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(cancelled(what));
        return;
      }
      const started = Date.now();
      const secure = url.protocol === 'https:';
      const req = (secure ? https : http).request(url, {
        method,
        agent: secure ? this.httpsAgent : this.httpAgent,
        ...(this.opts.lookup ? { lookup: this.opts.lookup } : {}),
        headers: { 'user-agent': this.opts.userAgent, ...headers },
      });
      // One deadline covers DNS, connect, TLS and the wait for response headers; a stalled body
      // is the reader's business (it knows how much progress to expect).
      const timer = setTimeout(() => {
        const err = Object.assign(
          new Error(`no response from ${url.host} within ${this.opts.connectTimeoutMs} ms`),
          { code: 'ETIMEDOUT' },
        );
        req.destroy(err);
      }, this.opts.connectTimeoutMs);
      const onAbort = (): void => {
        req.destroy(cancelled(what));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('error', (err) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(err);
      });
      req.once('response', (res) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        log.trace({ method, url: url.origin + url.pathname, status: res.statusCode, ms: Date.now() - started }, 'response');
        // Cancelling while the body streams destroys the socket and fails the stream's reader.
        const onAbortBody = (): void => {
          res.destroy(cancelled(what));
        };
        signal.addEventListener('abort', onAbortBody, { once: true });
        res.once('close', () => signal.removeEventListener('abort', onAbortBody));
        resolve(res);
      });
      req.end(body);
    });
  }
}

/**
 * Reads a whole (small) body, failing once it passes `limit` bytes or, with `idleMs`, when no
 * data arrives for that long (a manifest is read here, not by a caller that could watch it).
 */
export async function readBody(res: HttpResponse, limit: number, tooLarge: () => Error, idleMs?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    if (idleMs === undefined) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      res.body.destroy(Object.assign(new Error(`${res.url.host} stalled sending a response body`), { code: 'ETIMEDOUT' }));
    }, idleMs);
  };
  try {
    arm();
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > limit) {
        res.body.destroy();
        throw tooLarge();
      }
      chunks.push(b);
      arm();
    }
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks);
}

/** Reads up to 64 KiB of an error body for its message and discards the rest. */
export async function readErrorBody(res: HttpResponse): Promise<string> {
  try {
    return (await readBody(res, 64 * 1024, () => new Error('error body too large'))).toString('utf8');
  } catch (err) {
    // The body only decorates a message; losing it is fine, losing a cancellation is not.
    if (isSkiffError(err, 'SKIFF_CANCELLED')) throw err;
    return '';
  }
}
