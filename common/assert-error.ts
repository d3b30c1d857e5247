// Test assertion shared by unit tests: a promise rejects with a SkiffError of one code (and,
// optionally, a message). Lives beside the error table it asserts on.
import assert from 'node:assert/strict';
import { isSkiffError, type ErrorCode } from './errors.js';

export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp | string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isSkiffError(err, code), `want ${code}, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  });
}
