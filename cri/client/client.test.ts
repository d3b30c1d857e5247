// CriClient against a real grpc-js server on a temporary unix socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { CriClient, normalizeEndpoint } from './client.js';
import { startFakeCri } from './fake-server.js';
import { loadCri } from '../proto/load.js';
import { isSkiffError } from '../../common/errors.js';

void test('normalizeEndpoint accepts crictl endpoint forms and rejects non-unix schemes', () => {
  assert.equal(normalizeEndpoint('unix:///run/skiff/skiff.sock'), 'unix:///run/skiff/skiff.sock');
  assert.equal(normalizeEndpoint('/run/skiff/skiff.sock'), 'unix:///run/skiff/skiff.sock');
  assert.equal(normalizeEndpoint('unix:relative.sock'), 'unix:relative.sock');
  assert.equal(normalizeEndpoint('relative.sock'), 'unix:relative.sock');
  for (const bad of ['', 'tcp://127.0.0.1:1234', 'unix://relative.sock']) {
    assert.throws(() => normalizeEndpoint(bad), (err) => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT'), bad);
  }
});

void test('CriClient has a method for every rpc of both services', () => {
  const cri = loadCri();
  for (const service of [cri.RuntimeService.service, cri.ImageService.service]) {
    for (const [name, method] of Object.entries(service)) {
      const js = name[0].toLowerCase() + name.slice(1);
      assert.equal(typeof (CriClient.prototype as unknown as Record<string, unknown>)[js], 'function', `${name} → ${js}`);
      assert.equal(method.requestStream, false, `${name} is not client-streaming`);
    }
  }
});

void test('unary calls send the request and resolve with the decoded response', async (t) => {
  let seen: unknown;
  const server = await startFakeCri({
    runtime: {
      Version: (call, done) => {
        seen = call.request;
        done(null, { version: '0.1.0', runtime_name: 'fake', runtime_version: '1.2.3', runtime_api_version: 'v1' });
      },
    },
    image: {
      PullImage: (call, done) => done(null, { image_ref: `sha256:${'a'.repeat(64)} for ${call.request.image?.image}` }),
    },
  });
  const client = new CriClient({ runtimeEndpoint: server.endpoint });
  t.after(async () => {
    client.close();
    await server.close();
  });
  const v = await client.version({ version: 'v1' });
  assert.deepEqual(v, { version: '0.1.0', runtime_name: 'fake', runtime_version: '1.2.3', runtime_api_version: 'v1' });
  assert.deepEqual(seen, { version: 'v1' });
  const pulled = await client.pullImage({ image: { image: 'busybox' } });
  assert.equal(pulled.image_ref, `sha256:${'a'.repeat(64)} for busybox`);
});

void test('a failed call rejects with the grpc ServiceError untouched', async (t) => {
  const server = await startFakeCri({
    image: { PullImage: (_call, done) => done({ code: grpc.status.NOT_FOUND, details: 'manifest unknown' }) },
  });
  const client = new CriClient({ imageEndpoint: server.endpoint, runtimeEndpoint: '/nonexistent/skiff.sock' });
  t.after(async () => {
    client.close();
    await server.close();
  });
  await assert.rejects(client.pullImage({ image: { image: 'nope' } }), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.NOT_FOUND);
    assert.equal(err.details, 'manifest unknown');
    return true;
  });
  // The runtime endpoint is elsewhere and absent: the image client must not have used it.
  await assert.rejects(client.version(), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
});

void test('timeoutMs sets a deadline and a missing one means none', async (t) => {
  const deadlines: (Date | number)[] = [];
  const server = await startFakeCri({
    runtime: {
      Version: (call, done) => {
        deadlines.push(call.getDeadline());
        done(null, {});
      },
      // Never answers: only the deadline ends this call.
      Status: () => undefined,
    },
  });
  const client = new CriClient({ runtimeEndpoint: server.endpoint });
  t.after(async () => {
    client.close();
    await server.close();
  });
  await client.version({});
  await client.version({}, { timeoutMs: 60_000 });
  assert.equal(deadlines[0], Infinity);
  assert.ok(Number(deadlines[1]) > Date.now() + 50_000, `deadline ${String(deadlines[1])}`);
  await assert.rejects(client.status({}, { timeoutMs: 50 }), (err: grpc.ServiceError) => err.code === grpc.status.DEADLINE_EXCEEDED);
});

void test('an AbortSignal cancels a call', async (t) => {
  const server = await startFakeCri({ runtime: { Status: () => undefined } });
  const client = new CriClient({ runtimeEndpoint: server.endpoint });
  t.after(async () => {
    client.close();
    await server.close();
  });
  const controller = new AbortController();
  const pending = client.status({}, { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(pending, (err: grpc.ServiceError) => err.code === grpc.status.CANCELLED);
});

void test('server-streaming rpcs are async iterables, and leaving the loop cancels the stream', async (t) => {
  let cancelled = false;
  const server = await startFakeCri({
    image: {
      StreamImages: (call) => {
        call.on('cancelled', () => {
          cancelled = true;
        });
        call.write({ images: [{ id: 'sha256:1' }] });
        call.write({ images: [{ id: 'sha256:2' }] });
        if (call.request.filter?.image?.image === 'all') call.end();
      },
    },
  });
  const client = new CriClient({ runtimeEndpoint: server.endpoint });
  t.after(async () => {
    client.close();
    await server.close();
  });
  const ids: string[] = [];
  for await (const batch of client.streamImages({ filter: { image: { image: 'all' } } })) ids.push(...batch.images.map((i) => i.id));
  assert.deepEqual(ids, ['sha256:1', 'sha256:2']);

  for await (const batch of client.streamImages({})) {
    assert.equal(batch.images[0].id, 'sha256:1');
    break;
  }
  for (let i = 0; i < 50 && !cancelled; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cancelled, 'the server saw the stream cancelled');
});

void test('responses larger than grpc-js default 4 MiB are accepted (16 MiB limit)', async (t) => {
  const tags = Array.from({ length: 6 * 1024 }, (_, i) => `registry.example/${'x'.repeat(1000)}:${i}`);
  const server = await startFakeCri({ image: { ListImages: (_call, done) => done(null, { images: [{ id: 'big', repo_tags: tags }] }) } });
  const client = new CriClient({ runtimeEndpoint: server.endpoint });
  t.after(async () => {
    client.close();
    await server.close();
  });
  const r = await client.listImages();
  assert.equal(r.images[0].repo_tags.length, tags.length);
});
