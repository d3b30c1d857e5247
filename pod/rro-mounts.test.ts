// Staged recursive read-only mounts and idmapped layers against the real kernel (needs root):
// a host dir with a tmpfs submount is staged read-only all the way down, and released cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mount, unmount } from '../native/sys.js';
import type { Spec } from './spec/index.js';
import { rroStagingDir, stageRecursiveReadOnly, unstageRecursiveReadOnly } from './rro-mounts.js';
import { idmapDir, mountIdmappedRootfs, unmountIdmappedLayers } from './userns-rootfs.js';
import { unmountRootfs } from './rootfs.js';

const mounted = (path: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
const errCode = (fn: () => void): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
};

function world(): { dir: string; host: string; sub: string; bundle: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-rro-'));
  const host = join(dir, 'host');
  const sub = join(host, 'sub');
  const bundle = join(dir, 'bundle');
  mkdirSync(sub, { recursive: true });
  mkdirSync(bundle);
  mount('tmpfs', sub, 'tmpfs', 0, 'size=1m');
  return {
    dir, host, sub, bundle,
    done() {
      unstageRecursiveReadOnly(bundle);
      unmount(sub);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const specWith = (source: string, options: string[]): Spec => ({
  ociVersion: '1.0.2', process: { user: { uid: 0, gid: 0 }, args: [], env: [], cwd: '/' }, root: { path: '/r' },
  mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/data', type: 'bind', source, options }],
  linux: { namespaces: [] },
});

test('an rro bind is staged read-only on every submount and handed over as rbind,ro', () => {
  const w = world();
  try {
    const spec = specWith(w.host, ['rbind', 'rprivate', 'rro']);
    const made = stageRecursiveReadOnly(spec, w.bundle);
    assert.deepEqual(made, [join(rroStagingDir(w.bundle), '1')]);
    assert.deepEqual(spec.mounts[1], { destination: '/data', type: 'bind', source: made[0], options: ['rbind', 'rprivate', 'ro'] });
    assert.equal(errCode(() => writeFileSync(join(made[0], 'x'), '')), 'EROFS');
    assert.equal(errCode(() => writeFileSync(join(made[0], 'sub', 'x'), '')), 'EROFS', 'the submount is read-only too');
    writeFileSync(join(w.sub, 'host-side'), 'ok'); // the host's own mounts stay writable
    assert.equal(readFileSync(join(made[0], 'sub', 'host-side'), 'utf8'), 'ok');
    unstageRecursiveReadOnly(w.bundle);
    assert.ok(!mounted(made[0]) && !existsSync(rroStagingDir(w.bundle)));
    assert.ok(mounted(w.sub), 'the host submount is untouched');
  } finally {
    w.done();
  }
});

test('a bind without rro is left alone; unstaging a bundle without staging is a no-op', () => {
  const w = world();
  try {
    const spec = specWith(w.host, ['rbind', 'rprivate', 'ro']);
    assert.deepEqual(stageRecursiveReadOnly(spec, w.bundle), []);
    assert.equal(spec.mounts[1].source, w.host);
    unstageRecursiveReadOnly(w.bundle);
  } finally {
    w.done();
  }
});

test('a missing rro source fails with its name and leaves no staging behind', () => {
  const w = world();
  try {
    assert.throws(() => stageRecursiveReadOnly(specWith(join(w.dir, 'missing'), ['rbind', 'rro']), w.bundle), /ENOENT/);
    assert.ok(!existsSync(rroStagingDir(w.bundle)));
  } finally {
    w.done();
  }
});

test('idmapped layers: image root files are the pod root; the upper dir belongs to the host root of the pod', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-idmap-'));
  const bundle = join(dir, 'bundle');
  const lower = join(dir, 'lower');
  mkdirSync(join(lower, 'etc'), { recursive: true });
  writeFileSync(join(lower, 'etc', 'f'), 'x');
  const userns = join(dir, 'user.ns');
  writeFileSync(userns, '');
  // A pinned user namespace to idmap with: a child enters it, root writes its maps and pins it.
  const script = `unshare --user sleep 30 & p=$!; sleep 0.2; echo '0 300000 65536' > /proc/$p/uid_map && echo '0 300000 65536' > /proc/$p/gid_map && mount --bind /proc/$p/ns/user "$1"; r=$?; kill $p; exit $r`;
  const rootfs = join(bundle, 'rootfs');
  let pinned = false;
  try {
    const pin = spawnSync('sh', ['-c', script, 'sh', userns]);
    assert.equal(pin.status, 0, pin.stderr.toString());
    pinned = true;
    await mountIdmappedRootfs({ target: rootfs, upperDir: join(dir, 'upper'), workDir: join(dir, 'work'), lowerDirs: [lower] }, bundle, { path: userns, hostUid: 300000, hostGid: 300000 });
    assert.equal(statSync(join(rootfs, 'etc', 'f')).uid, 300000, 'through the idmapped layer root is the pod root');
    assert.equal(statSync(join(dir, 'upper')).uid, 300000);
    assert.equal(statSync(join(lower, 'etc', 'f')).uid, 0, 'the snapshot itself is unchanged');
  } finally {
    if (pinned) {
      unmountRootfs(rootfs);
      await unmountIdmappedLayers(bundle);
      unmount(userns);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(!existsSync(idmapDir(bundle)));
});
