import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NameRegistry, fingerprint } from './names.js';
import { rejectsWith } from '../../common/assert-error.js';

test('a retry with the same request while the first call runs gets the same id', async () => {
  const names = new NameRegistry('sandbox');
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let runs = 0;
  const create = async (): Promise<string> => {
    runs++;
    await gate;
    return 'a'.repeat(64);
  };
  const first = names.reserve('web_default_uid_0', 'fp1', create);
  const retry = names.reserve('web_default_uid_0', 'fp1', create);
  release();
  assert.deepEqual(await first, { id: 'a'.repeat(64), created: true });
  assert.deepEqual(await retry, { id: 'a'.repeat(64), created: false });
  assert.equal(runs, 1);
  // And after it finished, too.
  assert.deepEqual(await names.reserve('web_default_uid_0', 'fp1', create), { id: 'a'.repeat(64), created: false });
});

test('the same name with a different request is ALREADY_EXISTS naming the holder', async () => {
  const names = new NameRegistry('sandbox');
  await names.reserve('n', 'fp1', async () => 'b'.repeat(64));
  await rejectsWith(names.reserve('n', 'fp2', async () => 'c'.repeat(64)), 'SKIFF_ALREADY_EXISTS', new RegExp(`in use by sandbox ${'b'.repeat(64)}`));
});

test('a failed call frees the name for the next one', async () => {
  const names = new NameRegistry('container');
  await assert.rejects(names.reserve('n', 'fp', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(names.holder('n'), undefined);
  assert.deepEqual(await names.reserve('n', 'fp', async () => 'd'.repeat(64)), { id: 'd'.repeat(64), created: true });
});

test('release frees only the holder', async () => {
  const names = new NameRegistry('container');
  names.restore('n', 'e'.repeat(64), 'fp');
  names.release('n', 'f'.repeat(64));
  assert.equal(names.holder('n'), 'e'.repeat(64));
  names.release('n', 'e'.repeat(64));
  assert.equal(names.holder('n'), undefined);
});

test('fingerprint ignores key order and undefined fields', () => {
  assert.equal(fingerprint({ a: 1, b: { c: [1, 2], d: 'x' } }), fingerprint({ b: { d: 'x', c: [1, 2] }, a: 1, e: undefined }));
  assert.notEqual(fingerprint({ a: [1, 2] }), fingerprint({ a: [2, 1] }));
});
