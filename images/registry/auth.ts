// Registry credentials and the answer to a registry's authentication challenge: Basic, or a
// Bearer token from the challenge's realm (distribution "Token Authentication Specification"
// token.md, and oauth.md for identity tokens), cached per endpoint, scope and credentials.
import { createHash } from 'node:crypto';
import { SkiffError } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { SharedTasks } from '../shared-task.js';
import { statusError } from './errors.js';
import type { Endpoint } from './hosts.js';
import { readBody, readErrorBody, type HttpRequest, type HttpResponse } from './transport.js';

const log = logger('registry');

export interface Credentials {
  username?: string;
  password?: string;
  /** A refresh token from `docker login` against an OAuth2 token server. */
  identityToken?: string;
  /** A bearer token for the registry itself, sent as is. */
  registryToken?: string;
}

/** The names Docker Hub answers to, in references and in `docker login` configs. */
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * The registry host an AuthConfig's server_address names, lowercased and with Docker Hub's aliases
 * folded into "docker.io". It may be a URL (`https://index.docker.io/v1/`) or host[:port]
 * (`registry.example.com:5000`); anything after the host is ignored. The port is kept as written,
 * as Go's url.URL.Host does for containerd.
 */
function serverHost(address: string): string {
  const authority = /^(?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?([^/?#]*)/.exec(address)?.[1] ?? '';
  if (authority === '' || authority.includes('@') || !URL.canParse(`https://${authority}`)) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `invalid auth config: server_address "${address}" is neither a URL nor host[:port]`);
  }
  return registryHost(authority);
}

function registryHost(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(h) ? 'docker.io' : h;
}

/**
 * Credentials from a CRI / Docker AuthConfig for a pull from registry `domain` (the image
 * reference's domain). Like containerd's CRI ParseAuth, explicit username/password win, then the
 * identity token, then `auth` (base64 of "user:password").
 *
 * A server_address naming another registry means the credentials are not for this one, and they
 * are never sent there. As in ParseAuth that is not an error but undefined: the pull goes on
 * anonymously, and fails with the registry's own 401 if the image is private. A server_address
 * that names no host, or a malformed `auth` → SKIFF_INVALID_ARGUMENT. Nothing usable → undefined.
 */
export function credentialsFromAuthConfig(
  a:
    | {
        username?: string;
        password?: string;
        auth?: string;
        server_address?: string;
        identity_token?: string;
        registry_token?: string;
      }
    | undefined
    | null,
  domain: string,
): Credentials | undefined {
  if (!a) return undefined;
  if (a.server_address && serverHost(a.server_address) !== registryHost(domain)) return undefined;
  const c: Credentials = {};
  if (a.username) {
    c.username = a.username;
    c.password = a.password ?? '';
  } else if (!a.identity_token && a.auth) {
    // Go's base64.StdEncoding, which Docker uses for this field, wants the padded alphabet.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(a.auth) || a.auth.length % 4 !== 0) {
      throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'invalid auth config: "auth" is not base64');
    }
    const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'invalid auth config: "auth" does not decode to "username:password"');
    }
    c.username = decoded.slice(0, colon);
    c.password = decoded.slice(colon + 1);
  }
  if (a.identity_token) c.identityToken = a.identity_token;
  if (a.registry_token) c.registryToken = a.registry_token;
  return Object.keys(c).length > 0 ? c : undefined;
}

export interface Challenge {
  /** Lowercase auth scheme: "bearer", "basic", … */
  scheme: string;
  /** Parameters with lowercase names: realm, service, scope, error… */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

/**
 * Parses WWW-Authenticate (RFC 9110 §11.6.1): one or more `scheme param=value, …` challenges,
 * comma-separated (Node joins repeated headers with ", "), values quoted or bare.
 */
export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: RegExp): void => {
    while (i < header.length && chars.test(header[i])) i++;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(header);
    if (!m) return undefined;
    i = TOKEN.lastIndex;
    return m[0];
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      skip(/[\s,]/);
      const start = i;
      const name = token();
      if (!name) break;
      skip(/\s/);
      if (header[i] !== '=') {
        // A token not followed by "=" starts the next challenge.
        i = start;
        break;
      }
      i++;
      skip(/\s/);
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        // Bare value: a token, or token68 (which may end in "=").
        const m = /[^\s,]*/y;
        m.lastIndex = i;
        value = m.exec(header)?.[0] ?? '';
        i = m.lastIndex;
      }
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** Sends a request with the client's retries and network-error handling. */
export type Sender = (req: HttpRequest, signal: AbortSignal, what: string) => Promise<HttpResponse>;

interface CachedToken {
  token: string;
  expiresAt: number;
}

// token.md: a token without expires_in lasts 60 s, and clients treat shorter lifetimes as 60 s.
const MIN_TOKEN_LIFETIME_S = 60;
// Renew a little early so that a token does not expire between check and use.
const EXPIRY_MARGIN = 0.9;
const MAX_TOKEN_RESPONSE = 1024 * 1024;
// oauth.md asks clients to identify themselves.
const OAUTH_CLIENT_ID = 'skiff';

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Credentials are part of the cache key so that one pod's token never serves another's pull. */
function credentialsKey(c: Credentials | undefined): string {
  if (!c?.username && !c?.identityToken) return 'anonymous';
  return createHash('sha256')
    .update(JSON.stringify([c.username ?? '', c.password ?? '', c.identityToken ?? '']))
    .digest('hex');
}

/**
 * Answers authentication challenges for a client. It remembers each endpoint's challenge, so
 * that later requests (and parallel layer downloads) authorize up front instead of taking a 401
 * each, and caches bearer tokens until they expire, sharing one fetch between concurrent callers.
 */
export class Authorizer {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new SharedTasks<string>();

  constructor(private readonly send: Sender) {}

  /** The Authorization header to send before any challenge is seen, if one is known. */
  async header(ep: Endpoint, scope: string, creds: Credentials | undefined, signal: AbortSignal, what: string): Promise<string | undefined> {
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const challenge = this.challenges.get(ep.base);
    if (!challenge) return undefined;
    return this.respond(ep, challenge, scope, creds, signal, what, false);
  }

  /**
   * After a 401: learns the endpoint's challenge and returns a fresh header to retry with, or
   * undefined when there is nothing new to try.
   */
  async answer(
    ep: Endpoint,
    wwwAuthenticate: string | undefined,
    scope: string,
    creds: Credentials | undefined,
    signal: AbortSignal,
    what: string,
  ): Promise<string | undefined> {
    // A registry token is all the caller gave us; if it is refused there is nothing else.
    if (creds?.registryToken) return undefined;
    const all = parseChallenges(wwwAuthenticate);
    const challenge = all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
    if (!challenge) return undefined;
    this.challenges.set(ep.base, challenge);
    return this.respond(ep, challenge, scope, creds, signal, what, true);
  }

  private async respond(
    ep: Endpoint,
    challenge: Challenge,
    scope: string,
    creds: Credentials | undefined,
    signal: AbortSignal,
    what: string,
    fresh: boolean,
  ): Promise<string | undefined> {
    if (challenge.scheme === 'basic') {
      return creds?.username !== undefined ? basic(creds.username, creds.password ?? '') : undefined;
    }
    return `Bearer ${await this.token(ep, challenge, scope, creds, signal, what, fresh)}`;
  }

  private async token(
    ep: Endpoint,
    challenge: Challenge,
    scope: string,
    creds: Credentials | undefined,
    signal: AbortSignal,
    what: string,
    fresh: boolean,
  ): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: ${new URL(ep.base).host} sent a bearer challenge without a realm`);
    const service = challenge.params.service;
    // The registry may name the scope it wants; ask for it as well as ours.
    const scopes = [...new Set([scope, ...(challenge.params.scope ?? '').split(' ').filter(Boolean)])].sort();
    const key = JSON.stringify([ep.base, realm, service ?? '', scopes, credentialsKey(creds)]);

    const now = Date.now();
    const cached = this.tokens.get(key);
    if (!fresh && cached && cached.expiresAt > now) return cached.token;
    // Concurrent callers join one fetch, each with its own signal: one caller's cancellation
    // must not fail the others' requests, so the fetch stops only when every caller has left.
    return this.inflight.run(key, signal, async (shared) => {
      const t = await this.fetchToken(realm, service, scopes, creds, shared, what);
      for (const [k, v] of this.tokens) if (v.expiresAt <= Date.now()) this.tokens.delete(k);
      this.tokens.set(key, t);
      return t.token;
    });
  }

  private async fetchToken(
    realm: string,
    service: string | undefined,
    scopes: string[],
    creds: Credentials | undefined,
    signal: AbortSignal,
    what: string,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (err) {
      throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: invalid token realm "${realm}"`, { cause: err });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: invalid token realm "${realm}"`);
    }
    let res: HttpResponse | undefined;
    if (creds?.identityToken) {
      // oauth.md: exchange the refresh token with a POST. Token servers without OAuth answer
      // 404/405; Docker then falls back to the GET endpoint with the token as the password.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        client_id: OAUTH_CLIENT_ID,
        scope: scopes.join(' '),
      });
      if (service) form.set('service', service);
      res = await this.send(
        { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
        signal,
        what,
      );
      if (res.status === 404 || res.status === 405) {
        res.body.resume();
        res = undefined;
      }
    }
    if (!res) {
      // token.md: GET with service and each scope; Basic credentials when we have them.
      const get = new URL(url);
      if (service) get.searchParams.set('service', service);
      for (const s of scopes) get.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (creds?.username) headers.authorization = basic(creds.username, creds.password ?? '');
      else if (creds?.identityToken) headers.authorization = basic('<token>', creds.identityToken);
      res = await this.send({ method: 'GET', url: get, headers }, signal, what);
    }
    if (res.status !== 200) {
      throw statusError(what, res.status, await readErrorBody(res), { kind: 'token', realm: url.origin + url.pathname });
    }
    const raw = await readBody(res, MAX_TOKEN_RESPONSE, () => new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: token response too large`));
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(raw.toString('utf8')) as typeof body;
    } catch (err) {
      throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: token server ${url.host} sent invalid JSON`, { cause: err });
    }
    const token = typeof body?.token === 'string' && body.token ? body.token : body?.access_token;
    if (typeof token !== 'string' || !token) {
      throw new SkiffError('SKIFF_REGISTRY_ERROR', `${what}: token server ${url.host} returned no token`);
    }
    const lifetime = Math.max(typeof body.expires_in === 'number' ? body.expires_in : 0, MIN_TOKEN_LIFETIME_S);
    log.trace({ realm: url.origin + url.pathname, scopes, lifetime }, 'token');
    return { token, expiresAt: Date.now() + lifetime * 1000 * EXPIRY_MARGIN };
  }
}
