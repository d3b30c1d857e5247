// The client's authentication against real servers on 127.0.0.1 playing registry and token
// server: bearer tokens and their cache, Basic, OAuth2 identity tokens, registry tokens,
// credential failures, and redirects that must not leak the Authorization header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RegistryClient } from './client.js';
import type { Credentials } from './auth.js';
import { json, pathOf, registryHandler, serve, specError, type FakeImage, type TestServer } from './test-server.js';
import { rejectsWith } from '../../common/assert-error.js';
import { MediaType } from '../oci.js';
import type { Reference } from '../reference.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

function fakeImage(): FakeImage & { layerDigest: string } {
  const layer = Buffer.from('layer bytes');
  const layerDigest = sha256(layer);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: {}, layers: [] }));
  const m = { bytes: manifest, mediaType: MediaType.OCI_MANIFEST, digest: sha256(manifest) };
  return { repo: 'team/app', manifests: new Map([['v1', m]]), blobs: new Map([[layerDigest, layer]]), layerDigest };
}

const live = (): AbortSignal => new AbortController().signal;
const refOf = (s: TestServer): Reference => ({ domain: s.host, path: 'team/app', tag: 'v1' });
const newClient = (): RegistryClient => new RegistryClient({ hosts: { mirrors: {}, insecure: [] }, retryBaseMs: 1 });


/**
 * A token server that hands out `token-<n>` for the right (or any, when `users` is empty)
 * credentials, and a registry that wants `Bearer token-*` and challenges with the token server.
 */
async function bearerPair(opts: { users?: Record<string, string>; field?: 'token' | 'access_token' } = {}): Promise<{
  registry: TestServer;
  tokens: TestServer;
  issued: string[];
}> {
  const issued: string[] = [];
  const tokens = await serve((req, res) => {
    const users = opts.users ?? {};
    if (Object.keys(users).length > 0) {
      const ok = Object.entries(users).some(([u, p]) => req.headers.authorization === basic(u, p));
      if (!ok) return json(res, 401, { details: 'incorrect username or password' });
    }
    const token = `token-${issued.length + 1}`;
    issued.push(token);
    json(res, 200, { [opts.field ?? 'token']: token, expires_in: 300 });
  });
  const registry = await serve(
    registryHandler(fakeImage(), (req, res) => {
      if (req.headers.authorization?.startsWith('Bearer token-')) return false;
      specError(res, 401, 'UNAUTHORIZED', 'authentication required', {
        'www-authenticate': `Bearer realm="${tokens.base}/token",service="test-registry",scope="repository:team/app:pull"`,
      });
      return true;
    }),
  );
  return { registry, tokens, issued };
}

void test('bearer challenge: the token is fetched with service and scope and reused for the next request', async (t) => {
  const { registry, tokens } = await bearerPair();
  const c = newClient();
  t.after(async () => { c.close(); await registry.close(); await tokens.close(); });
  await c.getManifest(refOf(registry), undefined, live());
  const blob = await c.getBlob(refOf(registry), fakeImage().layerDigest, undefined, live());
  blob.stream.resume();

  assert.equal(tokens.requests.length, 1, 'token server hit once');
  const q = new URL(tokens.requests[0].url, 'http://x').searchParams;
  assert.equal(q.get('service'), 'test-registry');
  assert.deepEqual(q.getAll('scope'), ['repository:team/app:pull']);
  assert.equal(tokens.requests[0].headers.authorization, undefined, 'anonymous token request');
  // First manifest request anonymous, retried with the token; the blob goes with the token at once.
  assert.deepEqual(
    registry.requests.map((r) => [pathOf(r), r.headers.authorization]),
    [
      ['/v2/team/app/manifests/v1', undefined],
      ['/v2/team/app/manifests/v1', 'Bearer token-1'],
      [`/v2/team/app/blobs/${fakeImage().layerDigest}`, 'Bearer token-1'],
    ],
  );
});

void test('username and password go to the token server as Basic', async (t) => {
  const { registry, tokens } = await bearerPair({ users: { alice: 's3cret' } });
  const c = newClient();
  t.after(async () => { c.close(); await registry.close(); await tokens.close(); });
  await c.getManifest(refOf(registry), { username: 'alice', password: 's3cret' }, live());
  assert.equal(tokens.requests[0].headers.authorization, basic('alice', 's3cret'));
});

void test('wrong credentials are SKIFF_REGISTRY_UNAUTHORIZED with the token server message', async (t) => {
  const { registry, tokens } = await bearerPair({ users: { alice: 's3cret' } });
  const c = newClient();
  t.after(async () => { c.close(); await registry.close(); await tokens.close(); });
  await rejectsWith(
    c.getManifest(refOf(registry), { username: 'alice', password: 'wrong' }, live()),
    'SKIFF_REGISTRY_UNAUTHORIZED',
    `pull ${registry.host}/team/app:v1: unauthorized: incorrect username or password (401)`,
  );
});

void test('a private registry with Basic auth and no credentials is SKIFF_REGISTRY_UNAUTHORIZED', async (t) => {
  const s = await serve((_req, res) =>
    specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="Registry Realm"' }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_REGISTRY_UNAUTHORIZED', `pull ${s.host}/team/app:v1: unauthorized: authentication required (401)`);
  assert.equal(s.requests.length, 1);
});

void test('a Basic challenge is answered with Basic credentials, up front afterwards', async (t) => {
  const s = await serve(
    registryHandler(fakeImage(), (req, res) => {
      if (req.headers.authorization === basic('bob', 'pw')) return false;
      specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="Registry Realm"' });
      return true;
    }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const creds: Credentials = { username: 'bob', password: 'pw' };
  await c.getManifest(refOf(s), creds, live());
  await c.getManifest(refOf(s), creds, live());
  assert.deepEqual(s.requests.map((r) => r.headers.authorization), [undefined, basic('bob', 'pw'), basic('bob', 'pw')]);
  // Wrong password: the registry's own message, after exactly one answer to the challenge.
  await rejectsWith(c.getManifest(refOf(s), { username: 'bob', password: 'no' }, live()), 'SKIFF_REGISTRY_UNAUTHORIZED', /unauthorized: authentication required \(401\)$/);
});

void test('an identity token is exchanged with an OAuth2 refresh_token POST', async (t) => {
  const issued: string[] = [];
  const tokens = await serve((req, res) => {
    if (req.method !== 'POST') return json(res, 405, {});
    const form = new URLSearchParams(req.body);
    if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== 'refresh-me') return json(res, 401, { error: 'invalid_grant' });
    issued.push('token-oauth');
    json(res, 200, { access_token: 'token-oauth', expires_in: 300 });
  });
  const s = await serve(
    registryHandler(fakeImage(), (req, res) => {
      if (req.headers.authorization === 'Bearer token-oauth') return false;
      specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': `Bearer realm="${tokens.base}/token",service="svc"` });
      return true;
    }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); await tokens.close(); });
  await c.getManifest(refOf(s), { identityToken: 'refresh-me' }, live());
  const form = new URLSearchParams(tokens.requests[0].body);
  assert.equal(tokens.requests[0].headers['content-type'], 'application/x-www-form-urlencoded');
  assert.equal(form.get('service'), 'svc');
  assert.equal(form.get('scope'), 'repository:team/app:pull');
  assert.equal(form.get('client_id'), 'skiff');
  assert.deepEqual(issued, ['token-oauth']);
});

void test('a registry token is sent as Bearer directly, without a token server', async (t) => {
  const s = await serve(
    registryHandler(fakeImage(), (req, res) => {
      if (req.headers.authorization === 'Bearer reg-token') return false;
      specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Bearer realm="http://127.0.0.1:9/token"' });
      return true;
    }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await c.getManifest(refOf(s), { registryToken: 'reg-token' }, live());
  assert.deepEqual(s.requests.map((r) => r.headers.authorization), ['Bearer reg-token']);
  await rejectsWith(c.getManifest(refOf(s), { registryToken: 'revoked' }, live()), 'SKIFF_REGISTRY_UNAUTHORIZED');
});

void test('a cached token the registry rejects is replaced once', async (t) => {
  let issued = 0;
  const tokens = await serve((_req, res) => json(res, 200, { token: `token-${++issued}`, expires_in: 300 }));
  let accepted = 'Bearer token-1';
  const s = await serve(
    registryHandler(fakeImage(), (req, res) => {
      if (req.headers.authorization === accepted) return false;
      specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': `Bearer realm="${tokens.base}/token"` });
      return true;
    }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); await tokens.close(); });
  await c.getManifest(refOf(s), undefined, live());
  accepted = 'Bearer token-2'; // the registry revokes token-1 before it expires
  await c.getManifest(refOf(s), undefined, live());
  assert.equal(issued, 2);
  assert.deepEqual(
    s.requests.map((r) => r.headers.authorization),
    [undefined, 'Bearer token-1', 'Bearer token-1', 'Bearer token-2'],
  );
});

void test('a token the registry keeps rejecting is SKIFF_REGISTRY_UNAUTHORIZED after one refresh', async (t) => {
  const issued: string[] = [];
  const tokens = await serve((_req, res) => {
    issued.push('t');
    json(res, 200, { token: `token-${issued.length}` });
  });
  const s = await serve((_req, res) =>
    specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': `Bearer realm="${tokens.base}/token"` }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); await tokens.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_REGISTRY_UNAUTHORIZED', `pull ${s.host}/team/app:v1: unauthorized: authentication required (401)`);
  assert.equal(s.requests.length, 2);
  assert.equal(issued.length, 1);
  // Next time the challenge is known: a cached token up front, then one fresh token, then failure.
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_REGISTRY_UNAUTHORIZED');
  assert.equal(s.requests.length, 4);
  assert.equal(issued.length, 2);
});

void test('tokens are cached per credentials', async (t) => {
  const { registry, tokens } = await bearerPair({ users: { alice: 'a', bob: 'b' } });
  const c = newClient();
  t.after(async () => { c.close(); await registry.close(); await tokens.close(); });
  await c.getManifest(refOf(registry), { username: 'alice', password: 'a' }, live());
  await c.getManifest(refOf(registry), { username: 'bob', password: 'b' }, live());
  await c.getManifest(refOf(registry), { username: 'alice', password: 'a' }, live());
  assert.deepEqual(tokens.requests.map((r) => r.headers.authorization), [basic('alice', 'a'), basic('bob', 'b')]);
});

void test('concurrent requests share one token fetch', async (t) => {
  const { registry, tokens } = await bearerPair({ field: 'access_token' });
  const c = newClient();
  t.after(async () => { c.close(); await registry.close(); await tokens.close(); });
  await c.getManifest(refOf(registry), undefined, live());
  const digest = fakeImage().layerDigest;
  const blobs = await Promise.all([1, 2, 3].map(() => c.getBlob(refOf(registry), digest, undefined, live())));
  for (const b of blobs) b.stream.resume();
  assert.equal(tokens.requests.length, 1);
});

void test('a blob redirect to another host does not carry the Authorization header', async (t) => {
  const img = fakeImage();
  const cdn = await serve((_req, res) => {
    const blob = img.blobs.get(img.layerDigest)!;
    res.writeHead(200, { 'content-length': blob.length });
    res.end(blob);
  });
  const s = await serve(
    registryHandler(img, (req, res) => {
      if (req.headers.authorization !== basic('u', 'p')) {
        specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="r"' });
        return true;
      }
      if (req.url.startsWith('/v2/team/app/blobs/')) {
        res.writeHead(307, { location: `${cdn.base}/signed/blob?sig=abc` });
        res.end();
        return true;
      }
      if (req.url.startsWith('/v2/team/app/manifests/same-host')) {
        res.writeHead(302, { location: '/v2/team/app/manifests/v1' });
        res.end();
        return true;
      }
      return false;
    }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); await cdn.close(); });
  const creds = { username: 'u', password: 'p' };
  const got = await c.getBlob(refOf(s), img.layerDigest, creds, live(), { offset: 3 });
  got.stream.resume();
  assert.equal(cdn.requests.length, 1);
  assert.equal(cdn.requests[0].url, '/signed/blob?sig=abc');
  assert.equal(cdn.requests[0].headers.authorization, undefined);
  assert.equal(cdn.requests[0].headers.range, 'bytes=3-', 'the Range goes along');
  assert.equal(got.offset, 0);

  // A redirect within the same origin keeps the credentials.
  await c.getManifest({ ...refOf(s), tag: 'same-host' }, creds, live());
  const last = s.requests.at(-1)!;
  assert.equal(pathOf(last), '/v2/team/app/manifests/v1');
  assert.equal(last.headers.authorization, basic('u', 'p'));
});

void test('cancelling one caller of a shared token fetch does not fail the others', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let reached!: () => void;
  const tokenRequested = new Promise<void>((r) => (reached = r));
  const tokens = await serve(async (_req, res) => {
    reached();
    await gate;
    json(res, 200, { token: 'token-1', expires_in: 300 });
  });
  const registry = await serve(
    registryHandler(fakeImage(), (req, res) => {
      if (req.headers.authorization === 'Bearer token-1') return false;
      specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': `Bearer realm="${tokens.base}/token"` });
      return true;
    }),
  );
  const c = newClient();
  t.after(async () => { c.close(); await registry.close(); await tokens.close(); });

  const first = new AbortController();
  const a = c.getManifest(refOf(registry), undefined, first.signal);
  await tokenRequested;
  // The challenge is known now: the second request joins the token fetch before sending anything.
  const b = c.getManifest(refOf(registry), undefined, live());
  first.abort();
  await rejectsWith(a, 'SKIFF_CANCELLED');
  release();
  const got = await b;
  assert.equal(got.mediaType, MediaType.OCI_MANIFEST);
  assert.equal(tokens.requests.length, 1, 'one token fetch, not restarted');
});
