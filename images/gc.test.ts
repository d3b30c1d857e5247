// Garbage collection over real stores in a temp dir: what no record names and no lease holds goes,
// everything else stays; `only` looks at its candidates alone; ingests go only when asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from './content/store.js';
import { sha256Digest } from './digest.js';
import { Leases, collect, type GcStores } from './gc.js';
import { ImageStore, type ImageRecord } from './image-store.js';
import { SnapshotStore } from './snapshots/store.js';

interface World extends GcStores {
  /** Writes a committed blob and returns its digest. */
  blob(text: string): Promise<string>;
  /** Commits an empty snapshot under a chainID made from `name`. */
  snapshot(name: string): Promise<string>;
  /** Leaves a half-written ingest of the blob `text` would be. */
  ingest(text: string): Promise<string>;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-gc-'));
  try {
    const content = new ContentStore(join(dir, 'content'));
    const snapshots = new SnapshotStore(join(dir, 'snapshots'));
    const images = new ImageStore(join(dir, 'images'));
    await content.init();
    await snapshots.init();
    await images.load();
    await fn({
      content,
      snapshots,
      images,
      leases: new Leases(),
      async blob(text) {
        const d = sha256Digest(text);
        await content.writeBytes(d, Buffer.from(text));
        return d;
      },
      async snapshot(name) {
        const chainID = sha256Digest('chain ' + name);
        const p = await snapshots.prepare();
        await snapshots.commit(p, { chainID, diffID: chainID, size: 0, createdAt: new Date().toISOString() });
        return chainID;
      },
      async ingest(text) {
        const d = sha256Digest(text);
        const w = await content.openWriter(d, text.length);
        assert.ok(w);
        await w.append(Buffer.from(text.slice(0, 1)));
        await w.close();
        return d;
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function imageOf(config: string, manifest: string, layers: { digest: string; chainID: string }[], index?: string): ImageRecord {
  return {
    version: 1,
    id: config,
    repoTags: [],
    repoDigests: [],
    manifestDigest: manifest,
    ...(index ? { indexDigest: index } : {}),
    configDigest: config,
    size: 0,
    layers: layers.map((l) => ({ ...l, diffID: l.chainID, mediaType: 'application/vnd.oci.image.layer.v1.tar', size: 0 })),
    os: 'linux',
    architecture: 'amd64',
    config: {},
    pinned: false,
    createdAt: new Date().toISOString(),
  };
}

test('collect removes unreferenced blobs and snapshots and keeps what an image names', () =>
  withWorld(async (w) => {
    const config = await w.blob('config');
    const manifest = await w.blob('manifest');
    const index = await w.blob('index');
    const layer = await w.blob('layer');
    const chain = await w.snapshot('kept');
    const orphanBlob = await w.blob('orphan');
    const orphanSnap = await w.snapshot('orphan');
    await w.images.put(imageOf(config, manifest, [{ digest: layer, chainID: chain }], index));

    assert.deepEqual(await collect(w), { blobs: 1, snapshots: 1, ingests: 0 });
    assert.deepEqual((await w.content.list()).sort(), [config, manifest, index, layer].sort());
    assert.deepEqual(await w.snapshots.list(), [chain]);
    assert.equal(await w.content.size(orphanBlob), undefined);
    assert.equal(await w.snapshots.has(orphanSnap), false);
    assert.deepEqual(await collect(w), { blobs: 0, snapshots: 0, ingests: 0 }, 'a second sweep finds nothing');
  }));

test('collect keeps what a lease holds until the lease is released', () =>
  withWorld(async (w) => {
    const blob = await w.blob('in flight');
    const snap = await w.snapshot('in flight');
    const lease = w.leases.acquire({ blobs: new Set([blob]), snapshots: new Set([snap]) });
    assert.equal(w.leases.active, true);
    assert.deepEqual(await collect(w), { blobs: 0, snapshots: 0, ingests: 0 });
    assert.notEqual(await w.content.size(blob), undefined);
    assert.equal(await w.snapshots.has(snap), true);
    lease.release();
    assert.equal(w.leases.active, false);
    assert.deepEqual(await collect(w), { blobs: 1, snapshots: 1, ingests: 0 });
    assert.deepEqual(await w.content.list(), []);
    assert.deepEqual(await w.snapshots.list(), []);
  }));

test('a lease is live: what a pull adds after acquiring is protected too', () =>
  withWorld(async (w) => {
    const set = { blobs: new Set<string>(), snapshots: new Set<string>() };
    const lease = w.leases.acquire(set);
    const blob = await w.blob('learned later');
    set.blobs.add(blob);
    assert.equal((await collect(w)).blobs, 0);
    assert.notEqual(await w.content.size(blob), undefined);
    lease.release();
  }));

test('with `only`, collect touches only its candidates (and their ingests)', () =>
  withWorld(async (w) => {
    const candidate = await w.blob('candidate');
    const bystander = await w.blob('bystander');
    const candSnap = await w.snapshot('candidate');
    const bySnap = await w.snapshot('bystander');
    const candIngest = await w.ingest('candidate ingest');
    const byIngest = await w.ingest('bystander ingest');
    const referenced = await w.blob('referenced');
    await w.images.put(imageOf(referenced, referenced, []));

    const r = await collect(w, { only: { blobs: new Set([candidate, candIngest, referenced]), snapshots: new Set([candSnap]) } });
    assert.deepEqual(r, { blobs: 1, snapshots: 1, ingests: 0 });
    assert.deepEqual((await w.content.list()).sort(), [bystander, referenced].sort());
    assert.deepEqual(await w.snapshots.list(), [bySnap]);
    assert.deepEqual(await w.content.listIngests(), [byIngest], 'the candidate\'s ingest went, the other stayed');
  }));

test('a sweep keeps ingests unless asked, and then keeps the leased ones', () =>
  withWorld(async (w) => {
    const resumable = await w.ingest('resumable');
    const leased = await w.ingest('leased');
    assert.deepEqual(await collect(w), { blobs: 0, snapshots: 0, ingests: 0 });
    assert.deepEqual((await w.content.listIngests()).sort(), [resumable, leased].sort());
    const lease = w.leases.acquire({ blobs: new Set([leased]), snapshots: new Set() });
    assert.deepEqual(await collect(w, { ingests: true }), { blobs: 0, snapshots: 0, ingests: 1 });
    assert.deepEqual(await w.content.listIngests(), [leased]);
    lease.release();
  }));

test('a candidate that no longer exists is not counted', () =>
  withWorld(async (w) => {
    const r = await collect(w, { only: { blobs: new Set([sha256Digest('gone')]), snapshots: new Set([sha256Digest('gone too')]) } });
    assert.deepEqual(r, { blobs: 0, snapshots: 0, ingests: 0 });
  }));
