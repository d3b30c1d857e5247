// ImageService on a temp root, without a registry: images are put in place by hand (record,
// blobs, snapshots) and then resolved, listed, removed and measured the way the CRI handlers do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSkiffError, type ErrorCode } from '../common/errors.js';
import { sha256Digest } from './digest.js';
import type { ImageRecord } from './image-store.js';
import { diskUsage } from './fs-usage.js';
import { MediaType } from './oci.js';
import { computeChainIDs } from './manifest.js';
import { ImageService, imageUser } from './service.js';

interface Placed {
  rec: ImageRecord;
  blobs: string[];
  chainIDs: string[];
}

/**
 * Writes an image's blobs (config, manifest, one per layer) and snapshots, then its record.
 * `digestRepos` get a repo digest of the manifest each. `layers` names layer contents: equal names are the same layer, so two images can share one.
 */
async function place(
  svc: ImageService,
  name: string,
  tags: string[],
  digestRepos: string[],
  layers: string[],
  fileSize = 8192,
): Promise<Placed> {
  const config = Buffer.from(JSON.stringify({ image: name }));
  const manifest = Buffer.from(JSON.stringify({ manifest: name }));
  const configDigest = sha256Digest(config);
  const manifestDigest = sha256Digest(manifest);
  await svc.content.writeBytes(configDigest, config);
  await svc.content.writeBytes(manifestDigest, manifest);
  const diffIDs = layers.map((l) => sha256Digest('diff ' + l));
  const chainIDs = computeChainIDs(diffIDs);
  const layerRecords = [];
  for (const [i, l] of layers.entries()) {
    const bytes = Buffer.from('layer ' + l);
    const digest = sha256Digest(bytes);
    await svc.content.writeBytes(digest, bytes);
    if (!(await svc.snapshots.has(chainIDs[i]))) {
      const p = await svc.snapshots.prepare();
      await writeFile(join(p.fs, 'file-' + l), Buffer.alloc(fileSize, 1));
      await svc.snapshots.commit(p, { chainID: chainIDs[i], diffID: diffIDs[i], size: fileSize, createdAt: new Date().toISOString() });
    }
    layerRecords.push({ digest, mediaType: MediaType.OCI_LAYER, size: bytes.length, diffID: diffIDs[i], chainID: chainIDs[i] });
  }
  const rec: ImageRecord = {
    version: 1,
    id: configDigest,
    repoTags: tags,
    repoDigests: digestRepos.map((repo) => `${repo}@${manifestDigest}`),
    manifestDigest,
    configDigest,
    size: config.length,
    layers: layerRecords,
    os: 'linux',
    architecture: 'amd64',
    config: {},
    pinned: false,
    createdAt: new Date().toISOString(),
  };
  await svc.images.put(rec);
  return { rec, blobs: [configDigest, manifestDigest, ...layerRecords.map((l) => l.digest)], chainIDs };
}

async function withService(fn: (svc: ImageService) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-images-'));
  try {
    const svc = await ImageService.open({ root, hosts: { mirrors: {}, insecure: [] }, progressTimeoutMs: 0, maxConcurrentDownloads: 2 });
    await fn(svc);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const BUSYBOX = 'docker.io/library/busybox';

test('resolve finds an image by full id, id without sha256:, and a unique id prefix', () =>
  withService(async (svc) => {
    const { rec } = await place(svc, 'a', [`${BUSYBOX}:latest`], [], ['a']);
    const hex = rec.id.slice('sha256:'.length);
    assert.equal(svc.resolve(rec.id)?.id, rec.id);
    assert.equal(svc.resolve(hex)?.id, rec.id);
    assert.equal(svc.resolve(hex.slice(0, 12))?.id, rec.id);
    assert.equal(svc.resolve('sha256:' + hex.slice(0, 12))?.id, rec.id);
    assert.equal(svc.resolve('  ' + rec.id + '\n')?.id, rec.id, 'surrounding blanks are ignored');
    assert.equal(svc.resolve('f'.repeat(64)), undefined, 'a full id of no image');
  }));

test('an id prefix shared by two images resolves to nothing', () =>
  withService(async (svc) => {
    // resolve reads records only, so made-up ids do here.
    const a = 'sha256:abcd1' + '0'.repeat(59);
    const b = 'sha256:abcd2' + '0'.repeat(59);
    for (const id of [a, b]) await svc.images.put({ ...(await place(svc, id, [], [], [])).rec, id, configDigest: id });
    assert.equal(svc.resolve('abcd'), undefined);
    assert.equal(svc.resolve('sha256:abcd'), undefined);
    assert.equal(svc.resolve('abcd1')?.id, a);
    assert.equal(svc.resolve('sha256:abcd2')?.id, b);
    assert.equal(svc.resolve('abc'), undefined, 'under 4 hex digits is a repository name, not an id prefix');
  }));

test('resolve by tag normalizes familiar names both ways', () =>
  withService(async (svc) => {
    const { rec } = await place(svc, 'bb', [`${BUSYBOX}:latest`, `${BUSYBOX}:1.36`, 'quay.io/org/app:v2'], [], ['a']);
    for (const name of ['busybox', 'busybox:latest', 'library/busybox', 'docker.io/busybox', `${BUSYBOX}:latest`, 'busybox:1.36', 'quay.io/org/app:v2']) {
      assert.equal(svc.resolve(name)?.id, rec.id, name);
    }
    assert.equal(svc.resolve('busybox:1.37'), undefined);
    assert.equal(svc.resolve('quay.io/org/app'), undefined, 'app has no latest tag');
    assert.equal(svc.resolve('alpine'), undefined);
  }));

test('resolve by digest reference matches a repo digest', () =>
  withService(async (svc) => {
    const { rec } = await place(svc, 'bb', [`${BUSYBOX}:latest`], [BUSYBOX], ['a']);
    assert.deepEqual(rec.repoDigests, [`${BUSYBOX}@${rec.manifestDigest}`]);
    assert.equal(svc.resolve(`busybox@${rec.manifestDigest}`)?.id, rec.id);
    assert.equal(svc.resolve(`${BUSYBOX}@${rec.manifestDigest}`)?.id, rec.id);
    assert.equal(svc.resolve(`alpine@${rec.manifestDigest}`), undefined, 'same digest, other repository');
    assert.equal(svc.resolve(`busybox@${sha256Digest('other')}`), undefined);
  }));

test('resolve refuses a malformed or empty reference', () =>
  withService(async (svc) => {
    await place(svc, 'bb', [`${BUSYBOX}:latest`], [], []);
    const refused = (code: ErrorCode, message?: RegExp) => (e: unknown): boolean =>
      isSkiffError(e, code) && (message === undefined || message.test(e.message));
    for (const bad of ['Busybox:UPPER/x', 'busybox::1', 'busybox@sha256:abc', '-leading']) {
      assert.throws(() => svc.resolve(bad), refused('SKIFF_IMAGE_REF_INVALID', /invalid image reference/), bad);
    }
    assert.throws(() => svc.resolve(''), refused('SKIFF_IMAGE_REF_INVALID', /^image reference is empty$/));
    assert.throws(() => svc.resolve(' \t'), refused('SKIFF_IMAGE_REF_INVALID', /^image reference is empty$/));
  }));

test('list without a filter, by repository (every tag), by exact tag, and unknown', () =>
  withService(async (svc) => {
    const a = await place(svc, 'a', [`${BUSYBOX}:1.35`], [], ['a']);
    const b = await place(svc, 'b', [`${BUSYBOX}:1.36`, 'quay.io/org/app:v1'], [], ['b']);
    const c = await place(svc, 'c', ['quay.io/org/busybox:latest', `${BUSYBOX}x:1`], [], ['c']);
    const ids = (recs: ImageRecord[]): string[] => recs.map((r) => r.id).sort();
    assert.deepEqual(ids(svc.list()), ids([a.rec, b.rec, c.rec]));
    assert.deepEqual(ids(svc.list('')), ids([a.rec, b.rec, c.rec]));
    assert.deepEqual(ids(svc.list('busybox')), ids([a.rec, b.rec]), 'every tag of docker.io/library/busybox, not quay.io/org/busybox');
    assert.deepEqual(ids(svc.list('busybox:1.36')), [b.rec.id]);
    assert.deepEqual(ids(svc.list('quay.io/org/app:v1')), [b.rec.id]);
    assert.deepEqual(ids(svc.list('quay.io/org/app')), [b.rec.id]);
    assert.deepEqual(ids(svc.list(c.rec.id)), [c.rec.id]);
    assert.deepEqual(svc.list('busybox:9'), []);
    assert.deepEqual(svc.list('alpine'), []);
  }));

test('remove of one tag of several only untags; the repo digest goes with the last tag of its repo', () =>
  withService(async (svc) => {
    const { rec, blobs } = await place(
      svc,
      'bb',
      [`${BUSYBOX}:1.36`, `${BUSYBOX}:latest`, 'quay.io/org/app:v1'],
      [BUSYBOX, 'quay.io/org/app'],
      ['a'],
    );
    const [bbDigest, appDigest] = rec.repoDigests;

    assert.deepEqual(await svc.remove('busybox:1.36'), { removed: true, deleted: false });
    let now = svc.resolve(rec.id);
    assert.deepEqual(now?.repoTags, [`${BUSYBOX}:latest`, 'quay.io/org/app:v1']);
    assert.deepEqual(now?.repoDigests, [bbDigest, appDigest], 'busybox:latest still names the repository');

    assert.deepEqual(await svc.remove('busybox'), { removed: true, deleted: false });
    now = svc.resolve(rec.id);
    assert.deepEqual(now?.repoTags, ['quay.io/org/app:v1']);
    assert.deepEqual(now?.repoDigests, [appDigest]);
    assert.equal(svc.resolve('busybox'), undefined);
    for (const b of blobs) assert.notEqual(await svc.content.size(b), undefined, 'untag frees nothing');

    // The untag was written to disk, not only to memory.
    await svc.images.load();
    assert.deepEqual(svc.images.get(rec.id)?.repoTags, ['quay.io/org/app:v1']);
  }));

test('remove of the last tag deletes the image and frees what no other image shares', () =>
  withService(async (svc) => {
    const gone = await place(svc, 'gone', ['quay.io/org/gone:v1'], [], ['shared', 'own']);
    const kept = await place(svc, 'kept', ['quay.io/org/kept:v1'], [], ['shared']);
    assert.equal(gone.chainIDs[0], kept.chainIDs[0], 'the bottom layer is one snapshot');

    assert.deepEqual(await svc.remove('quay.io/org/gone:v1'), { removed: true, deleted: true });
    assert.equal(svc.resolve(gone.rec.id), undefined);
    assert.deepEqual((await svc.content.list()).sort(), [...kept.blobs].sort());
    assert.deepEqual(await svc.snapshots.list(), [kept.chainIDs[0]]);
    await svc.images.load();
    assert.equal(svc.images.get(gone.rec.id), undefined, 'the record is gone from disk');
  }));

test('remove by id or by digest deletes the whole image, whatever its tags', () =>
  withService(async (svc) => {
    const byId = await place(svc, 'one', ['quay.io/a:1', 'quay.io/a:2'], [], ['one']);
    const byDigest = await place(svc, 'two', ['quay.io/b:1', 'quay.io/b:2'], ['quay.io/b'], ['two']);
    assert.deepEqual(await svc.remove(byId.rec.id), { removed: true, deleted: true });
    assert.deepEqual(await svc.remove(byDigest.rec.repoDigests[0]), { removed: true, deleted: true });
    assert.deepEqual(svc.list(), []);
    assert.deepEqual(await svc.content.list(), []);
    assert.deepEqual(await svc.snapshots.list(), []);
  }));

test('remove by short id deletes the image', () =>
  withService(async (svc) => {
    const { rec } = await place(svc, 'one', ['quay.io/a:1', 'quay.io/a:2'], [], ['one']);
    assert.deepEqual(await svc.remove(rec.id.slice(7, 19)), { removed: true, deleted: true });
    assert.deepEqual(svc.list(), []);
  }));

test('remove of an unknown image removes nothing and succeeds', () =>
  withService(async (svc) => {
    const { rec } = await place(svc, 'one', ['quay.io/a:1'], [], ['one']);
    assert.deepEqual(await svc.remove('quay.io/a:2'), { removed: false, deleted: false });
    assert.deepEqual(await svc.remove('f'.repeat(64)), { removed: false, deleted: false });
    assert.deepEqual(svc.list().map((r) => r.id), [rec.id]);
  }));

test('remove of " tag " with surrounding blanks untags it instead of deleting every tag', () =>
  withService(async (svc) => {
    const { rec } = await place(svc, 'one', ['quay.io/a:1', 'quay.io/a:2'], [], ['one']);
    assert.deepEqual(await svc.remove(' quay.io/a:1 '), { removed: true, deleted: false });
    assert.deepEqual(svc.resolve(rec.id)?.repoTags, ['quay.io/a:2']);
  }));

test('fsInfo grows with a new snapshot once the cache is invalidated, and remove invalidates it', () =>
  withService(async (svc) => {
    const empty = await svc.fsInfo();
    assert.equal(empty.mountpoint, svc.snapshots.root);
    await place(svc, 'first', ['quay.io/first:1'], [], ['first']);
    assert.deepEqual(
      [(await svc.fsInfo()).usedBytes, (await svc.fsInfo()).inodesUsed],
      [empty.usedBytes, empty.inodesUsed],
      'cached until a pull, a removal or a GC',
    );
    await svc.gc();
    const one = await svc.fsInfo();
    assert.ok(one.usedBytes > empty.usedBytes, `bytes ${one.usedBytes} > ${empty.usedBytes}`);
    assert.ok(one.inodesUsed >= empty.inodesUsed + 4, `inodes ${one.inodesUsed}: snapshot dir, fs, file, info.json`);

    const second = await place(svc, 'second', ['quay.io/second:1'], [], ['second'], 256 * 1024);
    assert.equal((await svc.fsInfo()).usedBytes, one.usedBytes, 'still cached');

    assert.deepEqual(await svc.remove('quay.io/first:1'), { removed: true, deleted: true });
    const now = await svc.fsInfo();
    const du = await diskUsage(svc.snapshots.root);
    assert.deepEqual([now.usedBytes, now.inodesUsed], [du.bytes, du.inodes], 'fresh numbers after remove');
    assert.ok(now.usedBytes > one.usedBytes, 'the larger second image is counted, the first is gone');
    assert.deepEqual(await svc.snapshots.list(), second.chainIDs);
  }));

test('imageUser reads a uid or a user name from USER', () => {
  const table: [string | undefined, ReturnType<typeof imageUser>][] = [
    ['1000', { uid: 1000 }],
    ['1000:1000', { uid: 1000 }],
    ['0', { uid: 0 }],
    ['nobody', { username: 'nobody' }],
    ['nobody:nogroup', { username: 'nobody' }],
    [':1000', {}],
    ['', {}],
    [undefined, {}],
  ];
  for (const [user, want] of table) assert.deepEqual(imageUser(user), want, JSON.stringify(user));
});

test('remove of an image in use (an image volume) is SKIFF_IMAGE_IN_USE naming the user; untagging one of its tags still works', () =>
  withService(async (svc) => {
    const used = await place(svc, 'vol', ['quay.io/org/vol:v1', 'quay.io/org/vol:v2'], [], ['data']);
    let users = [{ imageId: used.rec.id, user: 'container abc (image volume "/data")' }];
    svc.setImageUsers(() => users);
    assert.deepEqual(await svc.remove('quay.io/org/vol:v2'), { removed: true, deleted: false });
    await assert.rejects(
      svc.remove('quay.io/org/vol:v1'),
      (err: unknown) => isSkiffError(err, 'SKIFF_IMAGE_IN_USE') && err.message === `image "quay.io/org/vol:v1" (${used.rec.id}) is in use by container abc (image volume "/data")`,
    );
    await assert.rejects(svc.remove(used.rec.id), /is in use by container abc/);
    assert.ok(svc.resolve('quay.io/org/vol:v1'), 'refused: still there');
    assert.deepEqual(await svc.snapshots.list(), used.chainIDs);
    users = [];
    assert.deepEqual(await svc.remove('quay.io/org/vol:v1'), { removed: true, deleted: true });
  }));
