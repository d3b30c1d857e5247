import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, readdir, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore, type BlobWriter } from './store.js';
import { digestHex, sha256Digest } from '../digest.js';
import { isSkiffError } from '../../common/errors.js';

/** An ingest that must open (the blob is not there yet). */
async function openNew(s: ContentStore, digest: string, size: number | undefined): Promise<BlobWriter> {
  const w = await s.openWriter(digest, size);
  assert.ok(w, `a writer for ${digest}`);
  return w;
}

async function withStore(fn: (s: ContentStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-content-'));
  try {
    const s = new ContentStore(dir);
    await s.init();
    await fn(s, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('digestHex refuses anything that is not a sha256 digest', () => {
  assert.equal(digestHex('sha256:' + 'a'.repeat(64)), 'a'.repeat(64));
  for (const bad of ['sha256:abc', 'sha512:' + 'a'.repeat(128), '../../etc', 'sha256:' + 'A'.repeat(64)]) {
    assert.throws(() => digestHex(bad), (e: unknown) => isSkiffError(e, 'SKIFF_INVALID_ARGUMENT'), bad);
  }
});

test('a blob becomes visible only after commit verifies its digest', () =>
  withStore(async (s) => {
    const data = Buffer.from('hello layer');
    const digest = sha256Digest(data);
    const w = await openNew(s, digest, data.length);
    await w.append(data.subarray(0, 5));
    assert.equal(await s.size(digest), undefined, 'not listed while ingesting');
    await w.append(data.subarray(5));
    await w.commit();
    assert.equal(await s.size(digest), data.length);
    assert.deepEqual(await s.readBytes(digest), data);
    assert.deepEqual(await s.listIngests(), []);
  }));

test('a digest mismatch deletes the ingest and lists nothing', () =>
  withStore(async (s) => {
    const digest = sha256Digest('expected');
    const w = await openNew(s, digest, 8);
    await w.append(Buffer.from('tampered'));
    await assert.rejects(w.commit(), (e: unknown) => isSkiffError(e, 'SKIFF_DIGEST_MISMATCH') && e.message.includes(digest));
    assert.equal(await s.size(digest), undefined);
    assert.deepEqual(await s.listIngests(), []);
    await assert.rejects(s.writeBytes(digest, Buffer.from('nope')), /DIGEST|digest/);
  }));

test('more bytes than the descriptor declares fail early', () =>
  withStore(async (s) => {
    const w = await openNew(s, sha256Digest('abc'), 3);
    await assert.rejects(w.append(Buffer.from('abcd')), (e: unknown) => isSkiffError(e, 'SKIFF_DIGEST_MISMATCH'));
    await w.abort();
    assert.deepEqual(await s.listIngests(), []);
  }));

test('an interrupted ingest resumes from its bytes, re-hashed', () =>
  withStore(async (s) => {
    const data = Buffer.from('0123456789abcdef');
    const digest = sha256Digest(data);
    const first = await openNew(s, digest, data.length);
    await first.append(data.subarray(0, 10));
    await first.close(); // as after a network error or a crash
    const second = await openNew(s, digest, data.length);
    assert.equal(second.offset, 10);
    const replay: Buffer[] = [];
    for await (const c of second.existing()) replay.push(c as Buffer);
    assert.deepEqual(Buffer.concat(replay), data.subarray(0, 10));
    await second.append(data.subarray(10));
    await second.commit();
    assert.deepEqual(await readFile(s.blobPath(digest)), data);
  }));

test('a second writer of a digest waits for the first, and finds the blob it committed', () =>
  withStore(async (s) => {
    const data = Buffer.from('x');
    const digest = sha256Digest(data);
    const first = await s.openWriter(digest, 1);
    assert.ok(first);
    let secondOpened = false;
    const second = s.openWriter(digest, 1).then((w) => ((secondOpened = true), w));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(secondOpened, false, 'waits while the first writes');
    await first.append(data);
    await first.commit();
    assert.equal(await second, undefined, 'nothing left to write');
    // And after an abort the next writer gets the ingest.
    const third = await s.openWriter(sha256Digest('y'), 1);
    assert.ok(third);
    const fourth = s.openWriter(sha256Digest('y'), 1);
    await third.abort();
    const w = await fourth;
    assert.ok(w);
    await w.abort();
  }));

test('concurrent writeBytes of one blob both succeed', () =>
  withStore(async (s) => {
    const data = Buffer.from('config blob');
    const digest = sha256Digest(data);
    await Promise.all([s.writeBytes(digest, data), s.writeBytes(digest, data), s.writeBytes(digest, data)]);
    assert.deepEqual(await s.readBytes(digest), data);
  }));

test('ingests untouched for longer than the limit are removed, fresh ones kept', () =>
  withStore(async (s, dir) => {
    const old = await s.openWriter(sha256Digest('old'), 3);
    await old!.append(Buffer.from('ol'));
    await old!.close();
    const fresh = await s.openWriter(sha256Digest('new'), 3);
    await fresh!.append(Buffer.from('ne'));
    await fresh!.close();
    const past = new Date(Date.now() - 2 * 86_400_000);
    await utimes(join(dir, 'ingest', digestHex(sha256Digest('old')), 'data'), past, past);
    assert.equal(await s.removeIngestsOlderThan(86_400_000), 1);
    assert.deepEqual(await s.listIngests(), [sha256Digest('new')]);
  }));

test('tap() writes what passes through it', () =>
  withStore(async (s, dir) => {
    const data = Buffer.alloc(200_000, 7);
    const digest = sha256Digest(data);
    const w = await openNew(s, digest, data.length);
    const tap = w.tap();
    const out: Buffer[] = [];
    tap.on('data', (c: Buffer) => out.push(c));
    const done = new Promise((r) => tap.on('end', r));
    tap.end(data);
    await done;
    await w.commit();
    assert.deepEqual(Buffer.concat(out), data);
    assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256')), [digestHex(digest)]);
  }));
