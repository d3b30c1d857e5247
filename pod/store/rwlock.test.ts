import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedRWLock } from './rwlock.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('readers share, a writer waits for them and excludes everyone, keys are independent', async () => {
  const lock = new KeyedRWLock();
  const log: string[] = [];
  let releaseA!: () => void;
  const a = lock.read('pod', () => new Promise<void>((r) => (releaseA = () => (log.push('a done'), r()))));
  const b = lock.read('pod', async () => void log.push('b ran'));
  await tick();
  assert.deepEqual(log, ['b ran'], 'a second reader runs beside the first');
  const w = lock.write('pod', async () => void log.push('writer ran'));
  const late = lock.read('pod', async () => void log.push('late reader ran'));
  const other = lock.write('other-pod', async () => void log.push('other ran'));
  await tick();
  assert.deepEqual(log, ['b ran', 'other ran'], 'the writer waits for a; the late reader waits for the writer');
  releaseA();
  await Promise.all([a, b, w, late, other]);
  assert.deepEqual(log, ['b ran', 'other ran', 'a done', 'writer ran', 'late reader ran']);
});

test('a failing holder still releases the lock', async () => {
  const lock = new KeyedRWLock();
  await assert.rejects(lock.write('k', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await lock.read('k', async () => 'ok'), 'ok');
});
