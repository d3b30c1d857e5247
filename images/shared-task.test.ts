import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedTasks } from './shared-task.js';
import { SkiffError, isSkiffError } from '../common/errors.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('concurrent callers of one key share one run', async () => {
  const tasks = new SharedTasks<number>();
  let runs = 0;
  const gate = deferred<void>();
  const fn = async () => {
    runs++;
    await gate.promise;
    return 42;
  };
  const a = tasks.run('k', new AbortController().signal, fn);
  const b = tasks.run('k', new AbortController().signal, fn);
  gate.resolve();
  assert.deepEqual(await Promise.all([a, b]), [42, 42]);
  assert.equal(runs, 1);
  assert.equal(tasks.size, 0);
});

test('one caller leaving does not cancel the task for the others', async () => {
  const tasks = new SharedTasks<string>();
  const gate = deferred<void>();
  let taskSignal: AbortSignal | undefined;
  const fn = async (s: AbortSignal) => {
    taskSignal = s;
    await gate.promise;
    return 'done';
  };
  const c1 = new AbortController();
  const a = tasks.run('k', c1.signal, fn);
  const b = tasks.run('k', new AbortController().signal, fn);
  c1.abort(new SkiffError('SKIFF_DEADLINE_EXCEEDED', 'deadline'));
  await assert.rejects(a, (e: unknown) => isSkiffError(e, 'SKIFF_DEADLINE_EXCEEDED'));
  await new Promise((r) => setImmediate(r));
  assert.equal(taskSignal?.aborted, false);
  gate.resolve();
  assert.equal(await b, 'done');
});

test('the task is aborted when its last caller leaves, and a new caller starts afresh', async () => {
  const tasks = new SharedTasks<string>();
  let aborted = false;
  const fn = (s: AbortSignal) =>
    new Promise<string>((_resolve, reject) => {
      s.addEventListener('abort', () => {
        aborted = true;
        reject(new Error('stopped'));
      });
    });
  const c = new AbortController();
  const a = tasks.run('k', c.signal, fn);
  await new Promise((r) => setImmediate(r)); // let the task start
  c.abort();
  await assert.rejects(a, (e: unknown) => isSkiffError(e, 'SKIFF_CANCELLED'));
  assert.equal(aborted, true);
  assert.equal(tasks.has('k'), false);
  assert.equal(await tasks.run('k', new AbortController().signal, async () => 'fresh'), 'fresh');
});

test('an already-aborted signal never starts the task', async () => {
  const tasks = new SharedTasks<number>();
  const c = new AbortController();
  c.abort();
  let ran = false;
  await assert.rejects(tasks.run('k', c.signal, async () => ((ran = true), 1)));
  assert.equal(ran, false);
});
