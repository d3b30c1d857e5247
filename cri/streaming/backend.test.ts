import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TerminalResizes, type TerminalSize } from './backend.js';

test('TerminalResizes hands the latest size to a listener added after it came, then every new one', async () => {
  const r = new TerminalResizes();
  r.push({ width: 80, height: 24 });
  r.push({ width: 99, height: 33 });
  const seen: TerminalSize[] = [];
  r.on('resize', (s) => seen.push(s));
  await Promise.resolve();
  r.push({ width: 120, height: 40 });
  assert.deepEqual(seen, [
    { width: 99, height: 33 },
    { width: 120, height: 40 },
  ]);
});

test('TerminalResizes without a size yet replays nothing', async () => {
  const r = new TerminalResizes();
  const seen: TerminalSize[] = [];
  r.on('resize', (s) => seen.push(s));
  await Promise.resolve();
  assert.deepEqual(seen, []);
});
