// RegistryClient against real HTTP servers on 127.0.0.1: manifests, blobs, ranges, status
// mapping, retries, timeouts and cancellation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { LookupFunction } from 'node:net';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import { registryHandler, serve, specError, json, type FakeImage, type TestServer } from './test-server.js';
import { rejectsWith } from '../../common/assert-error.js';
import { MediaType } from '../oci.js';
import type { Reference } from '../reference.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function fakeImage(repo = 'app'): FakeImage & { manifestDigest: string; layer: Buffer; layerDigest: string } {
  const layer = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(100));
  const layerDigest = sha256(layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, digest: layerDigest, size: layer.length },
      layers: [{ mediaType: MediaType.OCI_LAYER_GZIP, digest: layerDigest, size: layer.length }],
    }),
  );
  const digest = sha256(manifest);
  const m = { bytes: manifest, mediaType: MediaType.OCI_MANIFEST, digest };
  return {
    repo,
    manifests: new Map([
      ['v1', m],
      [digest, m],
    ]),
    blobs: new Map([[layerDigest, layer]]),
    manifestDigest: digest,
    layer,
    layerDigest,
  };
}

function newClient(opts: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({ hosts: { mirrors: {}, insecure: [] }, retryBaseMs: 1, ...opts });
}

function refOf(server: TestServer | string, path = 'app', tag = 'v1'): Reference {
  return { domain: typeof server === 'string' ? server : server.host, path, tag };
}

const live = (): AbortSignal => new AbortController().signal;


async function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

void test('getManifest by tag returns the bytes, media type and computed digest', async (t) => {
  const img = fakeImage();
  const s = await serve(registryHandler(img));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const got = await c.getManifest(refOf(s), undefined, live());
  assert.equal(got.digest, img.manifestDigest);
  assert.equal(got.mediaType, MediaType.OCI_MANIFEST);
  assert.deepEqual(got.bytes, img.manifests.get('v1')?.bytes);
  assert.deepEqual(got.endpoint, { base: s.base, domain: s.host, mirror: false });
  assert.equal(s.requests[0]?.url, '/v2/app/manifests/v1');
  assert.match(s.requests[0]?.headers.accept ?? '', /application\/vnd\.oci\.image\.index\.v1\+json/);
  assert.equal(s.requests[0]?.headers['user-agent'], 'skiff');
});

void test('getManifest by digest verifies the bytes against the digest', async (t) => {
  const img = fakeImage();
  const s = await serve(registryHandler(img));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const got = await c.getManifest(refOf(s), undefined, live(), img.manifestDigest);
  assert.equal(got.digest, img.manifestDigest);
  assert.equal(s.requests[0]?.url, `/v2/app/manifests/${img.manifestDigest}`);
});

void test('a manifest fetched by digest whose bytes hash differently is SKIFF_DIGEST_MISMATCH', async (t) => {
  const img = fakeImage();
  const wrong = sha256(Buffer.from('something else'));
  img.manifests.set(wrong, img.manifests.get('v1')!);
  const s = await serve(registryHandler(img));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, live(), wrong), 'SKIFF_DIGEST_MISMATCH', new RegExp(`has digest ${img.manifestDigest}`));
});

void test('a Docker-Content-Digest that does not match the bytes is SKIFF_DIGEST_MISMATCH', async (t) => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': MediaType.OCI_MANIFEST, 'docker-content-digest': sha256(Buffer.from('x')) });
    res.end('{"schemaVersion":2}');
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_DIGEST_MISMATCH', /Docker-Content-Digest/);
});

void test('manifest unknown is SKIFF_IMAGE_NOT_FOUND naming the reference', async (t) => {
  const s = await serve(registryHandler(fakeImage()));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s, 'app', 'nope'), undefined, live()), 'SKIFF_IMAGE_NOT_FOUND', `pull ${s.host}/app:nope: manifest unknown (404)`);
  await rejectsWith(
    c.getManifest(refOf(s, 'other', 'v1'), undefined, live()),
    'SKIFF_IMAGE_NOT_FOUND',
    `pull ${s.host}/other:v1: name unknown: repository name not known to registry (404)`,
  );
});

void test('a bare 404 without a body is SKIFF_IMAGE_NOT_FOUND', async (t) => {
  const s = await serve((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_IMAGE_NOT_FOUND', `pull ${s.host}/app:v1: manifest unknown (404)`);
});

void test('a manifest larger than 4 MiB is SKIFF_MANIFEST_INVALID, announced or streamed', async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
  const s = await serve((req, res) => {
    if (req.url.endsWith('/announced')) res.writeHead(200, { 'content-type': MediaType.OCI_MANIFEST, 'content-length': big.length });
    else res.writeHead(200, { 'content-type': MediaType.OCI_MANIFEST });
    res.end(big);
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s, 'app', 'announced'), undefined, live()), 'SKIFF_MANIFEST_INVALID', /larger than 4194304 bytes/);
  await rejectsWith(c.getManifest(refOf(s, 'app', 'chunked'), undefined, live()), 'SKIFF_MANIFEST_INVALID', /larger than/);
});

void test('the media type comes from the document when Content-Type is generic', async (t) => {
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST_LIST, manifests: [] }));
  const bare = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  const s = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(req.url.endsWith('/typed') ? index : bare);
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  assert.equal((await c.getManifest(refOf(s, 'app', 'typed'), undefined, live())).mediaType, MediaType.DOCKER_MANIFEST_LIST);
  assert.equal((await c.getManifest(refOf(s, 'app', 'bare'), undefined, live())).mediaType, MediaType.OCI_INDEX);
});

void test('getBlob streams the whole blob with its size', async (t) => {
  const img = fakeImage();
  const s = await serve(registryHandler(img));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const got = await c.getBlob(refOf(s), img.layerDigest, undefined, live());
  assert.equal(got.offset, 0);
  assert.equal(got.size, img.layer.length);
  assert.deepEqual(await drain(got.stream), img.layer);
});

void test('a missing blob is SKIFF_REGISTRY_ERROR naming the digest', async (t) => {
  const s = await serve(registryHandler(fakeImage()));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const missing = sha256(Buffer.from('missing'));
  await rejectsWith(c.getBlob(refOf(s), missing, undefined, live()), 'SKIFF_REGISTRY_ERROR', new RegExp(`blob ${missing} not found: blob unknown: blob unknown to registry \\(404\\)`));
});

void test('getBlob resumes with a Range request when the server honours it', async (t) => {
  const img = fakeImage();
  const s = await serve(registryHandler(img));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const got = await c.getBlob(refOf(s), img.layerDigest, undefined, live(), { offset: 1000 });
  assert.equal(s.requests[0]?.headers.range, 'bytes=1000-');
  assert.equal(got.offset, 1000);
  assert.equal(got.size, img.layer.length);
  assert.deepEqual(await drain(got.stream), img.layer.subarray(1000));
});

void test('getBlob reports offset 0 when the server ignores Range', async (t) => {
  const img = fakeImage();
  const handler = registryHandler(img);
  const s = await serve((req, res) => handler({ ...req, headers: { ...req.headers, range: undefined } }, res));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const got = await c.getBlob(refOf(s), img.layerDigest, undefined, live(), { offset: 1000 });
  assert.equal(got.offset, 0);
  assert.equal(got.size, img.layer.length);
  assert.deepEqual(await drain(got.stream), img.layer);
});

void test('getBlob starts over when the offset is past the end (416)', async (t) => {
  const img = fakeImage();
  const s = await serve(registryHandler(img));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const got = await c.getBlob(refOf(s), img.layerDigest, undefined, live(), { offset: img.layer.length });
  assert.equal(got.offset, 0);
  assert.deepEqual(await drain(got.stream), img.layer);
  assert.equal(s.requests.length, 2);
});

void test('403 is SKIFF_REGISTRY_DENIED', async (t) => {
  const s = await serve((_req, res) => specError(res, 403, 'DENIED', 'requested access to the resource is denied'));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_REGISTRY_DENIED', `pull ${s.host}/app:v1: denied: requested access to the resource is denied (403)`);
});

void test('503 twice then success: three requests', async (t) => {
  const img = fakeImage();
  const handler = registryHandler(img);
  const s = await serve((req, res) => {
    if (s.requests.length <= 2) return specError(res, 503, 'UNAVAILABLE', 'try later');
    return handler(req, res);
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const got = await c.getManifest(refOf(s), undefined, live());
  assert.equal(got.digest, img.manifestDigest);
  assert.equal(s.requests.length, 3);
});

void test('Retry-After on 429 is honoured', async (t) => {
  const img = fakeImage();
  const handler = registryHandler(img);
  const s = await serve((req, res) => {
    if (s.requests.length === 1) return json(res, 429, { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }, { 'retry-after': '1' });
    return handler(req, res);
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const started = Date.now();
  await c.getManifest(refOf(s), undefined, live());
  assert.ok(Date.now() - started >= 900, `waited ${Date.now() - started} ms`);
  assert.equal(s.requests.length, 2);
});

void test('503 on every attempt is SKIFF_REGISTRY_UNAVAILABLE after the retries, naming host and cause', async (t) => {
  const s = await serve((_req, res) => specError(res, 503, 'UNAVAILABLE', 'maintenance'));
  const c = newClient({ retries: 3 });
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(
    c.getManifest(refOf(s), undefined, live()),
    'SKIFF_REGISTRY_UNAVAILABLE',
    `pull ${s.host}/app:v1: registry ${s.host} unavailable after 4 attempts: 503 Service Unavailable: unavailable: maintenance`,
  );
  assert.equal(s.requests.length, 4);
});

void test('connection refused is retried, then SKIFF_REGISTRY_UNAVAILABLE', async (t) => {
  const s = await serve(() => undefined);
  await s.close();
  const c = newClient({ retries: 2 });
  t.after(() => c.close());
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_REGISTRY_UNAVAILABLE', new RegExp(`registry ${s.host} unavailable after 3 attempts: .*ECONNREFUSED`));
});

void test('a connection reset (socket hang up) is retried', async (t) => {
  const img = fakeImage();
  const handler = registryHandler(img);
  const s = await serve((req, res) => {
    if (s.requests.length === 1) return void res.socket?.destroy();
    return handler(req, res);
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  assert.equal((await c.getManifest(refOf(s), undefined, live())).digest, img.manifestDigest);
  assert.equal(s.requests.length, 2);
});

void test('an unresolvable registry host fails fast', async (t) => {
  let lookups = 0;
  const lookup = ((hostname: string, _opts: unknown, cb: (err: NodeJS.ErrnoException | null) => void) => {
    lookups++;
    cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname }));
  }) as unknown as LookupFunction;
  const c = newClient({ lookup });
  t.after(() => c.close());
  await rejectsWith(
    c.getManifest(refOf('no-such-registry.test:5000'), undefined, live()),
    'SKIFF_REGISTRY_UNAVAILABLE',
    'pull no-such-registry.test:5000/app:v1: cannot resolve registry host "no-such-registry.test"',
  );
  assert.equal(lookups, 1);
});

void test('no response headers within connectTimeoutMs is a timeout', async (t) => {
  const s = await serve(() => undefined); // never answers
  const c = newClient({ connectTimeoutMs: 100, retries: 1 });
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, live()), 'SKIFF_REGISTRY_UNAVAILABLE', /unavailable after 2 attempts: no response from .* within 100 ms/);
  assert.equal(s.requests.length, 2);
});

void test('abort while waiting for headers rejects with SKIFF_CANCELLED at once', async (t) => {
  const s = await serve(() => undefined);
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const ac = new AbortController();
  const p = c.getManifest(refOf(s), undefined, ac.signal);
  setTimeout(() => ac.abort(), 50);
  const started = Date.now();
  await rejectsWith(p, 'SKIFF_CANCELLED', `pull ${s.host}/app:v1: cancelled`);
  assert.ok(Date.now() - started < 1000);
  assert.equal(s.requests.length, 1, 'no retry after cancellation');
});

void test('abort mid-body fails the blob stream with SKIFF_CANCELLED and closes the connection', async (t) => {
  let serverSocketClosed!: Promise<void>;
  const s = await serve((_req, res) => {
    serverSocketClosed = new Promise((resolve) => res.socket?.once('close', () => resolve()));
    res.writeHead(200, { 'content-length': 1_000_000 });
    res.write(Buffer.alloc(1000));
  });
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  const ac = new AbortController();
  const got = await c.getBlob(refOf(s), sha256(Buffer.from('x')), undefined, ac.signal);
  assert.equal(got.size, 1_000_000);
  const first = await new Promise<Buffer>((resolve) => got.stream.once('data', resolve));
  assert.ok(first.length > 0);
  ac.abort();
  await rejectsWith(drain(got.stream), 'SKIFF_CANCELLED');
  await serverSocketClosed;
});

void test('abort during the backoff stops retrying', async (t) => {
  const s = await serve((_req, res) => specError(res, 503, 'UNAVAILABLE', 'down'));
  const c = newClient({ retryBaseMs: 10_000 });
  t.after(async () => { c.close(); await s.close(); });
  const ac = new AbortController();
  const p = c.getManifest(refOf(s), undefined, ac.signal);
  setTimeout(() => ac.abort(), 100);
  await rejectsWith(p, 'SKIFF_CANCELLED');
  assert.equal(s.requests.length, 1);
});

void test('an already aborted signal sends nothing', async (t) => {
  const s = await serve(registryHandler(fakeImage()));
  const c = newClient();
  t.after(async () => { c.close(); await s.close(); });
  await rejectsWith(c.getManifest(refOf(s), undefined, AbortSignal.abort()), 'SKIFF_CANCELLED');
  assert.equal(s.requests.length, 0);
});

void test('invalid arguments are refused before any request', async () => {
  const c = newClient();
  await rejectsWith(c.getBlob(refOf('127.0.0.1:1'), 'sha256:abc', undefined, live()), 'SKIFF_INVALID_ARGUMENT', /invalid blob digest/);
  await rejectsWith(c.getManifest(refOf('127.0.0.1:1'), undefined, live(), 'bad/ref'), 'SKIFF_IMAGE_REF_INVALID');
  c.close();
});
