import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import * as zlib from 'node:zlib';
import { pack } from 'tar-stream';
import { applyLayer, unpackLayer } from './apply.js';
import { MediaType } from '../oci.js';
import { isSkiffError, Status, type ErrorCode } from '../../common/errors.js';
import { linuxSyscalls as sys, RecordingSyscalls, S_IFCHR, makedev } from '../../native/sys.js';
import { makeTar, sandbox, type TarEntry, type Sandbox } from './tar-fixture.test-helper.js';

const LAYER = 'sha256:' + 'ab'.repeat(32);
const T1 = new Date('2020-01-02T03:04:05Z');
const T2 = new Date('2021-06-07T08:09:10Z');

async function withSandbox(fn: (s: Sandbox) => Promise<void>): Promise<void> {
  const s = await sandbox();
  try {
    await fn(s);
  } finally {
    await s.cleanup();
  }
}

function apply(tar: Buffer, root: string, opts: { sys?: RecordingSyscalls; signal?: AbortSignal } = {}) {
  return applyLayer(Readable.from([tar]), root, { layer: LAYER, ...opts });
}

function rejectsWith(code: ErrorCode, ...words: string[]) {
  return (err: unknown): boolean => {
    assert.ok(isSkiffError(err, code), `expected ${code}, got ${String(err)}`);
    assert.ok(err.message.includes(LAYER), `message names the layer: ${err.message}`);
    for (const w of words) assert.ok(err.message.includes(w), `message mentions ${w}: ${err.message}`);
    return true;
  };
}

// A valid VFS_CAP_REVISION_2 value granting CAP_SETFCAP (bit 31): byte 0x80 is not UTF-8 on its own.
const CAP_SETFCAP = Buffer.from([0x01, 0, 0, 0x02, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const CAP_MARKER = 'CAPMARK_'.repeat(2) + 'CAPM'; // 20 bytes, patched into the raw tar

void test('a tree of files, dirs, symlinks, a hardlink, a fifo and a device keeps modes, owners, times and xattrs', async () => {
  await withSandbox(async ({ root }) => {
    const entries: TarEntry[] = [
      { header: { name: 'etc/', type: 'directory', mode: 0o755, mtime: T1 } },
      { header: { name: 'etc/passwd', mode: 0o644, uid: 1000, gid: 1000, mtime: T2 }, body: 'root:x:0:0\n' },
      { header: { name: 'bin/', type: 'directory', mode: 0o755, mtime: T1 } },
      {
        header: {
          name: 'bin/su',
          mode: 0o4755,
          mtime: T2,
          pax: { 'SCHILY.xattr.security.capability': CAP_MARKER, 'SCHILY.xattr.user.note': 'hello', mtime: '1623053350.25' },
        },
        body: Buffer.from('#!/bin/su\n'),
      },
      { header: { name: 'bin/su2', type: 'link', linkname: 'bin/su' } },
      { header: { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 1000, gid: 1000, mtime: T1 } },
      { header: { name: 'tmp/', type: 'directory', mode: 0o1777, mtime: T2 } },
      { header: { name: 'run/fifo', type: 'fifo', mode: 0o600, uid: 1000, gid: 1000, mtime: T1 } },
      { header: { name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3, mtime: T1 } },
      { header: { name: './sgid', mode: 0o2750, gid: 1000, mtime: T1 }, body: '' },
    ];
    const tar = await makeTar(entries, [[CAP_MARKER, CAP_SETFCAP]]);
    const result = await apply(tar, root);
    assert.deepEqual(result, { entries: entries.length, size: 'root:x:0:0\n'.length + '#!/bin/su\n'.length });

    const passwd = await lstat(join(root, 'etc/passwd'));
    assert.equal(passwd.mode & 0o7777, 0o644);
    assert.equal(passwd.uid, 1000);
    assert.equal(passwd.gid, 1000);
    assert.equal(passwd.mtimeMs, T2.getTime());
    assert.equal(await readFile(join(root, 'etc/passwd'), 'utf8'), 'root:x:0:0\n');
    // directory times are set last, after their children were written
    assert.equal((await lstat(join(root, 'etc'))).mtimeMs, T1.getTime());

    const su = await lstat(join(root, 'bin/su'));
    assert.equal(su.mode & 0o7777, 0o4755, 'setuid survives (chmod after chown)');
    assert.equal(su.nlink, 2);
    assert.equal(su.mtimeMs, 1623053350250, 'PAX sub-second mtime');
    assert.equal((await lstat(join(root, 'bin/su2'))).ino, su.ino);
    assert.deepEqual(sys.lgetxattr(join(root, 'bin/su'), 'security.capability'), CAP_SETFCAP, 'binary xattr bytes intact');
    assert.deepEqual(sys.lgetxattr(join(root, 'bin/su'), 'user.note'), Buffer.from('hello'));
    assert.equal((await lstat(join(root, 'sgid'))).mode & 0o7777, 0o2750);

    const sh = await lstat(join(root, 'bin/sh'));
    assert.ok(sh.isSymbolicLink());
    assert.equal(await readlink(join(root, 'bin/sh')), '/bin/busybox');
    assert.equal(sh.uid, 1000);
    assert.equal(sh.mtimeMs, T1.getTime());

    assert.equal((await lstat(join(root, 'tmp'))).mode & 0o7777, 0o1777);
    const fifo = await lstat(join(root, 'run/fifo'));
    assert.ok(fifo.isFIFO());
    assert.equal(fifo.mode & 0o7777, 0o600);
    assert.equal(fifo.uid, 1000);
    const dev = await lstat(join(root, 'dev/null'));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, Number(makedev(1, 3)));
    assert.equal(dev.mode & 0o7777, 0o666, 'exact mode, not filtered by the umask');
    // a parent created implicitly (run/, dev/) is a plain 0755 directory
    assert.equal((await lstat(join(root, 'run'))).mode & 0o7777, 0o755);
  });
});

void test('whiteouts become 0/0 character devices and opaque markers a trusted.overlay.opaque xattr', async () => {
  await withSandbox(async ({ root }) => {
    const tar = await makeTar([
      { header: { name: 'a/', type: 'directory' } },
      { header: { name: 'a/.wh.gone', uid: 1000, gid: 1001 }, body: '' },
      { header: { name: '.wh.top' }, body: '' },
      { header: { name: 'b/.wh..wh..opq' }, body: '' }, // parent not in the tar: created
      { header: { name: 'c/', type: 'directory', mode: 0o750 } },
      { header: { name: 'c/.wh..wh..opq' }, body: '' },
      { header: { name: 'c/kept' }, body: 'mine' }, // opaque hides lower layers only
      { header: { name: 'd/.wh..wh.plnk' }, body: '' }, // reserved: ignored
      { header: { name: 'e/same' }, body: 'this layer' },
      { header: { name: 'e/.wh.same' }, body: '' }, // a whiteout never hides its own layer's file
    ]);
    const result = await apply(tar, root);
    assert.equal(result.entries, 10);

    for (const [p, uid, gid] of [['a/gone', 1000, 1001], ['top', 0, 0]] as const) {
      const st = await lstat(join(root, p));
      assert.ok(st.isCharacterDevice(), p);
      assert.equal(st.rdev, 0);
      assert.equal(st.uid, uid);
      assert.equal(st.gid, gid);
    }
    assert.deepEqual(sys.lgetxattr(join(root, 'b'), 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(sys.lgetxattr(join(root, 'c'), 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.equal((await lstat(join(root, 'c'))).mode & 0o7777, 0o750);
    assert.equal(await readFile(join(root, 'c/kept'), 'utf8'), 'mine');
    assert.equal(sys.lgetxattr(join(root, 'a'), 'trusted.overlay.opaque'), undefined);
    assert.deepEqual(await readdir(join(root, 'd')), []);
    assert.equal(await readFile(join(root, 'e/same'), 'utf8'), 'this layer');
    const all = await readdir(root, { recursive: true });
    assert.ok(!all.some((p) => p.includes('.wh.')), `no .wh. names on disk: ${all.join(', ')}`);
  });
});

void test('overlay control and host-specific xattrs from a layer are not applied', async () => {
  await withSandbox(async ({ root }) => {
    const tar = await makeTar([
      {
        header: {
          name: 'd/',
          type: 'directory',
          pax: {
            'SCHILY.xattr.trusted.overlay.redirect': '/elsewhere',
            'SCHILY.xattr.trusted.overlay.opaque': 'y',
            'SCHILY.xattr.security.selinux': 'system_u:object_r:etc_t:s0',
            'SCHILY.xattr.trusted.skiff': 'kept',
          },
        },
      },
    ]);
    await apply(tar, root);
    assert.deepEqual(sys.llistxattr(join(root, 'd')), ['trusted.skiff']);
  });
});

void test('a later entry for the same path replaces the earlier one', async () => {
  await withSandbox(async ({ root }) => {
    const tar = await makeTar([
      { header: { name: 'x' }, body: 'file' },
      { header: { name: 'x/', type: 'directory' } },
      { header: { name: 'x/inner' }, body: 'in' },
      { header: { name: 'y/', type: 'directory', mode: 0o700 } },
      { header: { name: 'y/child' }, body: 'c' },
      { header: { name: 'y/', type: 'directory', mode: 0o755 } }, // metadata update keeps children
      { header: { name: 'z/', type: 'directory' } },
      { header: { name: 'z/child' }, body: 'c' },
      { header: { name: 'z', type: 'symlink', linkname: 'target' } },
    ]);
    await apply(tar, root);
    assert.equal(await readFile(join(root, 'x/inner'), 'utf8'), 'in');
    assert.equal((await stat(join(root, 'y'))).mode & 0o777, 0o755);
    assert.equal(await readFile(join(root, 'y/child'), 'utf8'), 'c');
    assert.equal(await readlink(join(root, 'z')), 'target');
  });
});

void test('a/../b is normalized and lands inside the root', async () => {
  await withSandbox(async ({ root }) => {
    await apply(await makeTar([{ header: { name: './a/../b' }, body: 'b' }]), root);
    assert.equal(await readFile(join(root, 'b'), 'utf8'), 'b');
  });
});

const unsafe: [string, (outside: string) => TarEntry[], string][] = [
  ['../x', () => [{ header: { name: '../x' }, body: 'x' }], '"../x"'],
  ['/etc/x', () => [{ header: { name: '/etc/skiff-unpack-test-x' }, body: 'x' }], 'absolute'],
  ['a/../../x', () => [{ header: { name: 'a/../../x' }, body: 'x' }], 'climbs out'],
  [
    'symlink evil -> outside, then evil/file',
    (outside) => [
      { header: { name: 'evil', type: 'symlink', linkname: outside } },
      { header: { name: 'evil/file' }, body: 'x' },
    ],
    'symlink',
  ],
  [
    'symlink up -> .., then up/x',
    () => [
      { header: { name: 'up', type: 'symlink', linkname: '..' } },
      { header: { name: 'up/outside/x' }, body: 'x' },
    ],
    'symlink',
  ],
  [
    'a directory replaced by a symlink, then written through',
    (outside) => [
      { header: { name: 'd/', type: 'directory' } },
      { header: { name: 'd', type: 'symlink', linkname: outside } },
      { header: { name: 'd/x' }, body: 'x' },
    ],
    'symlink',
  ],
  ['hardlink ../../etc/passwd', () => [{ header: { name: 'h', type: 'link', linkname: '../../etc/passwd' } }], 'hardlink'],
  ['hardlink /etc/passwd', () => [{ header: { name: 'h', type: 'link', linkname: '/etc/passwd' } }], 'hardlink'],
  ['hardlink to a path not in the layer', () => [{ header: { name: 'h', type: 'link', linkname: 'etc/passwd' } }], 'not an earlier entry'],
  [
    'hardlink through a parent replaced by a symlink',
    (outside) => [
      { header: { name: 'p/secret' }, body: 'x' },
      { header: { name: 'p', type: 'symlink', linkname: outside } },
      { header: { name: 'h', type: 'link', linkname: 'p/secret' } },
    ],
    'hardlink',
  ],
  ['whiteout .wh..', () => [{ header: { name: 'a/.wh..' }, body: '' }], 'whiteout'],
  ['whiteout through ..', () => [{ header: { name: '../.wh.outside' }, body: '' }], 'climbs out'],
  ['NUL in a name', () => [{ header: { name: 'a', pax: { path: 'a\0b' } }, body: 'x' }], 'NUL'],
];

for (const [what, entries, words] of unsafe) {
  void test(`unsafe layer rejected, nothing written outside root: ${what}`, async () => {
    await withSandbox(async ({ base, root, outside }) => {
      const tar = await makeTar(entries(outside));
      await assert.rejects(apply(tar, root), rejectsWith('SKIFF_LAYER_UNSAFE', words));
      assert.deepEqual((await readdir(base)).sort(), ['outside', 'root']);
      assert.deepEqual(await readdir(outside), ['secret']);
      assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'secret');
      assert.ok(!existsSync('/etc/skiff-unpack-test-x'));
    });
  });
}

void test('a truncated tar is SKIFF_LAYER_INVALID and the fd of the file being written is closed', async () => {
  await withSandbox(async ({ root }) => {
    const tar = await makeTar([{ header: { name: 'f' }, body: Buffer.alloc(100_000, 1) }]);
    const fdsBefore = (await readdir('/proc/self/fd')).length;
    await assert.rejects(apply(tar.subarray(0, 50_000), root), rejectsWith('SKIFF_LAYER_INVALID'));
    assert.equal((await readdir('/proc/self/fd')).length, fdsBefore);
  });
});

void test('garbage instead of a tar is SKIFF_LAYER_INVALID', async () => {
  await withSandbox(async ({ root }) => {
    await assert.rejects(apply(Buffer.alloc(2048, 0x41), root), rejectsWith('SKIFF_LAYER_INVALID'));
  });
});

void test('applying to a non-empty root is refused', async () => {
  await withSandbox(async ({ base }) => {
    await assert.rejects(apply(await makeTar([]), base), (err) => isSkiffError(err, 'SKIFF_FAILED_PRECONDITION'));
  });
});

function sha256(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

const layerEntries: TarEntry[] = [
  { header: { name: 'usr/', type: 'directory' } },
  { header: { name: 'usr/data' }, body: Buffer.alloc(300_000, 'z') },
  { header: { name: 'usr/.wh.old' }, body: '' },
];

void test('unpackLayer of gzip, zstd and plain layers returns the diffID of the raw tar', async () => {
  const tar = await makeTar(layerEntries);
  const zstd = execFileSync('/usr/bin/zstd', ['-c', '-q'], { input: tar });
  const cases: [string, Buffer][] = [
    [MediaType.OCI_LAYER_GZIP, zlib.gzipSync(tar)],
    [MediaType.OCI_LAYER_ZSTD, zstd],
    [MediaType.DOCKER_LAYER, tar],
    [MediaType.OCI_LAYER, zlib.gzipSync(tar)], // mislabelled: sniffed
  ];
  for (const [mediaType, blob] of cases) {
    await withSandbox(async ({ root }) => {
      const chunks = [];
      for (let i = 0; i < blob.length; i += 10_000) chunks.push(blob.subarray(i, i + 10_000));
      const r = await unpackLayer(Readable.from(chunks), mediaType, root, { layer: LAYER });
      assert.equal(r.diffID, sha256(tar), mediaType);
      assert.equal(r.entries, 3);
      assert.equal(r.size, 300_000);
      assert.equal((await stat(join(root, 'usr/data'))).size, 300_000);
      assert.ok((await lstat(join(root, 'usr/old'))).isCharacterDevice());
    });
  }
});

void test('unpackLayer refuses an unknown media type and a corrupt blob', async () => {
  await withSandbox(async ({ root }) => {
    const blob = Readable.from([Buffer.from('x')]);
    await assert.rejects(unpackLayer(blob, 'text/plain', root, { layer: LAYER }), (err) => isSkiffError(err, 'SKIFF_LAYER_INVALID') && err.message.includes('text/plain'));
    assert.ok(blob.destroyed);
    const gz = zlib.gzipSync(await makeTar(layerEntries));
    gz.fill(0x55, 30, 200);
    await assert.rejects(unpackLayer(Readable.from([gz]), MediaType.OCI_LAYER_GZIP, root, { layer: LAYER }), rejectsWith('SKIFF_LAYER_INVALID'));
  });
});

void test('an abort mid-stream rejects with SKIFF_CANCELLED and destroys the source', async () => {
  await withSandbox(async ({ root }) => {
    const tar = await makeTar([{ header: { name: 'big' }, body: Buffer.alloc(1 << 20, 2) }]);
    const src = new PassThrough();
    src.write(tar.subarray(0, 300_000)); // the header and part of the file, then the source stalls
    const ac = new AbortController();
    const fdsBefore = (await readdir('/proc/self/fd')).length;
    const p = applyLayer(src, root, { layer: LAYER, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, rejectsWith('SKIFF_CANCELLED'));
    assert.ok(src.destroyed);
    assert.equal((await readdir('/proc/self/fd')).length, fdsBefore, 'no file descriptor left open');

    const pre = new AbortController();
    pre.abort();
    await assert.rejects(apply(tar, root, { signal: pre.signal }), (err) => isSkiffError(err, 'SKIFF_CANCELLED'));
  });
});

void test('a 64 MiB file streams to disk without buffering it whole', async () => {
  await withSandbox(async ({ root }) => {
    const size = 64 << 20;
    const p = pack();
    const sink = p.entry({ name: 'big', size, mode: 0o644 });
    const produce = (async () => {
      const chunk = Buffer.alloc(1 << 20, 9);
      for (let i = 1; i < size / chunk.length; i++) {
        if (!sink.write(chunk)) await once(sink, 'drain');
      }
      sink.end(chunk);
      p.finalize();
    })();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const r = await applyLayer(Readable.from(p), root, { layer: LAYER });
      assert.equal(r.size, size);
    } finally {
      clearInterval(timer);
    }
    await produce;
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.equal((await stat(join(root, 'big'))).size, size);
    assert.ok(peak - rss0 < 200 << 20, `rss grew by ${(peak - rss0) >> 20} MiB`);
  });
});

void test('with RecordingSyscalls, whiteouts, devices and the opaque marker go through the Syscalls interface', async () => {
  await withSandbox(async ({ root }) => {
    const fake = new RecordingSyscalls();
    const tar = await makeTar([
      { header: { name: 'dir/.wh..wh..opq' }, body: '' },
      { header: { name: 'dir/.wh.f' }, body: '' },
      { header: { name: 'blk', type: 'block-device', mode: 0o660, devmajor: 8, devminor: 1 } },
      { header: { name: 'fifo', type: 'fifo', mode: 0o600 } },
    ]);
    await apply(tar, root, { sys: fake });
    assert.deepEqual(fake.callsOf('lsetxattr'), [[join(root, 'dir'), 'trusted.overlay.opaque', Buffer.from('y')]]);
    assert.deepEqual(fake.callsOf('mknod'), [
      [join(root, 'dir/f'), S_IFCHR, 0n],
      [join(root, 'blk'), 0o060000 | 0o660, makedev(8, 1)],
    ]);
    assert.deepEqual(fake.callsOf('mkfifo'), [[join(root, 'fifo'), 0o600]]);
  });
});

void test('an xattr the filesystem refuses (ENOTSUP) is skipped, other xattr errors fail the layer', async () => {
  await withSandbox(async ({ root }) => {
    const fake = new RecordingSyscalls();
    fake.failOn('lsetxattr', 'ENOTSUP');
    const tar = await makeTar([{ header: { name: 'f', pax: { 'SCHILY.xattr.user.a': '1' } }, body: 'x' }]);
    await apply(tar, root, { sys: fake });
    assert.equal(fake.callsOf('lsetxattr').length, 1);
  });
  await withSandbox(async ({ root }) => {
    const fake = new RecordingSyscalls();
    fake.failOn('lsetxattr', 'EIO');
    const tar = await makeTar([{ header: { name: 'f', pax: { 'SCHILY.xattr.user.a': '1' } }, body: 'x' }]);
    await assert.rejects(apply(tar, root, { sys: fake }), rejectsWith('SKIFF_INTERNAL', '"f"', 'EIO'));
  });
});

void test('a full disk or quota while writing a layer is SKIFF_NO_SPACE (RESOURCE_EXHAUSTED) naming the layer and the path', async () => {
  for (const code of ['ENOSPC', 'EDQUOT']) {
    await withSandbox(async ({ root }) => {
      const fake = new RecordingSyscalls();
      fake.failOn('mknod', code);
      const tar = await makeTar([{ header: { name: 'dir/.wh.f' }, body: '' }]);
      await assert.rejects(apply(tar, root, { sys: fake }), (err: unknown) => {
        rejectsWith('SKIFF_NO_SPACE', join(root, 'dir/f'), code)(err);
        assert.equal(isSkiffError(err) && err.status, Status.RESOURCE_EXHAUSTED);
        return true;
      });
    });
  }
});

void test('a name longer than the filesystem allows is SKIFF_LAYER_INVALID, not an internal error', async () => {
  await withSandbox(async ({ root }) => {
    const long = 'n'.repeat(300); // NAME_MAX is 255 on Linux filesystems
    const tar = await makeTar([{ header: { name: `dir/${long}` }, body: 'x' }]);
    await assert.rejects(apply(tar, root), rejectsWith('SKIFF_LAYER_INVALID', 'ENAMETOOLONG', `"dir/${long}"`));
  });
});
