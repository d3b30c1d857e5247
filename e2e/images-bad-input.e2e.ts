// e2e: bad input to PullImage gets a precise gRPC status and leaves nothing behind — no image
// record, no ingest, no snapshot preparation, no new snapshot — and a crash or a deadline in the
// middle of a pull does the same. Real registry, real daemon, real overlay trees.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { startRegistry, type TestRegistry } from './harness/registry.js';
import { buildFixtures, type Fixtures } from './harness/fixtures.js';
import { buildLayer, busyboxLayer } from './harness/layer.js';
import { pushImage, type PushedImage } from './harness/push.js';
import { TestDaemon } from './harness/daemon.js';
import { listStores, type StoreListing } from './harness/on-disk.js';
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A proxy in front of the real registry that passes everything through, except that large blob
 * downloads stop after half their bytes and hang: a stalled network, as skiffd sees it.
 */
async function stallingProxy(target: TestRegistry): Promise<{ host: string; stalled: number; close(): Promise<void> }> {
  const state = { stalled: 0 };
  const hung = new Set<import('node:http').ServerResponse>();
  const server: Server = createServer((req, res) => {
    const up = request(`${target.url}${req.url ?? '/'}`, { method: req.method, headers: { ...req.headers, host: target.host } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const size = Number(upRes.headers['content-length'] ?? 0);
      if (!/\/blobs\/sha256:/.test(req.url ?? '') || req.method !== 'GET' || size < 1 << 20) {
        upRes.pipe(res);
        return;
      }
      state.stalled++;
      hung.add(res);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= size / 2) return upRes.destroy();
        sent += chunk.length;
        res.write(chunk);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    get stalled() {
      return state.stalled;
    },
    close: async () => {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function grpcError(code: GrpcStatus, re: RegExp) {
  return (err: unknown): boolean => {
    const e = err as ServiceError;
    assert.equal(GrpcStatus[e.code], GrpcStatus[code], `status of "${e.details}"`);
    assert.match(e.details, re);
    return true;
  };
}

/** Waits until no ingest or preparation is left (cleanup of a cancelled pull runs after the reply). */
async function settled(root: string, timeoutMs = 10_000): Promise<StoreListing> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await listStores(root);
    if ((s.ingests.length === 0 && s.temps.length === 0) || Date.now() > deadline) return s;
    await sleep(50);
  }
}

function assertUnchanged(before: StoreListing, now: StoreListing, what: string): void {
  assert.deepEqual(now.images, before.images, `${what}: no image record`);
  assert.deepEqual(now.ingests, [], `${what}: no ingest left`);
  assert.deepEqual(now.temps, [], `${what}: no temp file or preparation left`);
  assert.deepEqual(now.snapshots, before.snapshots, `${what}: no snapshot left`);
  assert.deepEqual(now.blobs, before.blobs, `${what}: no blob left`);
}

describe('bad input and interrupted pulls leave nothing behind', () => {
  let reg: TestRegistry;
  let fx: Fixtures;
  let big: PushedImage;
  let d: TestDaemon;
  let proxy: Awaited<ReturnType<typeof stallingProxy>>;

  before(async () => {
    reg = await startRegistry();
    fx = await buildFixtures(reg);
    // Big enough that a pull takes far longer than the deadlines below: 3 x 24 MiB random.
    const layers = [await busyboxLayer('gzip')];
    for (let i = 0; i < 3; i++) {
      layers.push(await buildLayer([{ path: `/big${i}`, type: 'file', content: randomBytes(24 << 20) }], 'gzip', { level: 1 }));
    }
    big = await pushImage(reg, 'big', '1', { layers, format: 'oci' });
    proxy = await stallingProxy(reg);
    d = await TestDaemon.start({
      privateResolver: true,
      toml: `[images]\npull_progress_timeout = "2s"\n[registry]\ninsecure = ["${reg.host}", "${proxy.host}"]\nretries = 1\n`,
    });
    // A baseline image so that "nothing changed" is checked against a non-empty store.
    await d.client.pullImage({ image: { image: fx.busybox.ref } });
  });

  after(async () => {
    await d?.cleanup();
    await proxy?.close();
    await reg?.stop();
  });

  const cases: [string, () => string, GrpcStatus, RegExp][] = [
    ['malformed reference (uppercase repository)', () => `${reg.host}/UPPER/case:1`, GrpcStatus.INVALID_ARGUMENT, /UPPER\/case/],
    ['malformed reference (bad tag)', () => 'busybox:-bad', GrpcStatus.INVALID_ARGUMENT, /busybox:-bad/],
    ['malformed reference (short digest)', () => 'busybox@sha256:abc', GrpcStatus.INVALID_ARGUMENT, /sha256:abc/],
    ['empty reference', () => '', GrpcStatus.INVALID_ARGUMENT, /image/],
    ['unknown host', () => 'skiff-no-such-host.invalid/x:1', GrpcStatus.UNAVAILABLE, /skiff-no-such-host\.invalid/],
    ['missing tag', () => `${reg.host}/busybox:no-such-tag`, GrpcStatus.NOT_FOUND, /manifest unknown/],
    ['missing repository', () => `${reg.host}/no/such/repo:1`, GrpcStatus.NOT_FOUND, /no\/such\/repo/],
    ['blob whose bytes do not match its digest', () => fx.badblob.ref, GrpcStatus.DATA_LOSS, /sha256:[a-f0-9]{64}/],
    ['layer with ../ path traversal', () => fx.evil.ref, GrpcStatus.INVALID_ARGUMENT, /evil-escape/],
    ['layer writing through a symlink', () => fx.evilSymlink.ref, GrpcStatus.INVALID_ARGUMENT, /link/],
  ];
  for (const [what, ref, code, re] of cases) {
    test(`PullImage of a ${what} fails with ${GrpcStatus[code]} and leaves nothing`, async () => {
      const before = await listStores(d.root);
      await assert.rejects(d.client.pullImage({ image: { image: ref() } }), grpcError(code, re));
      assertUnchanged(before, await settled(d.root), what);
    });
  }

  test('nothing escaped the layer roots onto the host', async () => {
    await assert.rejects(access(fx.evilSymlink.hostPath), /ENOENT/);
    await assert.rejects(access('/evil-escape'), /ENOENT/);
  });

  test('the CLI reports the gRPC status and exits non-zero', async () => {
    const r = await d.cli(['pull', 'Not/A:Valid:Ref']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /code = InvalidArgument desc = .*Not\/A:Valid:Ref/);
  });

  test('a deadline shorter than the pull returns DEADLINE_EXCEEDED and leaves no partial state', async () => {
    const before = await listStores(d.root);
    await assert.rejects(d.client.pullImage({ image: { image: big.ref } }, { timeoutMs: 300 }), grpcError(GrpcStatus.DEADLINE_EXCEEDED, /.*/));
    assertUnchanged(before, await settled(d.root), 'deadline');
    // And the next pull without a deadline works.
    const res = await d.client.pullImage({ image: { image: big.ref } });
    assert.equal(res.image_ref, big.configDigest);
    await d.client.removeImage({ image: { image: big.ref } });
    assertUnchanged(before, await settled(d.root), 'after removal');
  });

  test('skiffd killed mid-pull: no half-listed image, and the next pull completes cleanly', async () => {
    const before = await listStores(d.root);
    const pull = d.client.pullImage({ image: { image: big.ref } }).catch((e: unknown) => e);
    // Wait until bytes are landing, then crash.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await listStores(d.root)).ingests.length === 0) await sleep(10);
    await d.kill();
    const err = (await pull) as ServiceError;
    assert.equal(err.code, GrpcStatus.UNAVAILABLE);
    const crashed = await listStores(d.root);
    assert.deepEqual(crashed.images, before.images, 'no image record for the interrupted pull');
    await d.launch();
    const afterRestart = await listStores(d.root);
    assert.deepEqual(afterRestart.temps, [], 'startup removed unfinished preparations');
    const res = await d.client.pullImage({ image: { image: big.ref } });
    assert.equal(res.image_ref, big.configDigest);
    const st = await d.client.imageStatus({ image: { image: big.ref } });
    assert.equal(st.image?.id, big.configDigest);
    await d.client.removeImage({ image: { image: big.ref } });
    assertUnchanged(before, await settled(d.root), 'after the crash and removal');
  });

  test('a stalled download is cut by the progress timeout, and the next pull resumes its bytes', async () => {
    const before = await listStores(d.root);
    const started = Date.now();
    await assert.rejects(
      d.client.pullImage({ image: { image: `${proxy.host}/big:1` } }),
      grpcError(GrpcStatus.UNAVAILABLE, /no progress for 2s/),
    );
    assert.ok(Date.now() - started < 30_000, 'cut within the timeout, not hung');
    assert.ok(proxy.stalled > 0, 'the proxy did stall a download');
    const stalled = await settled(d.root, 500);
    assert.deepEqual(stalled.images, before.images, 'no image record');
    assert.deepEqual(stalled.temps, [], 'no preparation left');
    assert.ok(stalled.ingests.length > 0, 'the bytes received are kept for a resume');
    // The same blobs from the registry itself: the pull picks up where the stalled one stopped.
    const res = await d.client.pullImage({ image: { image: big.ref } });
    assert.equal(res.image_ref, big.configDigest);
    assert.match(await d.log(), /resuming layer download/);
    await d.client.removeImage({ image: { image: big.ref } });
    assertUnchanged(before, await settled(d.root), 'after the resumed pull and removal');
  });
});
