// The detach sequence filter (ctrl-p ctrl-q) over input split every which way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detachFilter } from './terminal.js';

async function filter(chunks: string[]): Promise<{ out: string; detached: boolean }> {
  let detached = false;
  const f = detachFilter(() => (detached = true));
  const parts: Buffer[] = [];
  f.on('data', (b: Buffer) => parts.push(b));
  const ended = new Promise((resolve) => f.once('end', resolve));
  for (const c of chunks) f.write(Buffer.from(c, 'latin1'));
  f.end();
  await ended;
  return { out: Buffer.concat(parts).toString('latin1'), detached };
}

test('ctrl-p ctrl-q detaches and drops what follows; anything else passes through as typed', async () => {
  const P = '\x10';
  const Q = '\x11';
  const table: [string[], string, boolean][] = [
    [['abc'], 'abc', false],
    [[`a${P}${Q}b`], 'a', true],
    [[`a${P}`, `${Q}b`, 'more'], 'a', true],
    [[`${P}x`], `${P}x`, false],
    [[P, 'x'], `${P}x`, false],
    [[`${P}${P}${Q}`], P, true],
    [[P, P, Q], P, true],
    [[`x${P}`], `x${P}`, false],
    [[Q, P], `${Q}${P}`, false],
    [['\x03\x04'], '\x03\x04', false],
  ];
  for (const [chunks, out, detached] of table) {
    assert.deepEqual(await filter(chunks), { out, detached }, JSON.stringify(chunks));
  }
});
