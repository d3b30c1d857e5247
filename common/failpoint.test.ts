import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failpoint, resetFailpoints } from './failpoint.js';

test('a failpoint that is not armed returns at once; an armed one never does', async () => {
  const saved = process.env.SKIFF_FAILPOINTS;
  try {
    process.env.SKIFF_FAILPOINTS = 'container-after-start';
    resetFailpoints();
    await failpoint('sandbox-before-ready');
    const armed = failpoint('container-after-start');
    const outcome = await Promise.race([armed.then(() => 'returned'), new Promise((r) => setTimeout(() => r('waiting'), 100))]);
    assert.equal(outcome, 'waiting');
  } finally {
    if (saved === undefined) delete process.env.SKIFF_FAILPOINTS;
    else process.env.SKIFF_FAILPOINTS = saved;
    resetFailpoints();
  }
});
