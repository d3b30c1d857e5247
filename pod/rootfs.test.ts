import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountRootfs, overlayOptions, readInRoot, unmountRootfs } from './rootfs.js';
import { isSkiffError } from '../common/errors.js';

async function withDir(fn: (d: string) => Promise<void>): Promise<void> {
  const d = await mkdtemp(join(tmpdir(), 'skiff-rootfs-'));
  try {
    await fn(d);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
}

test('readInRoot resolves symlinks inside the root, never on the host', () =>
  withDir(async (root) => {
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(join(root, 'real'), { recursive: true });
    await writeFile(join(root, 'real', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    await symlink('/real/passwd', join(root, 'etc', 'passwd')); // absolute: root-relative
    await symlink('../real', join(root, 'etc', 'rel'));
    await symlink('/etc/hostname', join(root, 'etc', 'host-escape')); // host file name, absent in root
    await symlink('../../../../../../etc', join(root, 'up'));
    assert.equal(await readInRoot(root, '/etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await readInRoot(root, 'etc/rel/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    assert.equal(await readInRoot(root, '/etc/host-escape'), undefined, 'not the host /etc/hostname');
    assert.equal(await readInRoot(root, '/up/passwd'), 'root:x:0:0::/root:/bin/sh\n', '.. stops at the root');
    assert.equal(await readInRoot(root, '/etc/group'), undefined);
    await symlink('loop', join(root, 'loop'));
    await assert.rejects(readInRoot(root, '/loop'), /too many levels/);
  }));

test('overlay options are refused when they would not fit or contain separators', () => {
  const p = { target: '/t', upperDir: '/u', workDir: '/w', lowerDirs: ['/a', '/b'] };
  assert.equal(overlayOptions(p), 'lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off');
  assert.throws(() => overlayOptions({ ...p, lowerDirs: Array.from({ length: 100 }, () => '/x'.repeat(30)) }), (e: unknown) => isSkiffError(e, 'SKIFF_INVALID_ARGUMENT'));
  assert.throws(() => overlayOptions({ ...p, upperDir: '/a,b' }), (e: unknown) => isSkiffError(e, 'SKIFF_INTERNAL'));
});

test('an overlay rootfs shows the lower layers and writes to the upper dir', () =>
  withDir(async (d) => {
    const lower1 = join(d, 'l1');
    const lower2 = join(d, 'l2');
    await mkdir(lower1);
    await mkdir(lower2);
    await writeFile(join(lower1, 'a'), 'bottom');
    await writeFile(join(lower2, 'a'), 'top');
    const p = { target: join(d, 'rootfs'), upperDir: join(d, 'upper'), workDir: join(d, 'work'), lowerDirs: [lower2, lower1] };
    await mountRootfs(p);
    try {
      assert.equal(await readFile(join(p.target, 'a'), 'utf8'), 'top');
      await writeFile(join(p.target, 'new'), 'w');
      assert.equal(await readFile(join(p.upperDir, 'new'), 'utf8'), 'w');
    } finally {
      unmountRootfs(p.target);
    }
    unmountRootfs(p.target);
  }));
