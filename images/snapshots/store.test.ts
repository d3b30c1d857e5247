// SnapshotStore on a temp dir: the prepare → commit/abort lifecycle, removal, crash leftovers and
// the overlay lowerdir order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotStore, type SnapshotInfo } from './store.js';

const chain = (c: string): string => 'sha256:' + c.repeat(64);

function info(chainID: string, extra: Partial<SnapshotInfo> = {}): SnapshotInfo {
  return { chainID, diffID: chainID, size: 1, createdAt: '2024-01-01T00:00:00.000Z', ...extra };
}

async function withStore(fn: (s: SnapshotStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-snapshots-'));
  try {
    const s = new SnapshotStore(join(dir, 'snapshots'));
    await s.init();
    await fn(s);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a prepared snapshot is invisible until commit, then listed with its files and info', () =>
  withStore(async (s) => {
    const p = await s.prepare();
    await writeFile(join(p.fs, 'hello'), 'world');
    assert.deepEqual(await s.list(), [], 'a preparation is not listed');
    assert.equal(await s.has(chain('a')), false);
    await s.commit(p, info(chain('a'), { parent: chain('b'), size: 5 }));
    assert.deepEqual(await s.list(), [chain('a')]);
    assert.equal(await s.has(chain('a')), true);
    assert.equal((await s.info(chain('a')))?.parent, chain('b'));
    assert.equal(await readFile(join(s.fsPath(chain('a')), 'hello'), 'utf8'), 'world');
    assert.deepEqual(await readdir(s.root), ['a'.repeat(64)], 'the preparation dir was renamed, not copied');
  }));

test('abort removes the preparation and commits nothing', () =>
  withStore(async (s) => {
    const p = await s.prepare();
    await writeFile(join(p.fs, 'f'), 'x');
    await s.abort(p);
    assert.deepEqual(await readdir(s.root), []);
    assert.deepEqual(await s.list(), []);
  }));

test('commit of a chainID that already exists keeps the first snapshot and removes the preparation', () =>
  withStore(async (s) => {
    const first = await s.prepare();
    await writeFile(join(first.fs, 'who'), 'first');
    await s.commit(first, info(chain('c'), { size: 111 }));
    const second = await s.prepare();
    await writeFile(join(second.fs, 'who'), 'second');
    await s.commit(second, info(chain('c'), { size: 222 }));
    assert.equal(await readFile(join(s.fsPath(chain('c')), 'who'), 'utf8'), 'first');
    assert.equal((await s.info(chain('c')))?.size, 111);
    assert.deepEqual(await readdir(s.root), ['c'.repeat(64)], 'no .prep-* left behind');
  }));

test('remove deletes a snapshot, leaves no rename target behind, and is idempotent', () =>
  withStore(async (s) => {
    for (const c of ['d', 'e']) {
      const p = await s.prepare();
      await mkdir(join(p.fs, 'deep', 'tree'), { recursive: true });
      await writeFile(join(p.fs, 'deep', 'tree', 'f'), c);
      await s.commit(p, info(chain(c)));
    }
    await s.remove(chain('d'));
    assert.equal(await s.has(chain('d')), false);
    assert.deepEqual(await s.list(), [chain('e')]);
    assert.deepEqual(await readdir(s.root), ['e'.repeat(64)], 'the renamed-away dir is gone too');
    await s.remove(chain('d'));
    await s.remove(chain('f'));
    assert.deepEqual(await s.list(), [chain('e')]);
  }));

test('a remove interrupted after its rename is invisible and cleaned as a stale preparation', () =>
  withStore(async (s) => {
    const p = await s.prepare();
    await s.commit(p, info(chain('a')));
    // What remove() leaves if the daemon dies between its rename and its rm.
    await rename(s.dir(chain('a')), join(s.root, '.prep-rm-0123456789abcdef'));
    assert.deepEqual(await s.list(), []);
    assert.equal(await s.removeStalePreparations(), 1);
    assert.deepEqual(await readdir(s.root), []);
  }));

test('removeStalePreparations removes every .prep-* dir and keeps committed snapshots', () =>
  withStore(async (s) => {
    const kept = await s.prepare();
    await s.commit(kept, info(chain('a')));
    const a = await s.prepare();
    const b = await s.prepare();
    await writeFile(join(a.fs, 'half'), 'written');
    assert.notEqual(a.dir, b.dir);
    assert.equal(await s.removeStalePreparations(), 2);
    assert.deepEqual(await readdir(s.root), ['a'.repeat(64)]);
    assert.equal(await s.removeStalePreparations(), 0);
  }));

test('list ignores preparations and anything that is not a chainID dir', () =>
  withStore(async (s) => {
    await s.prepare();
    await mkdir(join(s.root, 'not-a-digest'));
    await writeFile(join(s.root, 'A'.repeat(64)), '');
    const p = await s.prepare();
    await s.commit(p, info(chain('b')));
    assert.deepEqual(await s.list(), [chain('b')]);
  }));

test('lowerDirs lists a stack topmost first', () =>
  withStore(async (s) => {
    const stack = [chain('1'), chain('2'), chain('3')];
    assert.deepEqual(s.lowerDirs(stack), [s.fsPath(chain('3')), s.fsPath(chain('2')), s.fsPath(chain('1'))]);
    assert.equal(s.fsPath(chain('1')), join(s.root, '1'.repeat(64), 'fs'));
    assert.deepEqual(stack, [chain('1'), chain('2'), chain('3')], 'the caller\'s array is not reversed in place');
  }));

test('a chainID that is not a sha256 digest never becomes a path', () =>
  withStore(async (s) => {
    assert.throws(() => s.dir('sha256:../../etc'), /malformed digest/);
    await assert.rejects(s.remove('../x'), /malformed digest/);
  }));
