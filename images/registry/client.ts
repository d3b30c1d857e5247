// The distribution-spec v2 pull client (opencontainers/distribution-spec spec.md "Pull"): fetches
// manifests and blobs from a registry's mirrors and then the registry itself, answering auth
// challenges, retrying transient failures, verifying manifest digests. Modelled on containerd's
// core/remotes/docker resolver and fetcher.
import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, errorMessage, isSkiffError, SkiffError } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { MANIFEST_ACCEPT, MANIFEST_MEDIA_TYPES, MediaType } from '../oci.js';
import { formatReference, isDigest, repository, type Reference } from '../reference.js';
import { Authorizer, type Credentials } from './auth.js';
import { describeBody, statusError, type Subject } from './errors.js';
import { endpointsFor, type Endpoint, type RegistryHostsConfig } from './hosts.js';
import { cancelled, readBody, readErrorBody, Transport, type HttpRequest, type HttpResponse } from './transport.js';

const log = logger('registry');

/** Manifests larger than this are refused (containerd's limit too): they are JSON, not data. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
// A registry asking us to wait longer than this is treated as unavailable sooner rather than
// holding a pull (and kubelet's image-pull deadline) hostage.
const RETRY_AFTER_CAP_MS = 10_000;
const BACKOFF_CAP_MS = 10_000;

// Failures of a connection that a new attempt may not meet. ENOTFOUND is not here: DNS has
// answered that the name does not exist, and retrying would only delay the error.
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET', // also "socket hang up"
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

// reference.go tag grammar: what may follow the ":" of a reference.
const TAG_RE = /^[\w][\w.-]{0,127}$/;

export interface RegistryClientOptions {
  hosts: RegistryHostsConfig;
  userAgent?: string;
  /** Extra attempts after the first for network errors, 429 and 5xx. Default 3. */
  retries?: number;
  /** First backoff delay; doubled per attempt, with jitter. Default 250 ms. */
  retryBaseMs?: number;
  /** Deadline for connecting and receiving response headers. Default 30 s. */
  connectTimeoutMs?: number;
  /** Host name resolution (node:net LookupFunction); default dns.lookup. For tests and split DNS. */
  lookup?: LookupFunction;
}

export interface ManifestResult {
  mediaType: string;
  digest: string;
  bytes: Buffer;
  endpoint: Endpoint;
}

export interface BlobResult {
  stream: Readable;
  size: number | undefined;
  offset: number;
}

function hashOf(digest: string, bytes: Buffer): string {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function parseRetryAfter(v: string | undefined): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * The manifest's media type: the Content-Type when it names a manifest type, else the document's
 * own `mediaType` (registries that answer application/json), else what its shape says.
 */
function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (MANIFEST_MEDIA_TYPES.has(ct)) return ct;
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    doc = undefined;
  }
  if (typeof doc === 'object' && doc !== null) {
    const d = doc as Record<string, unknown>;
    if (typeof d.mediaType === 'string' && d.mediaType) return d.mediaType;
    if (!ct || ct === 'application/json' || ct === 'text/plain' || ct === 'application/octet-stream') {
      if (Array.isArray(d.manifests)) return MediaType.OCI_INDEX;
      if (d.config !== undefined && Array.isArray(d.layers)) return MediaType.OCI_MANIFEST;
    }
  }
  return ct || 'application/octet-stream';
}

export class RegistryClient {
  private readonly hosts: RegistryHostsConfig;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly connectTimeoutMs: number;
  private readonly transport: Transport;
  private readonly auth: Authorizer;

  constructor(opts: RegistryClientOptions) {
    this.hosts = opts.hosts;
    this.retries = Math.max(0, opts.retries ?? 3);
    this.retryBaseMs = Math.max(0, opts.retryBaseMs ?? 250);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
    this.transport = new Transport({
      userAgent: opts.userAgent ?? 'skiff',
      connectTimeoutMs: this.connectTimeoutMs,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    });
    this.auth = new Authorizer((req, signal, what) => this.send(req, signal, what));
  }

  /** Closes idle keep-alive connections (daemon shutdown, tests). */
  close(): void {
    this.transport.close();
  }

  /**
   * Fetches a manifest or index by tag or digest (`reference` defaults to ref.digest ?? ref.tag,
   * then "latest"). Fetched by digest, the bytes must hash to it; fetched by tag, the digest is
   * computed (sha256) and Docker-Content-Digest, when sent, must match the bytes.
   */
  async getManifest(ref: Reference, creds: Credentials | undefined, signal: AbortSignal, reference?: string): Promise<ManifestResult> {
    const want = reference ?? ref.digest ?? ref.tag ?? 'latest';
    const byDigest = isDigest(want);
    const what = `pull ${repository(ref)}${byDigest ? '@' : ':'}${want}`;
    if (!byDigest && !TAG_RE.test(want)) {
      throw new SkiffError('SKIFF_IMAGE_REF_INVALID', `${what}: "${want}" is neither a tag nor a digest`);
    }
    return this.tryEndpoints(endpointsFor(ref.domain, this.hosts), signal, what, async (ep) => {
      const res = await this.fetch(ep, ref, `/manifests/${want}`, { accept: MANIFEST_ACCEPT }, creds, signal, what, { kind: 'manifest' });
      const tooLarge = (): SkiffError =>
        new SkiffError('SKIFF_MANIFEST_INVALID', `${what}: manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
      if (Number(res.headers['content-length'] ?? 0) > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw tooLarge();
      }
      let bytes: Buffer;
      try {
        bytes = await readBody(res, MAX_MANIFEST_BYTES, tooLarge, this.connectTimeoutMs);
      } catch (err) {
        if (isSkiffError(err)) throw err;
        throw new SkiffError('SKIFF_REGISTRY_UNAVAILABLE', `${what}: reading manifest from ${res.url.host}: ${errorMessage(err)}`, { cause: err });
      }

      let digest: string;
      if (byDigest) {
        const got = hashOf(want, bytes);
        if (got !== want) throw new SkiffError('SKIFF_DIGEST_MISMATCH', `${what}: manifest from ${ep.base} has digest ${got}`);
        digest = want;
      } else {
        digest = hashOf('sha256:', bytes);
        const header = res.headers['docker-content-digest'];
        if (typeof header === 'string' && isDigest(header) && hashOf(header, bytes) !== header) {
          throw new SkiffError(
            'SKIFF_DIGEST_MISMATCH',
            `${what}: manifest from ${ep.base} has digest ${hashOf(header, bytes)}, Docker-Content-Digest says ${header}`,
          );
        }
      }
      return { mediaType: manifestMediaType(res.headers['content-type'], bytes), digest, bytes, endpoint: ep };
    });
  }

  /**
   * Opens a blob stream, from `offset` with a Range request when offset > 0. The result's `offset`
   * is where the stream really starts (0 when the server ignored the Range); `size` is the blob's
   * total size when known. The caller hashes and verifies, and watches for a stalled body.
   * `endpoint` (the one that served the manifest) is tried first, then the others in order.
   */
  async getBlob(
    ref: Reference,
    digest: string,
    creds: Credentials | undefined,
    signal: AbortSignal,
    opts?: { offset?: number; endpoint?: Endpoint },
  ): Promise<BlobResult> {
    const what = `pull ${formatReference(ref)}`;
    if (!isDigest(digest)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${what}: invalid blob digest "${digest}"`);
    const all = endpointsFor(ref.domain, this.hosts);
    const first = opts?.endpoint;
    const endpoints = first ? [first, ...all.filter((e) => e.base !== first.base)] : all;
    const offset = Math.max(0, Math.floor(opts?.offset ?? 0));
    return this.tryEndpoints(endpoints, signal, what, (ep) => this.openBlob(ep, ref, digest, creds, signal, what, offset));
  }

  private async openBlob(
    ep: Endpoint,
    ref: Reference,
    digest: string,
    creds: Credentials | undefined,
    signal: AbortSignal,
    what: string,
    offset: number,
  ): Promise<BlobResult> {
    const headers: Record<string, string> = { accept: '*/*' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const subject: Subject = { kind: 'blob', digest };
    const res = await this.fetch(ep, ref, `/blobs/${digest}`, headers, creds, signal, what, subject, [416]);
    if (res.status === 416) {
      // The offset is at or past the end (a previous download was complete but not committed):
      // start over rather than guess.
      res.body.resume();
      return this.openBlob(ep, ref, digest, creds, signal, what, 0);
    }
    const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
      if (!m) {
        res.body.destroy();
        throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: blob ${digest}: partial response without a valid Content-Range`);
      }
      return { stream: res.body, size: m[3] === '*' ? undefined : Number(m[3]), offset: Number(m[1]) };
    }
    return { stream: res.body, size: length !== undefined && Number.isFinite(length) ? length : undefined, offset: 0 };
  }

  /**
   * One authorized GET against an endpoint: up-front authorization when the endpoint's challenge
   * is known, one retry after a 401 with a fresh answer, and the final status mapped to an error
   * (except the `passthrough` statuses). Credentials go to the registry itself only — a mirror
   * is a different party, and pull-through mirrors hold their own upstream credentials.
   */
  private async fetch(
    ep: Endpoint,
    ref: Reference,
    suffix: string,
    headers: Record<string, string>,
    creds: Credentials | undefined,
    signal: AbortSignal,
    what: string,
    subject: Subject,
    passthrough: number[] = [],
  ): Promise<HttpResponse> {
    const url = new URL(`${ep.base}/v2/${ref.path}${suffix}`);
    // containerd tells a mirror which registry the request is for, so that one mirror can serve
    // several upstreams.
    if (ep.mirror) url.searchParams.set('ns', ep.domain);
    const scope = `repository:${ref.path}:pull`;
    const c = ep.mirror ? undefined : creds;
    const request = (authorization: string | undefined): HttpRequest => ({
      method: 'GET',
      url,
      headers: authorization ? { ...headers, authorization } : { ...headers },
    });

    let authorization = await this.auth.header(ep, scope, c, signal, what);
    let res = await this.send(request(authorization), signal, what);
    if (res.status === 401) {
      const challenge = res.headers['www-authenticate'];
      const body = await readErrorBody(res);
      const retry = await this.auth.answer(ep, challenge, scope, c, signal, what);
      if (retry === undefined || retry === authorization) throw statusError(what, 401, body, subject);
      authorization = retry;
      res = await this.send(request(authorization), signal, what);
    }
    if ((res.status >= 200 && res.status < 300) || passthrough.includes(res.status)) return res;
    throw statusError(what, res.status, await readErrorBody(res), subject);
  }

  /** Sends with retries: network errors, 429 and 5xx, with exponential backoff and jitter. */
  private async send(req: HttpRequest, signal: AbortSignal, what: string): Promise<HttpResponse> {
    const host = req.url.host;
    for (let attempt = 0; ; attempt++) {
      let reason: string;
      let cause: unknown;
      let retryAfterMs: number | undefined;
      try {
        const res = await this.transport.request(req, signal, what);
        if (res.status !== 429 && res.status < 500) return res;
        const detail = describeBody(await readErrorBody(res));
        reason = `${res.status} ${STATUS_CODES[res.status] ?? ''}`.trim() + (detail ? `: ${detail}` : '');
        retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      } catch (err) {
        if (signal.aborted) throw cancelled(what);
        if (isSkiffError(err)) throw err;
        const code = errnoCode(err);
        if (code === 'ENOTFOUND') {
          throw new SkiffError('SKIFF_REGISTRY_UNAVAILABLE', `${what}: cannot resolve registry host "${req.url.hostname}"`, { cause: err });
        }
        if (code === undefined || !RETRYABLE_NETWORK_CODES.has(code)) {
          throw new SkiffError('SKIFF_REGISTRY_UNAVAILABLE', `${what}: cannot reach registry ${host}: ${errorMessage(err)}`, { cause: err });
        }
        reason = errorMessage(err);
        cause = err;
      }
      if (attempt >= this.retries) {
        throw new SkiffError(
          'SKIFF_REGISTRY_UNAVAILABLE',
          `${what}: registry ${host} unavailable after ${attempt + 1} attempt${attempt ? 's' : ''}: ${reason}`,
          { cause },
        );
      }
      const exp = Math.min(this.retryBaseMs * 2 ** attempt, BACKOFF_CAP_MS);
      let delay = exp / 2 + (Math.random() * exp) / 2;
      if (retryAfterMs !== undefined) delay = Math.max(delay, Math.min(retryAfterMs, RETRY_AFTER_CAP_MS));
      log.debug({ host, attempt: attempt + 1, delayMs: Math.round(delay), reason }, 'retrying registry request');
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        throw cancelled(what);
      }
    }
  }

  /**
   * Runs `fn` against each endpoint in turn until one succeeds. Any failure of a mirror moves on
   * (a mirror is an optimisation, never a reason to fail a pull); the error reported is the last
   * endpoint's — the registry's own. Cancellation stops everything.
   */
  private async tryEndpoints<T>(endpoints: Endpoint[], signal: AbortSignal, what: string, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    let last: unknown = new SkiffError('SKIFF_REGISTRY_UNAVAILABLE', `${what}: no registry endpoint`);
    for (const [i, ep] of endpoints.entries()) {
      if (signal.aborted) throw cancelled(what);
      try {
        return await fn(ep);
      } catch (err) {
        if (signal.aborted) throw isSkiffError(err, 'SKIFF_CANCELLED') ? err : cancelled(what);
        last = err;
        if (i < endpoints.length - 1) log.debug({ endpoint: ep.base, err: errorMessage(err) }, 'trying next endpoint');
      }
    }
    throw last;
  }
}
