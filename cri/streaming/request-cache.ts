// Single-use tokens for streaming requests (kubelet cri/streaming/request_cache.go): Exec, Attach
// and PortForward store the request and return a URL naming a random token; the first connection
// that presents the token consumes it. Tokens expire after a TTL, so a URL that leaks is useless
// a minute later. Expired entries are dropped lazily, on insert and on lookup: no timers.
import { randomBytes } from 'node:crypto';
import { SkiffError } from '../../common/errors.js';
import type { AttachRequest, ExecRequest, PortForwardRequest } from './backend.js';

export type CachedRequest =
  | { readonly kind: 'exec'; readonly req: ExecRequest }
  | { readonly kind: 'attach'; readonly req: AttachRequest }
  | { readonly kind: 'portforward'; readonly req: PortForwardRequest };

export type RequestKind = CachedRequest['kind'];

interface Entry {
  readonly request: CachedRequest;
  readonly expires: number;
}

export class RequestCache {
  // Insertion order is expiry order (one TTL for all), so expired entries sit at the front.
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxInFlight = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Stores `request` and returns its token. */
  insert(request: CachedRequest): string {
    this.gc();
    if (this.entries.size >= this.maxInFlight) {
      throw new SkiffError('SKIFF_NO_SPACE', `too many streaming requests in flight (${this.maxInFlight}); retry once some have been used or expired`);
    }
    // 128 bits, URL-safe: the token is the only credential the URL carries.
    const token = randomBytes(16).toString('base64url');
    this.entries.set(token, { request, expires: this.now() + this.ttlMs });
    return token;
  }

  /** The request of `token` if it is known, unexpired and of `kind`; the token is used up either way. */
  consume(token: string, kind: RequestKind): CachedRequest | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    if (entry.expires <= this.now() || entry.request.kind !== kind) return undefined;
    return entry.request;
  }

  private gc(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) {
      if (entry.expires > now) break;
      this.entries.delete(token);
    }
  }
}
