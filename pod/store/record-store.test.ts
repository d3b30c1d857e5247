import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordStore } from './record-store.js';
import { rejectsWith } from '../../common/assert-error.js';

interface Rec {
  version: 1;
  id: string;
  state: string;
  n: number;
}

const ID = 'a'.repeat(64);

async function withStore(fn: (s: RecordStore<Rec>, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-records-'));
  try {
    const s = new RecordStore<Rec>(dir, 'container', 1);
    await s.load();
    await fn(s, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('records persist before they are visible and survive a reload', () =>
  withStore(async (s, dir) => {
    await s.create({ version: 1, id: ID, state: 'created', n: 0 });
    await s.update(ID, (r) => {
      r.state = 'running';
    });
    const again = new RecordStore<Rec>(dir, 'container', 1);
    assert.deepEqual(await again.load(), { loaded: 1, broken: [] });
    assert.equal(again.get(ID)?.state, 'running');
  }));

test('a throwing update changes nothing, on disk or in memory', () =>
  withStore(async (s, dir) => {
    await s.create({ version: 1, id: ID, state: 'created', n: 0 });
    await assert.rejects(
      s.update(ID, (r) => {
        r.state = 'half';
        throw new Error('refused');
      }),
      /refused/,
    );
    assert.equal(s.get(ID)?.state, 'created');
    const again = new RecordStore<Rec>(dir, 'container', 1);
    await again.load();
    assert.equal(again.get(ID)?.state, 'created');
  }));

test('concurrent updates of one record are serialized (no lost update)', () =>
  withStore(async (s) => {
    await s.create({ version: 1, id: ID, state: 'x', n: 0 });
    await Promise.all(
      Array.from({ length: 20 }, () =>
        s.update(ID, async (r) => {
          const n = r.n;
          await new Promise((res) => setImmediate(res));
          r.n = n + 1;
        }),
      ),
    );
    assert.equal(s.get(ID)?.n, 20);
  }));

test('get returns a copy; create refuses duplicates; update of a missing id is NOT_FOUND; delete is idempotent', () =>
  withStore(async (s, dir) => {
    await s.create({ version: 1, id: ID, state: 'x', n: 0 });
    s.get(ID)!.state = 'mutated';
    assert.equal(s.get(ID)?.state, 'x');
    await rejectsWith(s.create({ version: 1, id: ID, state: 'y', n: 0 }), 'SKIFF_ALREADY_EXISTS');
    await rejectsWith(s.update('b'.repeat(64), () => undefined), 'SKIFF_NOT_FOUND');
    await s.delete(ID);
    await s.delete(ID);
    assert.deepEqual(await readdir(dir), []);
    await rejectsWith(s.create({ version: 1, id: '../x', state: 'y', n: 0 }), 'SKIFF_INVALID_ARGUMENT');
  }));

test('load skips unreadable records and removes temp files of a crashed write', () =>
  withStore(async (s, dir) => {
    await writeFile(join(dir, `${'c'.repeat(64)}.json`), '{not json');
    await writeFile(join(dir, `.${'d'.repeat(64)}.json.123abc.tmp`), '{}');
    await writeFile(join(dir, `${'e'.repeat(64)}.json`), JSON.stringify({ version: 2, id: 'e'.repeat(64) }));
    const r = await s.load();
    assert.equal(r.loaded, 0);
    assert.deepEqual(r.broken.sort(), [`${'c'.repeat(64)}.json`, `${'e'.repeat(64)}.json`]);
    assert.ok(!(await readdir(dir)).some((n) => n.endsWith('.tmp')));
  }));

test('find takes a full id or a unique prefix; an ambiguous prefix is an error', () =>
  withStore(async (s) => {
    await s.create({ version: 1, id: 'ab' + 'c'.repeat(62), state: 'x', n: 0 });
    await s.create({ version: 1, id: 'ab' + 'd'.repeat(62), state: 'y', n: 0 });
    assert.equal(s.find('ab' + 'c'.repeat(62))?.state, 'x');
    assert.equal(s.find('abd')?.state, 'y');
    assert.equal(s.find('ffff'), undefined);
    assert.equal(s.find('not-hex'), undefined);
    assert.throws(() => s.find('ab'), /container id prefix "ab" is ambiguous/);
  }));
