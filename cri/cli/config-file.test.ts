import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadContainerConfig } from './commands/config-file.js';

test('env values in a container config file are text, not base64 (crictl writes them so)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-cfg-'));
  try {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'metadata: {name: app}\nimage: {image: busybox}\nenvs:\n  - {key: GREETING, value: "hello world"}\n  - {key: N, value: "1"}\n');
    const c = await loadContainerConfig(path);
    assert.deepEqual(
      c.envs?.map((e) => [e.key, Buffer.from(e.value as Uint8Array).toString('utf8')]),
      [
        ['GREETING', 'hello world'],
        ['N', '1'],
      ],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
