// Mirror fallback against real servers on 127.0.0.1: order, the ns parameter, fall-through on
// every kind of mirror failure, which error is reported, and where credentials go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RegistryClient } from './client.js';
import { pathOf, registryHandler, serve, specError, type FakeImage, type TestServer } from './test-server.js';
import { rejectsWith } from '../../common/assert-error.js';
import { MediaType } from '../oci.js';
import type { Reference } from '../reference.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function fakeImage(): FakeImage & { layerDigest: string } {
  const layer = Buffer.from('layer bytes');
  const layerDigest = sha256(layer);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: {}, layers: [] }));
  const m = { bytes: manifest, mediaType: MediaType.OCI_MANIFEST, digest: sha256(manifest) };
  return { repo: 'app', manifests: new Map([['v1', m], [m.digest, m]]), blobs: new Map([[layerDigest, layer]]), layerDigest };
}

const live = (): AbortSignal => new AbortController().signal;
const refOf = (s: TestServer): Reference => ({ domain: s.host, path: 'app', tag: 'v1' });

function clientFor(registry: TestServer, mirrors: TestServer[], retries = 1): RegistryClient {
  return new RegistryClient({ hosts: { mirrors: { [registry.host]: mirrors.map((m) => m.base) }, insecure: [] }, retries, retryBaseMs: 1 });
}


void test('a mirror that has the image serves it, with ?ns=<registry>; the registry is not contacted', async (t) => {
  const img = fakeImage();
  const registry = await serve(registryHandler(img));
  const mirror = await serve(registryHandler(img));
  const c = clientFor(registry, [mirror]);
  t.after(async () => { c.close(); await registry.close(); await mirror.close(); });
  const got = await c.getManifest(refOf(registry), undefined, live());
  assert.deepEqual(got.endpoint, { base: mirror.base, domain: registry.host, mirror: true });
  const blob = await c.getBlob(refOf(registry), img.layerDigest, undefined, live(), { endpoint: got.endpoint });
  blob.stream.resume();
  assert.deepEqual(
    mirror.requests.map((r) => r.url),
    [`/v2/app/manifests/v1?ns=${encodeURIComponent(registry.host)}`, `/v2/app/blobs/${img.layerDigest}?ns=${encodeURIComponent(registry.host)}`],
  );
  assert.equal(registry.requests.length, 0);
});

void test('mirrors are tried in order, then the registry', async (t) => {
  const img = fakeImage();
  const order: string[] = [];
  const registry = await serve((req, res) => {
    order.push('registry');
    return registryHandler(img)(req, res);
  });
  const m1 = await serve((_req, res) => {
    order.push('m1');
    specError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
  });
  const m2 = await serve((_req, res) => {
    order.push('m2');
    specError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
  });
  const c = clientFor(registry, [m1, m2]);
  t.after(async () => { c.close(); await registry.close(); await m1.close(); await m2.close(); });
  const got = await c.getManifest(refOf(registry), undefined, live());
  assert.deepEqual(order, ['m1', 'm2', 'registry']);
  assert.equal(got.endpoint.mirror, false);
  assert.equal(registry.requests[0]?.url, '/v2/app/manifests/v1', 'no ns parameter for the registry itself');
});

void test('a mirror failing with 5xx (after its retries), 401 or a dead port falls through', async (t) => {
  const img = fakeImage();
  const registry = await serve(registryHandler(img));
  const broken = await serve((_req, res) => specError(res, 502, 'UNAVAILABLE', 'bad gateway'));
  const locked = await serve((_req, res) => specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="m"' }));
  const dead = await serve(() => undefined);
  await dead.close();
  const c = clientFor(registry, [broken, locked, dead], 2);
  t.after(async () => { c.close(); await registry.close(); await broken.close(); await locked.close(); });
  const got = await c.getManifest(refOf(registry), undefined, live());
  assert.equal(got.endpoint.base, registry.base);
  assert.equal(broken.requests.length, 3, 'the 5xx mirror got its retries first');
  assert.equal(locked.requests.length, 1);
  assert.equal(registry.requests.length, 1);
});

void test('a mirror serving bytes that do not match the digest falls through', async (t) => {
  const img = fakeImage();
  const digest = img.manifests.get('v1')!.digest;
  const registry = await serve(registryHandler(img));
  const liar = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': MediaType.OCI_MANIFEST });
    res.end('{"schemaVersion":2,"tampered":true}');
  });
  const c = clientFor(registry, [liar]);
  t.after(async () => { c.close(); await registry.close(); await liar.close(); });
  const got = await c.getManifest(refOf(registry), undefined, live(), digest);
  assert.equal(got.digest, digest);
  assert.equal(got.endpoint.base, registry.base);
});

void test('when everything fails the registry\'s own error is reported', async (t) => {
  const registry = await serve((_req, res) => specError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown'));
  const mirror = await serve((_req, res) => specError(res, 500, 'UNKNOWN', 'boom'));
  const c = clientFor(registry, [mirror]);
  t.after(async () => { c.close(); await registry.close(); await mirror.close(); });
  await rejectsWith(c.getManifest(refOf(registry), undefined, live()), 'SKIFF_IMAGE_NOT_FOUND', `pull ${registry.host}/app:v1: manifest unknown (404)`);
});

void test('credentials go to the registry, never to a mirror', async (t) => {
  const img = fakeImage();
  const registry = await serve(registryHandler(img));
  const mirror = await serve((_req, res) => specError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="m"' }));
  const c = clientFor(registry, [mirror]);
  t.after(async () => { c.close(); await registry.close(); await mirror.close(); });
  await c.getManifest(refOf(registry), { username: 'u', password: 'p', registryToken: 'tok' }, live());
  assert.equal(mirror.requests.length, 1);
  assert.equal(mirror.requests[0]?.headers.authorization, undefined);
  assert.equal(registry.requests[0]?.headers.authorization, 'Bearer tok');
});

void test('getBlob tries the given endpoint first, then the others in order', async (t) => {
  const img = fakeImage();
  const registry = await serve(registryHandler(img));
  const m1 = await serve((_req, res) => specError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry'));
  const m2 = await serve(registryHandler(img));
  const c = clientFor(registry, [m1, m2]);
  t.after(async () => { c.close(); await registry.close(); await m1.close(); await m2.close(); });
  const registryEndpoint = { base: registry.base, domain: registry.host, mirror: false };
  const got = await c.getBlob(refOf(registry), img.layerDigest, undefined, live(), { endpoint: registryEndpoint });
  got.stream.resume();
  assert.equal(registry.requests.length, 1);
  assert.equal(m1.requests.length + m2.requests.length, 0);

  // Given a mirror without the blob: that mirror, then the list order minus it.
  registry.requests.length = 0;
  const m1Endpoint = { base: m1.base, domain: registry.host, mirror: true };
  const again = await c.getBlob(refOf(registry), img.layerDigest, undefined, live(), { endpoint: m1Endpoint });
  again.stream.resume();
  assert.equal(m1.requests.length, 1);
  assert.equal(m2.requests.length, 1);
  assert.equal(registry.requests.length, 0);
  assert.deepEqual(m2.requests.map(pathOf), [`/v2/app/blobs/${img.layerDigest}`]);
});
