// Pulls through ImageService against a fake registry on 127.0.0.1: what a pull leaves on disk when
// it succeeds, what it leaves when it fails (nothing, except a resumable ingest), coalescing of
// concurrent downloads, resuming with a Range request, and manifests skiff refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { rejectsWith } from '../common/assert-error.js';
import { digestHex, sha256Digest } from './digest.js';
import { MediaType } from './oci.js';
import { computeChainIDs } from './manifest.js';
import { pathOf, registryHandler, serve, type FakeImage, type RecordedRequest, type TestServer } from './registry/test-server.js';
import type { PullEnd } from './pull.js';
import { ImageService } from './service.js';
import { makeTar } from './unpack/tar-fixture.test-helper.js';

interface Layer {
  tar: Buffer;
  blob: Buffer;
  digest: string;
  diffID: string;
}

/** A gzip layer holding `files` (path → content) under dir/. */
async function layer(dir: string, files: Record<string, string | Buffer>): Promise<Layer> {
  const tar = await makeTar([
    { header: { name: dir + '/', type: 'directory', mode: 0o755 } },
    ...Object.entries(files).map(([name, body]) => ({ header: { name: `${dir}/${name}`, mode: 0o644 }, body })),
  ]);
  const blob = gzipSync(tar);
  return { tar, blob, digest: sha256Digest(blob), diffID: sha256Digest(tar) };
}

interface Built {
  configDigest: string;
  manifestDigest: string;
  chainIDs: string[];
}

/** Adds an image under `tag` to `fake`: config, manifest (by tag and digest) and its layers' blobs. */
function addImage(
  fake: FakeImage,
  tag: string,
  layers: Layer[],
  opts: { diffIDs?: string[]; layerMediaType?: string; user?: string; architecture?: string } = {},
): Built {
  const diffIDs = opts.diffIDs ?? layers.map((l) => l.diffID);
  const config = Buffer.from(
    JSON.stringify({ architecture: opts.architecture ?? 'amd64', os: 'linux', config: { User: opts.user ?? tag }, rootfs: { type: 'layers', diff_ids: diffIDs } }),
  );
  const configDigest = sha256Digest(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: opts.layerMediaType ?? MediaType.OCI_LAYER_GZIP, digest: l.digest, size: l.blob.length })),
    }),
  );
  const manifestDigest = sha256Digest(manifest);
  const m = { bytes: manifest, mediaType: MediaType.OCI_MANIFEST, digest: manifestDigest };
  fake.manifests.set(tag, m);
  fake.manifests.set(manifestDigest, m);
  fake.blobs.set(configDigest, config);
  for (const l of layers) fake.blobs.set(l.digest, l.blob);
  return { configDigest, manifestDigest, chainIDs: computeChainIDs(diffIDs) };
}

const emptyFake = (): FakeImage => ({ repo: 'app', manifests: new Map(), blobs: new Map() });

interface World {
  svc: ImageService;
  server: TestServer;
  root: string;
  ref(tag: string): string;
}

async function withWorld(
  handler: (fake: FakeImage) => (req: RecordedRequest, res: http.ServerResponse) => void | Promise<void>,
  fake: FakeImage,
  fn: (w: World) => Promise<void>,
  opts: { progressTimeoutMs?: number; registryRetries?: number; onPullEnd?: (end: PullEnd) => void } = {},
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-pull-'));
  const server = await serve(handler(fake));
  try {
    const svc = await ImageService.open({
      root,
      hosts: { mirrors: {}, insecure: [server.host] },
      progressTimeoutMs: opts.progressTimeoutMs ?? 0,
      maxConcurrentDownloads: 3,
      registryRetries: opts.registryRetries ?? 0,
      ...(opts.onPullEnd ? { onPullEnd: opts.onPullEnd } : {}),
    });
    await fn({ svc, server, root, ref: (tag) => `${server.host}/app:${tag}` });
  } finally {
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
}

const live = (): AbortSignal => new AbortController().signal;

function blobRequests(server: TestServer, digest: string): RecordedRequest[] {
  return server.requests.filter((r) => pathOf(r) === `/v2/app/blobs/${digest}`);
}

/** Everything a pull may leave on disk, by kind. */
async function leftovers(w: World): Promise<{ records: string[]; blobs: string[]; ingests: string[]; snapshots: string[]; preps: string[] }> {
  await w.svc.images.load();
  return {
    records: w.svc.images.list().map((r) => r.id),
    blobs: await w.svc.content.list(),
    ingests: await w.svc.content.listIngests(),
    snapshots: await w.svc.snapshots.list(),
    preps: (await readdir(w.svc.snapshots.root)).filter((n) => n.startsWith('.prep-')),
  };
}

const NOTHING = { records: [], blobs: [], ingests: [], snapshots: [], preps: [] };

/** Cleanup after a cancelled pull finishes after the caller is answered: wait for it, briefly. */
async function eventually<T>(probe: () => Promise<T>, want: T, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const got = await probe();
    try {
      assert.deepEqual(got, want);
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
    }
    await sleep(20);
  }
}

/**
 * A handler that serves `fake` but sends only the first half of `digest` (with the full
 * Content-Length) and then holds the connection open while `stall()` says so.
 */
function stallingHandler(digest: string, stall: () => boolean, onHalf: () => void) {
  return (fake: FakeImage) =>
    registryHandler(fake, (req, res) => {
      if (pathOf(req) !== `/v2/app/blobs/${digest}` || req.headers.range || !stall()) return false;
      const b = fake.blobs.get(digest)!;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length });
      res.write(b.subarray(0, b.length >> 1), () => onHalf());
      return true;
    });
}

test('a pull writes blobs, diffID-checked snapshots and a record with its names', async () => {
  const fake = emptyFake();
  const base = await layer('base', { 'hello.txt': 'hello from the base layer\n' });
  const top = await layer('top', { 'data.bin': randomBytes(64 * 1024) });
  const img = addImage(fake, 'v1', [base, top], { user: '1000:1000' });
  await withWorld(registryHandler, fake, async (w) => {
    const { image: rec } = await w.svc.pull(w.ref('v1'), undefined, live());
    assert.equal(rec.id, img.configDigest);
    assert.deepEqual(rec.repoTags, [`${w.server.host}/app:v1`]);
    assert.deepEqual(rec.repoDigests, [`${w.server.host}/app@${img.manifestDigest}`]);
    assert.equal(rec.manifestDigest, img.manifestDigest);
    assert.equal(rec.config.User, '1000:1000');
    assert.deepEqual(rec.layers.map((l) => [l.digest, l.diffID, l.chainID]), [
      [base.digest, base.diffID, img.chainIDs[0]],
      [top.digest, top.diffID, img.chainIDs[1]],
    ]);
    assert.equal(rec.size, fake.blobs.get(img.configDigest)!.length + base.blob.length + top.blob.length);

    const left = await leftovers(w);
    assert.deepEqual(left.records, [rec.id]);
    assert.deepEqual(left.blobs.sort(), [img.configDigest, img.manifestDigest, base.digest, top.digest].sort());
    assert.deepEqual(left.snapshots.sort(), [...img.chainIDs].sort());
    assert.deepEqual([left.ingests, left.preps], [[], []]);
    assert.deepEqual(await readFile(w.svc.content.blobPath(top.digest)), top.blob);

    const baseInfo = await w.svc.snapshots.info(img.chainIDs[0]);
    const topInfo = await w.svc.snapshots.info(img.chainIDs[1]);
    assert.equal(baseInfo?.diffID, base.diffID);
    assert.equal(baseInfo?.parent, undefined);
    assert.equal(topInfo?.diffID, top.diffID);
    assert.equal(topInfo?.parent, img.chainIDs[0]);
    assert.equal(await readFile(join(w.svc.snapshots.fsPath(img.chainIDs[0]), 'base/hello.txt'), 'utf8'), 'hello from the base layer\n');
    assert.equal((await stat(join(w.svc.snapshots.fsPath(img.chainIDs[1]), 'top/data.bin'))).size, 64 * 1024);

    assert.equal(w.svc.resolve(w.ref('v1'))?.id, rec.id);
    assert.equal(w.svc.resolve(`${w.server.host}/app@${img.manifestDigest}`)?.id, rec.id);
  });
});

test('a second pull of a pulled image fetches no blob', async () => {
  const fake = emptyFake();
  const img = addImage(fake, 'v1', [await layer('a', { f: 'a' })]);
  await withWorld(registryHandler, fake, async (w) => {
    await w.svc.pull(w.ref('v1'), undefined, live());
    const before = w.server.requests.length;
    const { image, bytesFetched } = await w.svc.pull(w.ref('v1'), undefined, live());
    assert.equal(image.id, img.configDigest);
    assert.equal(bytesFetched, 0);
    assert.deepEqual(w.server.requests.slice(before).map((r) => pathOf(r)), ['/v2/app/manifests/v1']);
  });
});

test('two concurrent pulls of one image download each layer once', async () => {
  const fake = emptyFake();
  const layers = [await layer('a', { f: randomBytes(32 * 1024) }), await layer('b', { g: randomBytes(32 * 1024) })];
  const img = addImage(fake, 'v1', layers);
  await withWorld(registryHandler, fake, async (w) => {
    const [{ image: x }, { image: y }] = await Promise.all([w.svc.pull(w.ref('v1'), undefined, live()), w.svc.pull(w.ref('v1'), undefined, live())]);
    assert.equal(x.id, img.configDigest);
    assert.equal(y.id, img.configDigest);
    for (const l of layers) assert.equal(blobRequests(w.server, l.digest).length, 1, `requests for ${l.digest}`);
    assert.equal(blobRequests(w.server, img.configDigest).length, 1);
  });
});

test('the end of each pull is told once, with the bytes fetched, however many callers shared it', async () => {
  const fake = emptyFake();
  const layers = [await layer('a', { f: randomBytes(16 * 1024) })];
  addImage(fake, 'v1', layers);
  const ends: PullEnd[] = [];
  await withWorld(
    registryHandler,
    fake,
    async (w) => {
      await Promise.all([w.svc.pull(w.ref('v1'), undefined, live()), w.svc.pull(w.ref('v1'), undefined, live())]);
      assert.equal(ends.length, 1);
      assert.equal(ends[0].ok, true);
      assert.equal(ends[0].bytes, layers[0].blob.length);
      assert.ok(ends[0].seconds >= 0);
      await assert.rejects(w.svc.pull(w.ref('missing'), undefined, live()));
      assert.deepEqual(
        ends.slice(1).map((e) => [e.ok, e.bytes]),
        [[false, 0]],
      );
    },
    { onPullEnd: (e) => ends.push(e) },
  );
});

test('two images sharing a layer, pulled together, download it once', async () => {
  const fake = emptyFake();
  const shared = await layer('shared', { s: randomBytes(64 * 1024) });
  const one = addImage(fake, 'one', [shared, await layer('one', { f: '1' })]);
  const two = addImage(fake, 'two', [shared, await layer('two', { f: '2' })]);
  assert.equal(one.chainIDs[0], two.chainIDs[0]);
  await withWorld(registryHandler, fake, async (w) => {
    const [{ image: a }, { image: b }] = await Promise.all([w.svc.pull(w.ref('one'), undefined, live()), w.svc.pull(w.ref('two'), undefined, live())]);
    assert.deepEqual([a.id, b.id], [one.configDigest, two.configDigest]);
    assert.equal(blobRequests(w.server, shared.digest).length, 1);
    assert.deepEqual((await w.svc.snapshots.list()).sort(), [one.chainIDs[0], one.chainIDs[1], two.chainIDs[1]].sort());
  });
});

test('a layer whose content does not match its diff_id fails with DIGEST_MISMATCH and leaves nothing', async () => {
  const fake = emptyFake();
  const real = await layer('a', { f: 'real' });
  addImage(fake, 'v1', [real], { diffIDs: [sha256Digest('something else')] });
  await withWorld(registryHandler, fake, async (w) => {
    await rejectsWith(w.svc.pull(w.ref('v1'), undefined, live()), 'SKIFF_DIGEST_MISMATCH', /uncompressed content has digest/);
    assert.deepEqual(await leftovers(w), NOTHING);
    assert.equal(w.svc.resolve(w.ref('v1')), undefined);
  });
});

test('a diff_id mismatch while another layer still downloads leaves nothing, that layer included', async () => {
  const fake = emptyFake();
  const bad = await layer('bad', { f: 'bad' });
  const slow = await layer('slow', { f: randomBytes(128 * 1024) });
  addImage(fake, 'v1', [bad, slow], { diffIDs: [sha256Digest('not it'), slow.diffID] });
  let slowEnded!: () => void;
  const slowDone = new Promise<void>((resolve) => (slowEnded = resolve));
  // The slow layer's blob arrives in two parts 300 ms apart: the bad layer fails in between.
  const handler = (f: FakeImage) =>
    registryHandler(f, (req, res) => {
      if (pathOf(req) !== `/v2/app/blobs/${slow.digest}`) return false;
      res.writeHead(200, { 'content-length': slow.blob.length });
      res.write(slow.blob.subarray(0, 1000));
      setTimeout(() => {
        if (!res.destroyed) res.end(slow.blob.subarray(1000));
        slowEnded();
      }, 300);
      return true;
    });
  await withWorld(handler, fake, async (w) => {
    await rejectsWith(w.svc.pull(w.ref('v1'), undefined, live()), 'SKIFF_DIGEST_MISMATCH');
    assert.equal(blobRequests(w.server, slow.digest).length, 1, 'the slow layer had started');
    await slowDone;
    await eventually(() => leftovers(w), NOTHING);
    await sleep(100);
    assert.deepEqual(await leftovers(w), NOTHING, 'and the slow layer does not turn up later');
  });
});

test('a caller abort mid-download fails with CANCELLED and leaves nothing', async () => {
  const fake = emptyFake();
  const big = await layer('big', { f: randomBytes(256 * 1024) });
  addImage(fake, 'v1', [big]);
  let half!: () => void;
  const halfSent = new Promise<void>((resolve) => (half = resolve));
  await withWorld(stallingHandler(big.digest, () => true, () => half()), fake, async (w) => {
    const ac = new AbortController();
    const pulling = w.svc.pull(w.ref('v1'), undefined, ac.signal);
    await halfSent;
    await sleep(50);
    ac.abort();
    await rejectsWith(pulling, 'SKIFF_CANCELLED');
    await eventually(() => leftovers(w), NOTHING);
  });
});

test('a stalled download fails with PULL_STALLED, keeps its ingest, and the next pull resumes it with a Range request', async () => {
  const fake = emptyFake();
  const big = await layer('big', { f: randomBytes(256 * 1024) });
  const img = addImage(fake, 'v1', [big]);
  let stalling = true;
  await withWorld(
    stallingHandler(big.digest, () => stalling, () => undefined),
    fake,
    async (w) => {
      const started = Date.now();
      await rejectsWith(w.svc.pull(w.ref('v1'), undefined, live()), 'SKIFF_PULL_STALLED', /no progress/);
      assert.ok(Date.now() - started < 5000, 'cut by the progress timeout, not a socket timeout');
      // The layer's own cleanup may still be closing the ingest when the caller is answered.
      await eventually(async () => (await leftovers(w)).preps, []);
      await sleep(50);
      const left = await leftovers(w);
      assert.deepEqual(left.ingests, [big.digest], 'the ingest is kept for a resume');
      assert.deepEqual([left.records, left.snapshots], [[], []]);
      assert.ok(!left.blobs.includes(big.digest));
      const kept = (await stat(join(w.svc.content.ingestDir, digestHex(big.digest), 'data'))).size;
      assert.ok(kept > 0 && kept <= big.blob.length >> 1, `kept ${kept} bytes of ${big.blob.length}`);

      stalling = false;
      const before = w.server.requests.length;
      const { image, bytesFetched } = await w.svc.pull(w.ref('v1'), undefined, live());
      assert.equal(image.id, img.configDigest);
      const layerReqs = w.server.requests.slice(before).filter((r) => pathOf(r) === `/v2/app/blobs/${big.digest}`);
      assert.deepEqual(layerReqs.map((r) => r.headers.range), [`bytes=${kept}-`]);
      assert.equal(bytesFetched, big.blob.length - kept);
      const done = await leftovers(w);
      assert.deepEqual([done.ingests, done.preps], [[], []]);
      assert.deepEqual(await readFile(w.svc.content.blobPath(big.digest)), big.blob);
      assert.equal((await w.svc.snapshots.info(img.chainIDs[0]))?.diffID, big.diffID);
    },
    { progressTimeoutMs: 300 },
  );
});

test('a config listing fewer diff_ids than the manifest has layers is MANIFEST_INVALID', async () => {
  const fake = emptyFake();
  const a = await layer('a', { f: 'a' });
  const b = await layer('b', { f: 'b' });
  addImage(fake, 'v1', [a, b], { diffIDs: [a.diffID] });
  await withWorld(registryHandler, fake, async (w) => {
    await rejectsWith(w.svc.pull(w.ref('v1'), undefined, live()), 'SKIFF_MANIFEST_INVALID', /2 layers but config lists 1 diff_ids/);
    assert.deepEqual(blobRequests(w.server, a.digest), [], 'no layer fetched');
    assert.deepEqual(await leftovers(w), NOTHING);
  });
});

test('a Docker schema 1 manifest is MANIFEST_UNSUPPORTED', async () => {
  const fake = emptyFake();
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'app', tag: 'v1', fsLayers: [], history: [], signatures: [] }));
  const m = { bytes, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws', digest: sha256Digest(bytes) };
  fake.manifests.set('v1', m);
  await withWorld(registryHandler, fake, async (w) => {
    await rejectsWith(w.svc.pull(w.ref('v1'), undefined, live()), 'SKIFF_MANIFEST_UNSUPPORTED', /schema 1/);
    assert.deepEqual(await leftovers(w), NOTHING);
  });
});

test('a layer of an unknown media type is MANIFEST_UNSUPPORTED before anything is fetched', async () => {
  const fake = emptyFake();
  const a = await layer('a', { f: 'a' });
  addImage(fake, 'v1', [a], { layerMediaType: 'application/vnd.example.layer.v1.tar+lz4' });
  await withWorld(registryHandler, fake, async (w) => {
    await rejectsWith(w.svc.pull(w.ref('v1'), undefined, live()), 'SKIFF_MANIFEST_UNSUPPORTED', /unsupported media type "application\/vnd\.example\.layer\.v1\.tar\+lz4"/);
    assert.deepEqual(
      w.server.requests.filter((r) => pathOf(r).includes('/blobs/')),
      [],
    );
    assert.deepEqual(await leftovers(w), NOTHING);
  });
});

test('a manifest naming one blob twice (an empty layer repeated) pulls', async () => {
  const fake = emptyFake();
  const empty = await layer('empty', {});
  const a = await layer('a', { 'x.txt': 'x\n' });
  const img = addImage(fake, 'v1', [empty, a, empty]);
  await withWorld(registryHandler, fake, async (w) => {
    const { image } = await w.svc.pull(w.ref('v1'), undefined, live());
    assert.equal(image.id, img.configDigest);
    assert.deepEqual(new Set(await w.svc.snapshots.list()), new Set(img.chainIDs));
    assert.equal(img.chainIDs.length, 3);
  });
});

test('two tags of one image pulled at once both succeed and both are recorded', async () => {
  const fake = emptyFake();
  const l = await layer('l', { 'f.txt': 'f\n' });
  const img = addImage(fake, 't1', [l]);
  fake.manifests.set('t2', fake.manifests.get('t1')!);
  await withWorld(registryHandler, fake, async (w) => {
    const [x, y] = await Promise.all([w.svc.pull(w.ref('t1'), undefined, live()), w.svc.pull(w.ref('t2'), undefined, live())]);
    assert.equal(x.image.id, img.configDigest);
    assert.equal(y.image.id, img.configDigest);
    assert.deepEqual(w.svc.images.get(img.configDigest)?.repoTags.sort(), [`${w.server.host}/app:t1`, `${w.server.host}/app:t2`]);
  });
});

test('a reference with tag and digest is pulled by digest and does not move the tag', async () => {
  const fake = emptyFake();
  const one = addImage(fake, 'stable', [await layer('one', { '1': '1' })]);
  const two = addImage(fake, 'other', [await layer('two', { '2': '2' })]);
  await withWorld(registryHandler, fake, async (w) => {
    await w.svc.pull(w.ref('stable'), undefined, live());
    const { image } = await w.svc.pull(`${w.ref('stable')}@${two.manifestDigest}`, undefined, live());
    assert.equal(image.id, two.configDigest);
    assert.deepEqual(image.repoTags, [], 'the tag is not recorded for the digest-pinned image');
    assert.equal(w.svc.resolve(w.ref('stable'))?.id, one.configDigest, 'the tag still names the first image');
  });
});

test('a connection cut mid-blob is resumed with a Range request and the pull succeeds', async () => {
  const fake = emptyFake();
  const big = await layer('big', { 'r.bin': randomBytes(512 * 1024) });
  const img = addImage(fake, 'v1', [big]);
  let cuts = 0;
  const handler = (f: FakeImage) =>
    registryHandler(f, (req, res) => {
      if (pathOf(req) !== `/v2/app/blobs/${big.digest}` || req.headers.range || cuts > 0) return false;
      cuts++;
      const b = f.blobs.get(big.digest)!;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length });
      res.write(b.subarray(0, b.length >> 1), () => res.socket?.destroy());
      return true;
    });
  await withWorld(
    handler,
    fake,
    async (w) => {
      const { image } = await w.svc.pull(w.ref('v1'), undefined, live());
      assert.equal(image.id, img.configDigest);
      assert.equal(cuts, 1);
      const ranged = blobRequests(w.server, big.digest).filter((r) => r.headers.range);
      assert.equal(ranged.length, 1, 'resumed once');
      assert.match(String(ranged[0].headers.range), /^bytes=[1-9]\d*-$/);
      assert.deepEqual(await w.svc.content.listIngests(), []);
    },
    { registryRetries: 2 },
  );
});

test('an index entry without a platform is checked against its config', async () => {
  const fake = emptyFake();
  const arm = addImage(fake, 'arm', [await layer('arm', { a: 'a' })], { architecture: 'arm64' });
  const amd = addImage(fake, 'amd', [await layer('amd', { b: 'b' })]);
  const index = (m: Built): { bytes: Buffer; mediaType: string; digest: string } => {
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_INDEX,
        manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: m.manifestDigest, size: fake.manifests.get(m.manifestDigest)!.bytes.length }],
      }),
    );
    return { bytes, mediaType: MediaType.OCI_INDEX, digest: sha256Digest(bytes) };
  };
  fake.manifests.set('idx-arm', index(arm));
  fake.manifests.set('idx-amd', index(amd));
  await withWorld(registryHandler, fake, async (w) => {
    await rejectsWith(w.svc.pull(w.ref('idx-arm'), undefined, live()), 'SKIFF_PLATFORM_NOT_FOUND', /offers linux\/arm64/);
    assert.deepEqual((await leftovers(w)).records, []);
    const { image } = await w.svc.pull(w.ref('idx-amd'), undefined, live());
    assert.equal(image.id, amd.configDigest);
  });
});
