import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findMonitors } from './host.js';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);

test('findMonitors lists this skiffd’s monitors by id, and nothing else', async () => {
  const proc = await mkdtemp(join(tmpdir(), 'skiff-proc-'));
  try {
    const fake = async (pid: string, argv: string[]): Promise<void> => {
      await mkdir(join(proc, pid));
      await writeFile(join(proc, pid, 'cmdline'), argv.join('\0') + '\0');
    };
    const ours = '/run/skiff/containers';
    await fake('100', ['/usr/lib/skiff/skiff-monitor', '--id', ID_A, '--log', '/x', '--exit-file', `${ours}/${ID_A}/exit.json`, '--', 'crun']);
    // Another skiffd's monitor (a test daemon beside the host's): never ours to stop.
    await fake('101', ['/usr/lib/skiff/skiff-monitor', '--id', ID_B, '--exit-file', `/tmp/other/run/containers/${ID_B}/exit.json`]);
    // An id that does not match its own exit file, a bad id, another program, a kernel thread.
    await fake('102', ['/usr/lib/skiff/skiff-monitor', '--id', ID_B, '--exit-file', `${ours}/${ID_A}/exit.json`]);
    await fake('103', ['skiff-monitor', '--id', 'nothex', '--exit-file', `${ours}/nothex/exit.json`]);
    await fake('104', ['/bin/sleep', '--id', ID_A, '--exit-file', `${ours}/${ID_A}/exit.json`]);
    await fake('105', []);
    await mkdir(join(proc, 'self'));
    assert.deepEqual([...(await findMonitors(ours, proc))], [[ID_A, 100]]);
  } finally {
    await rm(proc, { recursive: true, force: true });
  }
});
