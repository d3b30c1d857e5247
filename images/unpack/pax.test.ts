import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PaxTap, parsePaxRecords } from './pax.js';
import { applyLayer } from './apply.js';
import { makeTar, sandbox } from './tar-fixture.test-helper.js';
import { linuxSyscalls as sys } from '../../native/sys.js';

function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len++;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

void test('parsePaxRecords keeps binary values byte for byte', () => {
  const bin = Buffer.from([0x00, 0x80, 0xff, 0x0a, 0x3d]); // NUL, non-UTF-8, newline, '=' inside
  const buf = Buffer.concat([record('path', Buffer.from('é/x')), record('SCHILY.xattr.user.b', bin)]);
  const m = parsePaxRecords(buf);
  assert.equal(m.get('path')?.toString(), 'é/x');
  assert.deepEqual(m.get('SCHILY.xattr.user.b'), bin);
  assert.equal(parsePaxRecords(Buffer.from('garbage')).size, 0);
});

void test('PaxTap queues one record per entry, in step with tar-stream, across long names', async () => {
  const long = 'd/' + 'x'.repeat(150);
  const tar = await makeTar([
    { header: { name: 'a', pax: { 'SCHILY.xattr.user.a': '1' } }, body: 'aaa' },
    { header: { name: long }, body: Buffer.alloc(1000) },
    { header: { name: 'd/', type: 'directory' } },
    { header: { name: 'l', type: 'symlink', linkname: 'y'.repeat(200) } },
  ]);
  const tap = new PaxTap();
  // one byte at a time: headers and PAX records split across chunks
  const out = [];
  for await (const c of Readable.from([...tar].map((b) => Buffer.from([b]))).pipe(tap)) out.push(c as Buffer);
  assert.deepEqual(Buffer.concat(out), tar, 'pass-through');
  const recs = [tap.shift(), tap.shift(), tap.shift(), tap.shift()];
  assert.equal(tap.shift(), undefined);
  assert.deepEqual([...recs[0]!.xattrs], [['user.a', Buffer.from('1')]]);
  assert.equal(recs[1]!.xattrs.size, 0);
  assert.ok(recs.every((r, i) => i === 0 || r!.dataOffset > recs[i - 1]!.dataOffset));
});

void test('GNU tar layers (gnu long names, posix xattrs) apply with xattr bytes intact', async () => {
  const s = await sandbox();
  try {
    const src = join(s.base, 'src');
    const longDir = join(src, 'l'.repeat(120));
    await mkdir(longDir, { recursive: true });
    await writeFile(join(longDir, 'f'.repeat(120)), 'deep');
    await writeFile(join(src, 'x'), 'x');
    const bin = Buffer.from([0x01, 0x80, 0xfe, 0x00, 0x41]);
    sys.lsetxattr(join(src, 'x'), 'user.bin', bin);
    for (const format of ['gnu', 'posix']) {
      const root = join(s.base, `root-${format}`);
      await mkdir(root);
      const args = ['--format', format, '-C', src, '-cf', '-', '.'];
      if (format === 'posix') args.unshift('--xattrs', '--xattrs-include=user.*');
      const tar = execFileSync('tar', args, { maxBuffer: 1 << 26 });
      await applyLayer(Readable.from([tar]), root, { layer: `sha256:${format}` });
      assert.equal(await readFile(join(root, 'l'.repeat(120), 'f'.repeat(120)), 'utf8'), 'deep', format);
      assert.ok((await lstat(join(root, 'x'))).isFile());
      if (format === 'posix') assert.deepEqual(sys.lgetxattr(join(root, 'x'), 'user.bin'), bin);
    }
  } finally {
    await s.cleanup();
  }
});
