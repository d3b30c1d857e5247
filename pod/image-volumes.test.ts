import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SkiffError, isSkiffError, errnoCode } from '../common/errors.js';
import type { ImageRecord } from '../images/image-store.js';
import { buildContainerSpec } from './spec/index.js';
import { mount, specInput, throwsSkiff } from './spec/fixture.js';
import { mountImageVolumes, planImageVolumes, subPathError, unmountImageVolumes } from './image-volumes.js';
import { resolveInRoot } from './rootfs.js';

const imageSpec = (image: string) => ({ image, annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' });
const volume = (containerPath: string, image: string, over: Parameters<typeof mount>[2] = {}) => mount(containerPath, '', { image: imageSpec(image), readonly: true, ...over });

const record = (id: string, chainIDs: string[]): ImageRecord =>
  ({ id, layers: chainIDs.map((chainID) => ({ chainID, digest: '', diffID: '', mediaType: '', size: 0 })) }) as unknown as ImageRecord;
const images = {
  resolve(ref: string): ImageRecord | undefined {
    if (ref === 'data:1') return record('sha256:aa', ['c1', 'c2']);
    if (ref === 'Bad:Ref') throw new SkiffError('SKIFF_IMAGE_REF_INVALID', 'invalid reference "Bad:Ref"');
    return undefined;
  },
};

test('image volumes: planned with the resolved image and its snapshots; plain mounts ignored', () => {
  const config = specInput({ config: { mounts: [mount('/h', '/srv/h'), volume('/data', 'data:1', { image_sub_path: 'etc/./conf' })] } }).config;
  assert.deepEqual(planImageVolumes(images, config), [{ containerPath: '/data', image: 'data:1', imageId: 'sha256:aa', chainIDs: ['c1', 'c2'], subPath: 'etc/conf' }]);
});

const badPlans: { name: string; m: ReturnType<typeof volume>; code: 'SKIFF_INVALID_ARGUMENT' | 'SKIFF_NOT_FOUND' | 'SKIFF_IMAGE_REF_INVALID'; message: RegExp }[] = [
  { name: 'a malformed reference', m: volume('/data', 'Bad:Ref'), code: 'SKIFF_IMAGE_REF_INVALID', message: /invalid reference "Bad:Ref"/ },
  { name: 'an image that is not pulled', m: volume('/data', 'nope:1'), code: 'SKIFF_NOT_FOUND', message: /image "nope:1" not found: pull it first/ },
  { name: 'a read-write image mount', m: volume('/data', 'data:1', { readonly: false }), code: 'SKIFF_INVALID_ARGUMENT', message: /readonly must be true for an image mount/ },
  { name: 'an image mount with a host_path', m: volume('/data', 'data:1', { host_path: '/srv' }), code: 'SKIFF_INVALID_ARGUMENT', message: /host_path must be empty for an image mount, got "\/srv"/ },
  { name: 'a sub path with ".."', m: volume('/data', 'data:1', { image_sub_path: 'a/../../etc' }), code: 'SKIFF_INVALID_ARGUMENT', message: /image_sub_path "a\/..\/..\/etc" must not contain ".."/ },
  { name: 'an absolute sub path', m: volume('/data', 'data:1', { image_sub_path: '/etc' }), code: 'SKIFF_INVALID_ARGUMENT', message: /image_sub_path "\/etc" must be a relative path/ },
  { name: 'a relative container path', m: volume('data', 'data:1'), code: 'SKIFF_INVALID_ARGUMENT', message: /container_path is not an absolute path/ },
];

for (const r of badPlans) {
  test(`image volumes: ${r.name} is ${r.code}, naming the container and the mount`, () =>
    throwsSkiff(() => planImageVolumes(images, specInput({ config: { mounts: [r.m] } }).config), r.code, new RegExp(`^container "app": image volume "[^"]*": .*${r.message.source}`)));
}

test('image volumes: subPathError accepts plain relative paths', () => {
  for (const ok of ['', 'a', 'a/b', './a', 'a/b/']) assert.equal(subPathError(ok), undefined, ok);
});

test('image volumes: the spec binds the mounted dir read-only at container_path', () => {
  const spec = buildContainerSpec(specInput({ config: { mounts: [volume('/data', 'data:1')] }, extra: { imageVolumes: new Map([['/data', '/run/b/image-volumes/0/etc']]) } }));
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/data'), { destination: '/data', type: 'bind', source: '/run/b/image-volumes/0/etc', options: ['rbind', 'rprivate', 'ro'] });
  throwsSkiff(() => buildContainerSpec(specInput({ config: { mounts: [volume('/data', 'data:1')] } })), 'SKIFF_INVALID_ARGUMENT', /image volume "\/data": image "data:1" is not mounted/);
});

async function tree(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-imgvol-'));
  try {
    await fn(root);
  } finally {
    await unmountImageVolumes(join(root, 'bundle')).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

test('image volumes: resolveInRoot resolves symlinks against the image root, never outside it', () =>
  tree(async (root) => {
    await mkdir(join(root, 'usr/share/conf'), { recursive: true });
    await writeFile(join(root, 'usr/file'), 'x');
    await symlink('/usr/share', join(root, 'abs'));
    await symlink('../../../../../../usr', join(root, 'up'));
    await symlink('/etc', join(root, 'hostetc'));
    await symlink('loop', join(root, 'loop'));
    assert.deepEqual(await resolveInRoot(root, 'abs/conf'), { path: join(root, 'usr/share/conf'), isDirectory: true });
    assert.deepEqual(await resolveInRoot(root, 'up/share'), { path: join(root, 'usr/share'), isDirectory: true });
    assert.deepEqual(await resolveInRoot(root, 'usr/file'), { path: join(root, 'usr/file'), isDirectory: false });
    assert.equal(await resolveInRoot(root, 'hostetc'), undefined, '/etc of the host is not looked at');
    assert.equal(await resolveInRoot(root, 'usr/file/x'), undefined);
    await assert.rejects(resolveInRoot(root, 'loop'), /too many levels of symbolic links/);
  }));

test('image volumes: mounted read-only as an overlay of the snapshots, sub path applied, unmounted without a trace', { skip: process.getuid?.() !== 0 && 'needs root for mount(2)' }, () =>
  tree(async (root) => {
    // Two snapshots (bottom first): the top one overrides a file of the bottom one.
    const snap = (c: string) => join(root, 'snapshots', c);
    await mkdir(join(snap('c1'), 'etc/conf'), { recursive: true });
    await writeFile(join(snap('c1'), 'etc/conf/a'), 'bottom');
    await mkdir(join(snap('c2'), 'etc/conf'), { recursive: true });
    await writeFile(join(snap('c2'), 'etc/conf/a'), 'top');
    await mkdir(join(snap('c3'), 'only'), { recursive: true });
    const bundle = join(root, 'bundle');
    const config = specInput({ config: { mounts: [volume('/a', 'data:1'), volume('/b', 'one:1', { image_sub_path: 'only' })] } }).config;
    const lowerDirs = (chainIDs: string[]) => [...chainIDs].reverse().map(snap);
    const vols = [
      { containerPath: '/a', image: 'data:1', imageId: 'sha256:aa', chainIDs: ['c1', 'c2'], subPath: '.' },
      { containerPath: '/b', image: 'one:1', imageId: 'sha256:bb', chainIDs: ['c3'], subPath: 'only' },
    ];
    const sources = await mountImageVolumes(bundle, config, vols, lowerDirs);
    assert.deepEqual([...sources], [['/a', join(bundle, 'image-volumes/0')], ['/b', join(bundle, 'image-volumes/1/only')]]);
    assert.equal(await readFile(join(sources.get('/a')!, 'etc/conf/a'), 'utf8'), 'top');
    await assert.rejects(writeFile(join(sources.get('/a')!, 'new'), 'x'), (err: unknown) => errnoCode(err) === 'EROFS');
    await assert.rejects(writeFile(join(sources.get('/b')!, 'new'), 'x'), (err: unknown) => errnoCode(err) === 'EROFS');
    await unmountImageVolumes(bundle);
    assert.deepEqual(await readdir(bundle), []);
    assert.deepEqual(await readdir(snap('c3')), ['only'], 'the snapshots are untouched');
    await unmountImageVolumes(bundle); // idempotent

    for (const [subPath, re] of [
      ['missing', /image_sub_path "missing" does not exist in image "data:1"/],
      ['etc/conf/a', /image_sub_path "etc\/conf\/a" in image "data:1" is not a directory/],
    ] as const) {
      await assert.rejects(
        mountImageVolumes(bundle, config, [{ ...vols[0], subPath }], lowerDirs),
        (err: unknown) => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') && re.test(err.message) && err.message.startsWith('container "app": image volume "/a": '),
      );
      await unmountImageVolumes(bundle);
      assert.deepEqual(await readdir(bundle), []);
    }
  }));
