// e2e: skiffd pulls real images from a real registry (Debian docker-registry on loopback) that
// the harness filled with images built from busybox-static, driven through the `skiff` CLI and
// the typed client; unpacked trees are checked through a real overlayfs mount.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { linuxSyscalls } from '../native/sys.js';
import { startRegistry, type TestRegistry } from './harness/registry.js';
import { buildFixtures, type Fixtures } from './harness/fixtures.js';
import { busyboxLayer } from './harness/layer.js';
import { pushImage } from './harness/push.js';
import { TestDaemon } from './harness/daemon.js';
import { comparable, listStores, readTree, withOverlay } from './harness/on-disk.js';

const hex = (d: string): string => d.replace(/^sha256:/, '');

describe('image pulls against a real registry', () => {
  let reg: TestRegistry;
  let authReg: TestRegistry;
  let fx: Fixtures;
  let d: TestDaemon;

  before(async () => {
    reg = await startRegistry();
    authReg = await startRegistry({ htpasswd: { user: 'skiff', password: 's3cret-pass' } });
    fx = await buildFixtures(reg);
    await pushImage(authReg, 'private/busybox', '1', { layers: [await busyboxLayer('gzip')], format: 'docker' });
    // The same busybox as docker.io/library/busybox:1 on the mirror: pulled through a mirror,
    // nothing ever goes to docker.io.
    await pushImage(reg, 'library/busybox', '1', { layers: [await busyboxLayer('gzip')], format: 'docker' });
    d = await TestDaemon.start({
      privateResolver: true,
      toml: `[registry]\ninsecure = ["${reg.host}", "${authReg.host}"]\n[registry.mirrors."docker.io"]\nendpoints = ["${reg.url}"]\n`,
    });
  });

  after(async () => {
    await d?.cleanup();
    await reg?.stop();
    await authReg?.stop();
  });

  test('skiff pull, images and inspecti show a Docker schema2 image as containerd reports it', async () => {
    const pulled = await d.cli(['pull', fx.busybox.ref]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, new RegExp(`Image is up to date for ${fx.busybox.configDigest}`));

    const listed = await d.cli(['images', '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    const { images } = JSON.parse(listed.stdout) as { images: { id: string; repoTags: string[]; repoDigests: string[]; size: string }[] };
    const img = images.find((i) => i.id === fx.busybox.configDigest);
    assert.ok(img, `busybox in ${listed.stdout}`);
    assert.deepEqual(img.repoTags, [`${reg.host}/busybox:1`]);
    assert.deepEqual(img.repoDigests, [`${reg.host}/busybox@${fx.busybox.manifestDigest}`]);
    const expectedSize = fx.busybox.manifest.config.size + fx.busybox.manifest.layers.reduce((a, l) => a + l.size, 0);
    assert.equal(Number(img.size), expectedSize);

    const table = await d.cli(['images']);
    assert.match(table.stdout, /IMAGE\s+TAG\s+IMAGE ID\s+SIZE/);
    assert.match(table.stdout, new RegExp(`${reg.host}/busybox\\s+1\\s+${hex(fx.busybox.configDigest).slice(0, 13)}`));

    const inspect = await d.cli(['inspecti', '-o', 'json', `${reg.host}/busybox:1`]);
    assert.equal(inspect.code, 0, inspect.stderr);
    // crictl's shape: the status, and the runtime's info map with its JSON values parsed.
    const status = JSON.parse(inspect.stdout) as { status: { id: string }; info: { imageSpec: { rootfs: { diff_ids: string[] } } } };
    assert.equal(status.status.id, fx.busybox.configDigest);
    assert.deepEqual(status.info.imageSpec.rootfs.diff_ids, fx.busybox.diffIDs);

    // A single layer is its own tree: compare the snapshot dir with what was pushed.
    const snap = join(d.root, 'snapshots', hex(fx.busybox.chainIDs[0]), 'fs');
    const { tree } = await readTree(snap);
    assert.deepEqual(tree, comparable(fx.busybox.tree));
  });

  test('a multi-layer OCI image unpacks with whiteouts, opaque dirs, hardlinks, setuid, owners and a fifo', async () => {
    const res = await d.client.pullImage({ image: { image: fx.multi.ref } });
    assert.equal(res.image_ref, fx.multi.configDigest, 'image_ref equals the image id (CRI v1.36)');

    const snaps = fx.multi.chainIDs.map((c) => join(d.root, 'snapshots', hex(c), 'fs'));
    // Layer 3 holds overlayfs whiteouts: a 0/0 char device and the opaque xattr.
    const wh = await lstat(join(snaps[2], 'data', 'a'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout of /data/a is a 0/0 char device');
    assert.equal(linuxSyscalls.lgetxattr(join(snaps[2], 'data', 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');

    await withOverlay([...snaps].reverse(), async (mnt) => {
      const { tree, inodes } = await readTree(mnt);
      assert.deepEqual(tree, comparable(fx.multi.tree));
      assert.equal(inodes.get('/data/hl'), inodes.get('/data/b'), '/data/hl is a hardlink of /data/b');
      assert.equal((await lstat(join(mnt, 'usr/bin/su-test'))).mode & 0o7777, 0o4755);
      assert.equal(await readFile(join(mnt, 'data/dir/y'), 'utf8'), 'y\n');
    });

    const st = await d.client.imageStatus({ image: { image: fx.multi.ref }, verbose: true });
    const info = JSON.parse(st.info.info) as { imageSpec: { config: Record<string, unknown> } };
    const cfg = info.imageSpec.config;
    assert.deepEqual(cfg.Entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(cfg.Cmd, ['cat /data/dir/y']);
    assert.deepEqual(cfg.Env, ['PATH=/usr/bin:/bin', 'SKIFF_FIXTURE=multi']);
    assert.equal(cfg.WorkingDir, '/data');
    assert.equal(cfg.StopSignal, 'SIGUSR1');
    assert.deepEqual(cfg.ExposedPorts, { '8080/tcp': {} });
    assert.deepEqual(cfg.Volumes, { '/data/vol': {} });
    assert.equal(st.image?.uid?.value, '0');
  });

  test('a zstd layer unpacks', async () => {
    await d.client.pullImage({ image: { image: fx.zstd.ref } });
    const snap = join(d.root, 'snapshots', hex(fx.zstd.chainIDs[1]), 'fs');
    assert.equal(await readFile(join(snap, 'zstd/hello'), 'utf8'), 'hello from a zstd layer\n');
  });

  test('layers shared between images are stored once, as one snapshot per chainID', async () => {
    const stores = await listStores(d.root);
    // busybox, multi and zstd share their bottom layer.
    assert.equal(fx.busybox.chainIDs[0], fx.multi.chainIDs[0]);
    assert.equal(stores.snapshots.filter((s) => s === hex(fx.busybox.chainIDs[0])).length, 1);
    const expected = new Set([...fx.busybox.chainIDs, ...fx.multi.chainIDs, ...fx.zstd.chainIDs].map(hex));
    for (const s of expected) assert.ok(stores.snapshots.includes(s), `snapshot ${s}`);
  });

  test('a manifest list resolves to the linux/amd64 image and records the index digest', async () => {
    const res = await d.client.pullImage({ image: { image: fx.multiarch.ref } });
    assert.equal(res.image_ref, fx.multiarch.amd64!.configDigest);
    const st = await d.client.imageStatus({ image: { image: fx.multiarch.ref } });
    assert.ok(st.image!.repo_tags.includes(`${reg.host}/multiarch:1`));
    assert.ok(st.image!.repo_digests.includes(`${reg.host}/multiarch@${fx.multiarch.manifestDigest}`));
  });

  test('a manifest list without linux/amd64 is NOT_FOUND and names what it has', async () => {
    const r = await d.cli(['pull', fx.armonly.ref]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /code = NotFound/);
    assert.match(r.stderr, /arm64/);
    assert.match(r.stderr, /s390x/);
  });

  test('concurrent pulls of one image coalesce into one download', async () => {
    const ref = `${reg.host}/busybox:1`;
    await d.client.removeImage({ image: { image: fx.zstd.ref } });
    await d.client.removeImage({ image: { image: fx.multi.ref } });
    await d.client.removeImage({ image: { image: ref } });
    await d.client.removeImage({ image: { image: fx.multiarch.ref } });
    assert.deepEqual((await listStores(d.root)).snapshots.length, 0, 'every snapshot freed');
    const before = (await d.log()).split('\n').filter((l) => l.includes('"pulled image"')).length;
    const ids = await Promise.all([1, 2, 3, 4].map(() => d.client.pullImage({ image: { image: ref } })));
    assert.deepEqual(new Set(ids.map((r) => r.image_ref)), new Set([fx.busybox.configDigest]));
    const afterCount = (await d.log()).split('\n').filter((l) => l.includes('"pulled image"')).length;
    assert.equal(afterCount - before, 1, 'one pull job served four callers');
  });

  test('pulls through a registry mirror: busybox:1 normalizes to docker.io/library/busybox:1', async () => {
    const r = await d.cli(['pull', 'busybox:1']);
    assert.equal(r.code, 0, r.stderr);
    const st = await d.client.imageStatus({ image: { image: 'docker.io/library/busybox:1' } });
    assert.deepEqual(st.image?.repo_tags.filter((t) => t.startsWith('docker.io/')), ['docker.io/library/busybox:1']);
    assert.equal(st.image?.id, fx.busybox.configDigest, 'the mirror served the same image');
  });

  test('basic auth: anonymous and wrong credentials are UNAUTHENTICATED, --creds works', async () => {
    const ref = `${authReg.host}/private/busybox:1`;
    const anon = await d.cli(['pull', ref]);
    assert.notEqual(anon.code, 0);
    assert.match(anon.stderr, /code = Unauthenticated/);
    const before = await listStores(d.root);
    const wrong = await d.cli(['pull', '--creds', 'skiff:wrong', ref]);
    assert.match(wrong.stderr, /code = Unauthenticated/);
    assert.match(wrong.stderr, /unauthorized/);
    assert.deepEqual(await listStores(d.root), before, 'a refused pull leaves nothing');
    const ok = await d.cli(['pull', '--creds', 'skiff:s3cret-pass', ref]);
    assert.equal(ok.code, 0, ok.stderr);
    // The CRI AuthConfig `auth` field (base64 user:pass) works the same.
    await d.client.removeImage({ image: { image: ref } });
    const auth = Buffer.from('skiff:s3cret-pass').toString('base64');
    const res = await d.client.pullImage({ image: { image: ref }, auth: { auth } });
    assert.match(res.image_ref, /^sha256:[a-f0-9]{64}$/);
  });

  test('rmi untags while other tags remain, then deletes and frees snapshots; imagefsinfo follows', async () => {
    const ref = `${reg.host}/busybox:1`;
    await d.client.pullImage({ image: { image: ref } });
    await d.client.pullImage({ image: { image: `${reg.host}/library/busybox:1` } });
    const st = await d.client.imageStatus({ image: { image: ref } });
    const id = st.image!.id;
    assert.ok(st.image!.repo_tags.length >= 2, `tags: ${st.image!.repo_tags.join(', ')}`);

    const fsBefore = await d.cli(['imagefsinfo', '-o', 'json']);
    assert.equal(fsBefore.code, 0, fsBefore.stderr);
    type FsInfo = { status: { imageFilesystems: { usedBytes: { value: string }; inodesUsed: { value: string }; fsId: { mountpoint: string } }[] } };
    const usage = (JSON.parse(fsBefore.stdout) as FsInfo).status.imageFilesystems[0];
    assert.ok(Number(usage.usedBytes.value) > 1_000_000, 'busybox takes over a MB');
    assert.ok(Number(usage.inodesUsed.value) > 5);
    assert.equal(usage.fsId.mountpoint, join(d.root, 'snapshots'));

    const untag = await d.cli(['rmi', ref]);
    assert.equal(untag.code, 0, untag.stderr);
    const still = await d.client.imageStatus({ image: { image: id } });
    assert.ok(still.image, 'the image stays while it has other tags');
    assert.ok(!still.image.repo_tags.includes(ref));
    const gone = (await d.client.imageStatus({ image: { image: ref } })).image;
    assert.equal(gone, null);

    const del = await d.cli(['rmi', id]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await d.client.imageStatus({ image: { image: id } })).image, null);
    const stores = await listStores(d.root);
    assert.ok(!stores.images.includes(hex(id) + '.json'));
    assert.ok(!stores.blobs.includes(hex(id)), 'config blob freed');

    // RemoveImage is idempotent; the CLI, like crictl, resolves first and says the image is gone.
    assert.deepEqual(await d.client.removeImage({ image: { image: id } }), {});
    const again = await d.cli(['rmi', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no such image/);
    const fsAfter = JSON.parse((await d.cli(['imagefsinfo', '-o', 'json'])).stdout) as FsInfo;
    assert.ok(Number(fsAfter.status.imageFilesystems[0].usedBytes.value) < Number(usage.usedBytes.value));
  });

  test('rmi by digest reference removes the image', async () => {
    await d.client.pullImage({ image: { image: fx.zstd.ref } });
    const digestRef = `${reg.host}/zstd@${fx.zstd.manifestDigest}`;
    const st = await d.client.imageStatus({ image: { image: digestRef } });
    assert.equal(st.image?.id, fx.zstd.configDigest);
    await d.client.removeImage({ image: { image: digestRef } });
    assert.equal((await d.client.imageStatus({ image: { image: fx.zstd.ref } })).image, null);
  });

  test('ListImages filters by repository or by exact reference, and StreamImages streams the same list', async () => {
    await d.client.pullImage({ image: { image: fx.busybox.ref } });
    await d.client.pullImage({ image: { image: fx.zstd.ref } });
    const all = (await d.client.listImages({})).images.map((i) => i.id).sort();
    const streamed: string[] = [];
    for await (const batch of d.client.streamImages({})) streamed.push(...batch.images.map((i) => i.id));
    assert.deepEqual(streamed.sort(), all);
    assert.ok(all.length >= 2);

    const byRepo = await d.client.listImages({ filter: { image: { image: `${reg.host}/zstd` } } });
    assert.deepEqual(byRepo.images.map((i) => i.id), [fx.zstd.configDigest]);
    const byTag = await d.client.listImages({ filter: { image: { image: fx.busybox.ref } } });
    assert.deepEqual(byTag.images.map((i) => i.id), [fx.busybox.configDigest]);
    const none = await d.client.listImages({ filter: { image: { image: `${reg.host}/nothing:here` } } });
    assert.deepEqual(none.images, []);

    const cli = await d.cli(['images', '-q', `${reg.host}/zstd`]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(cli.stdout.trim().split('\n'), [fx.zstd.configDigest]);
  });
});
