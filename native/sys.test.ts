import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, lstat, open, readFile, writeFile, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  syncFilesystem,
  mount,
  unmount,
  MS_NOSUID,
  MS_NODEV,
  linuxSyscalls as sys,
  makedev,
  RecordingSyscalls,
  LOCK_EX,
  LOCK_NB,
  LOCK_UN,
  S_IFCHR,
  type SyscallError,
} from './sys.js';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-sys-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void test('makedev matches glibc encoding', () => {
  assert.equal(makedev(0, 0), 0n);
  assert.equal(makedev(1, 3), 0x103n); // /dev/null
  assert.equal(makedev(259, 0x12345), (0x103n << 8n) | 0x45n | (0x123n << 20n));
  assert.equal(makedev(0x1000, 0), 0x1000n << 32n);
});

void test('mknod creates a char device 0/0 (an overlay whiteout) and mkfifo a fifo', async () => {
  await withTempDir(async (dir) => {
    const wh = join(dir, 'wh');
    sys.mknod(wh, S_IFCHR | 0o600, makedev(0, 0));
    const st = await lstat(wh);
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, 0);
    assert.equal(st.mode & 0o777, 0o600 & ~process.umask());

    const null2 = join(dir, 'null');
    sys.mknod(null2, S_IFCHR | 0o666, makedev(1, 3));
    assert.equal((await lstat(null2)).rdev, Number(makedev(1, 3)));

    const fifo = join(dir, 'fifo');
    sys.mkfifo(fifo, 0o640);
    assert.ok((await lstat(fifo)).isFIFO());
  });
});

void test('mknod of an existing path fails with EEXIST like node:fs', async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, 'x');
    await writeFile(p, '');
    assert.throws(
      () => sys.mkfifo(p, 0o600),
      (err: SyscallError) => {
        assert.equal(err.code, 'EEXIST');
        assert.equal(err.errno, -17);
        assert.equal(err.syscall, 'mknod');
        assert.equal(err.path, p);
        assert.match(err.message, /EEXIST/);
        return true;
      },
    );
  });
});

void test('xattrs round trip in the trusted. and user. namespaces, binary values intact', async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, 'f');
    await writeFile(p, 'x');
    const binary = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0xff, 0x00, 0x7f]);
    sys.lsetxattr(p, 'trusted.overlay.opaque', Buffer.from('y'));
    sys.lsetxattr(p, 'user.skiff.test', binary);
    assert.deepEqual(sys.lgetxattr(p, 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(sys.lgetxattr(p, 'user.skiff.test'), binary);
    assert.deepEqual(sys.llistxattr(p).sort(), ['trusted.overlay.opaque', 'user.skiff.test']);
    assert.equal(sys.lgetxattr(p, 'user.absent'), undefined);
    sys.lsetxattr(p, 'user.empty', Buffer.alloc(0));
    assert.deepEqual(sys.lgetxattr(p, 'user.empty'), Buffer.alloc(0));
  });
});

void test('lsetxattr acts on a symlink itself, never its target', async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, 'target');
    await writeFile(target, '');
    const link = join(dir, 'link');
    await symlink(target, link);
    // user.* is not allowed on symlinks; trusted.* is, for root.
    assert.throws(() => sys.lsetxattr(link, 'user.x', Buffer.from('1')), { code: 'EPERM' });
    sys.lsetxattr(link, 'trusted.skiff', Buffer.from('1'));
    assert.deepEqual(sys.lgetxattr(link, 'trusted.skiff'), Buffer.from('1'));
    assert.equal(sys.lgetxattr(target, 'trusted.skiff'), undefined);
  });
});

void test('xattr calls on a missing path fail with ENOENT', () => {
  const p = join(tmpdir(), 'skiff-sys-does-not-exist');
  assert.throws(() => sys.lgetxattr(p, 'user.x'), { code: 'ENOENT', syscall: 'lgetxattr', path: p });
  assert.throws(() => sys.llistxattr(p), { code: 'ENOENT', syscall: 'llistxattr' });
  assert.throws(() => sys.lsetxattr(p, 'user.x', Buffer.from('1')), { code: 'ENOENT', syscall: 'lsetxattr' });
});

void test('flock exclusive twice from two fds: the second fails with EWOULDBLOCK', async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, 'lock');
    await writeFile(p, '');
    const a = await open(p, 'r');
    const b = await open(p, 'r');
    try {
      sys.flock(a.fd, LOCK_EX | LOCK_NB);
      assert.throws(() => sys.flock(b.fd, LOCK_EX | LOCK_NB), { code: 'EWOULDBLOCK', syscall: 'flock' });
      sys.flock(a.fd, LOCK_UN);
      sys.flock(b.fd, LOCK_EX | LOCK_NB);
    } finally {
      await a.close();
      await b.close();
    }
    assert.throws(() => sys.flock(a.fd, LOCK_EX | LOCK_NB), { code: 'EBADF' });
  });
});

void test('RecordingSyscalls records calls, keeps xattrs and fails on cue', async () => {
  await withTempDir(async (dir) => {
    const fake = new RecordingSyscalls();
    const p = join(dir, 'wh');
    fake.mknod(p, S_IFCHR, 0n);
    assert.ok((await lstat(p)).isFile(), 'placeholder, not a device');
    fake.lsetxattr(p, 'trusted.overlay.opaque', Buffer.from('y'));
    assert.deepEqual(fake.lgetxattr(p, 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(fake.llistxattr(p), ['trusted.overlay.opaque']);
    assert.deepEqual(fake.callsOf('mknod'), [[p, S_IFCHR, 0n]]);
    fake.failOn('lsetxattr', 'ENOTSUP');
    assert.throws(() => fake.lsetxattr(p, 'user.x', Buffer.alloc(0)), { code: 'ENOTSUP', errno: -95 });
    assert.throws(() => fake.mknod(p, S_IFCHR, 0n), { code: 'EEXIST' });

    const none = new RecordingSyscalls({ placeholders: false });
    none.mkfifo(join(dir, 'fifo'), 0o600);
    await assert.rejects(lstat(join(dir, 'fifo')), { code: 'ENOENT' });
  });
});

test('syncFilesystem succeeds on a directory and names a missing path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-syncfs-'));
  try {
    await writeFile(join(dir, 'f'), 'data');
    assert.equal(await syncFilesystem(dir), undefined);
    await assert.rejects(syncFilesystem(join(dir, 'missing')), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('mount and unmount a tmpfs; unmounting twice is fine; errors name the target', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-mount-'));
  try {
    mount('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV, 'size=1m,mode=0700');
    const mounted = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === dir);
    assert.ok(mounted, 'the tmpfs shows up in mountinfo');
    unmount(dir);
    unmount(dir);
    const still = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === dir);
    assert.equal(still, false);
    assert.throws(() => mount('none', join(dir, 'missing'), 'tmpfs', 0, null), (e: Error & { code?: string }) => e.code === 'ENOENT' && e.message.includes('missing'));
  } finally {
    unmount(dir);
    await rm(dir, { recursive: true, force: true });
  }
});
