// ImageStore on a temp dir: records survive a reload, crash leftovers and unreadable records do
// not stop a load, lookups by name and id, and callers only ever hold copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, type ImageRecord } from './image-store.js';

const id = (c: string): string => 'sha256:' + c.repeat(64);

function record(imageId: string, tags: string[], digests: string[] = []): ImageRecord {
  return {
    version: 1,
    id: imageId,
    repoTags: tags,
    repoDigests: digests,
    manifestDigest: id('f'),
    configDigest: imageId,
    size: 10,
    layers: [{ digest: id('e'), mediaType: 'application/vnd.oci.image.layer.v1.tar', size: 9, diffID: id('d'), chainID: id('d') }],
    os: 'linux',
    architecture: 'amd64',
    config: { Env: ['PATH=/bin'], User: '1000' },
    pinned: false,
    createdAt: '2024-01-01T00:00:00.000Z',
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-image-store-'));
  try {
    await fn(join(dir, 'images'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a record put by one store is loaded from disk by the next', () =>
  withDir(async (dir) => {
    const a = new ImageStore(dir);
    await a.load();
    const rec = record(id('a'), ['docker.io/library/busybox:latest'], ['docker.io/library/busybox@' + id('b')]);
    await a.put(rec);
    assert.deepEqual(await readdir(dir), ['a'.repeat(64) + '.json'], 'one file, no temp left');
    const b = new ImageStore(dir);
    await b.load();
    assert.deepEqual(b.get(id('a')), rec);
    assert.deepEqual(b.list(), [rec]);
  }));

test('delete removes the record from disk and memory, and a second delete is a no-op', () =>
  withDir(async (dir) => {
    const s = new ImageStore(dir);
    await s.load();
    await s.put(record(id('a'), ['x.io/a:1']));
    await s.delete(id('a'));
    await s.delete(id('a'));
    assert.equal(s.get(id('a')), undefined);
    assert.deepEqual(await readdir(dir), []);
  }));

test('load removes the temp files of a crashed atomic write', () =>
  withDir(async (dir) => {
    const s = new ImageStore(dir);
    await s.load();
    await s.put(record(id('a'), ['x.io/a:1']));
    const temp = `.${'b'.repeat(64)}.json.0a1b2c3d4e5f.tmp`;
    await writeFile(join(dir, temp), '{"version":1,"id":"sha256:half-writ');
    const again = new ImageStore(dir);
    await again.load();
    assert.deepEqual(await readdir(dir), ['a'.repeat(64) + '.json']);
    assert.deepEqual(again.list().map((r) => r.id), [id('a')]);
  }));

test('an unreadable record is skipped and the others still load', () =>
  withDir(async (dir) => {
    const s = new ImageStore(dir);
    await s.load();
    await s.put(record(id('a'), ['x.io/a:1']));
    await writeFile(join(dir, 'c'.repeat(64) + '.json'), '{ not json');
    await writeFile(join(dir, 'd'.repeat(64) + '.json'), JSON.stringify({ ...record(id('d'), []), version: 2 }));
    await writeFile(join(dir, 'README'), 'not a record');
    const again = new ImageStore(dir);
    await again.load();
    assert.deepEqual(again.list().map((r) => r.id), [id('a')]);
  }));

test('byTag, byRepoDigest and byIdPrefix find the right record', () =>
  withDir(async (dir) => {
    const s = new ImageStore(dir);
    await s.load();
    const abc = 'sha256:abc' + '0'.repeat(61);
    const abd = 'sha256:abd' + '0'.repeat(61);
    await s.put(record(abc, ['x.io/app:1', 'x.io/app:2'], ['x.io/app@' + id('1')]));
    await s.put(record(abd, ['x.io/other:1'], ['x.io/other@' + id('2')]));
    assert.equal(s.byTag('x.io/app:2')?.id, abc);
    assert.equal(s.byTag('x.io/other:1')?.id, abd);
    assert.equal(s.byTag('x.io/app:3'), undefined);
    assert.equal(s.byRepoDigest('x.io/other@' + id('2'))?.id, abd);
    assert.equal(s.byRepoDigest('x.io/app@' + id('2')), undefined);
    assert.deepEqual(s.byIdPrefix('abc').map((r) => r.id), [abc]);
    assert.deepEqual(s.byIdPrefix('sha256:abd').map((r) => r.id), [abd]);
    assert.deepEqual(s.byIdPrefix('ab').map((r) => r.id).sort(), [abc, abd]);
    assert.deepEqual(s.byIdPrefix('ff'), []);
  }));

test('results are copies: mutating one changes neither the store nor the next result', () =>
  withDir(async (dir) => {
    const s = new ImageStore(dir);
    await s.load();
    const original = record(id('a'), ['x.io/a:1'], ['x.io/a@' + id('1')]);
    await s.put(original);
    original.repoTags.push('x.io/a:mutated-after-put');
    for (const got of [s.get(id('a')), s.byTag('x.io/a:1'), s.byRepoDigest('x.io/a@' + id('1')), s.byIdPrefix('aaaa')[0], s.list()[0]]) {
      assert.ok(got);
      got.repoTags.push('x.io/a:evil');
      got.layers[0].chainID = id('9');
      got.config.Env?.push('EVIL=1');
    }
    const fresh = s.get(id('a'));
    assert.deepEqual(fresh?.repoTags, ['x.io/a:1']);
    assert.equal(fresh?.layers[0].chainID, id('d'));
    assert.deepEqual(fresh?.config.Env, ['PATH=/bin']);
  }));

test('a record whose id is not a sha256 digest is refused before it becomes a path', () =>
  withDir(async (dir) => {
    const s = new ImageStore(dir);
    await s.load();
    await assert.rejects(s.put(record('sha256:../../etc/passwd', [])), /malformed digest/);
    assert.deepEqual(s.list(), []);
  }));
