// Checks the image harness against a real docker-registry: what buildFixtures pushes reads back
// by plain HTTP with matching digests, and the htpasswd registry demands its credentials.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import {
  buildFixtures,
  buildLayer,
  buildTar,
  computeChainIDs,
  expectedTree,
  MANIFEST_ACCEPT,
  MEDIA_TYPES,
  opaque,
  pushImage,
  sha256,
  whiteout,
  type Fixtures,
} from './image-builder.js';
import { startRegistry, type TestRegistry } from './registry.js';

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: Buffer }> {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: Buffer.from(await res.arrayBuffer()) };
}

async function tarNames(tarball: Buffer): Promise<string[]> {
  const names: string[] = [];
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      names.push(entry.header.name);
      entry.resume();
    }
  })();
  ex.end(tarball);
  await done;
  return names;
}

void describe('image fixtures on a real registry', () => {
  let reg: TestRegistry;
  let fx: Fixtures;

  before(async () => {
    reg = await startRegistry();
    fx = await buildFixtures(reg);
  });
  after(async () => {
    await reg?.stop();
  });

  void test('busybox:1 manifest, config and layer read back with their digests', async () => {
    const img = fx.busybox;
    const m = await get(`${reg.url}/v2/busybox/manifests/1`, { accept: MANIFEST_ACCEPT });
    assert.equal(m.status, 200);
    assert.equal(m.type, MEDIA_TYPES.docker.manifest);
    assert.equal(sha256(m.body), img.manifestDigest);
    const manifest = JSON.parse(m.body.toString()) as typeof img.manifest;
    assert.equal(manifest.config.digest, img.configDigest);

    const c = await get(`${reg.url}/v2/busybox/blobs/${img.configDigest}`);
    assert.equal(sha256(c.body), img.configDigest);
    const config = JSON.parse(c.body.toString()) as typeof img.config;
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.rootfs.diff_ids, img.diffIDs);

    const layer = manifest.layers[0];
    assert.equal(layer.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    const l = await get(`${reg.url}/v2/busybox/blobs/${layer.digest}`);
    assert.equal(l.body.length, layer.size);
    assert.equal(sha256(l.body), layer.digest);
    const tarball = gunzipSync(l.body);
    assert.equal(sha256(tarball), img.diffIDs[0]);
    const names = await tarNames(tarball);
    assert.ok(names.includes('bin/busybox') && names.includes('bin/sh') && names.includes('tmp/'), names.join(','));
    assert.deepEqual(img.chainIDs, [img.diffIDs[0]]);
  });

  void test('multiarch:1 is an OCI index whose amd64 entry is the multi-layer image', async () => {
    const idx = await get(`${reg.url}/v2/multiarch/manifests/1`, { accept: MANIFEST_ACCEPT });
    assert.equal(idx.status, 200);
    assert.equal(idx.type, MEDIA_TYPES.oci.index);
    assert.equal(sha256(idx.body), fx.multiarch.manifestDigest);
    const index = JSON.parse(idx.body.toString()) as typeof fx.multiarch.index;
    const amd64 = index.manifests.find((d) => d.platform?.architecture === 'amd64');
    const arm64 = index.manifests.find((d) => d.platform?.architecture === 'arm64');
    assert.equal(amd64?.digest, fx.multi.manifestDigest);
    assert.ok(arm64 && arm64.digest !== amd64.digest);

    // Child manifests and their blobs were copied into the index's own repository.
    const child = await get(`${reg.url}/v2/multiarch/manifests/${amd64.digest}`, { accept: MANIFEST_ACCEPT });
    assert.equal(child.status, 200);
    assert.equal(sha256(child.body), amd64.digest);
    for (const d of fx.multi.manifest.layers) {
      const blob = await get(`${reg.url}/v2/multiarch/blobs/${d.digest}`);
      assert.equal(sha256(blob.body), d.digest);
    }
    assert.equal(fx.multi.chainIDs.length, 3);
  });

  void test('armonly:1 offers no linux/amd64 manifest', async () => {
    const idx = await get(`${reg.url}/v2/armonly/manifests/1`, { accept: MANIFEST_ACCEPT });
    assert.equal(idx.type, MEDIA_TYPES.docker.index);
    const index = JSON.parse(idx.body.toString()) as typeof fx.armonly.index;
    assert.deepEqual(index.manifests.map((d) => d.platform?.architecture).sort(), ['arm64', 's390x']);
  });

  void test('badblob:1 serves a layer whose bytes do not match its digest', async () => {
    const blob = await get(`${reg.url}/v2/badblob/blobs/${fx.badblob.corruptedDigest}`);
    assert.equal(blob.status, 200);
    const declared = fx.badblob.manifest.layers.find((l) => l.digest === fx.badblob.corruptedDigest);
    assert.equal(blob.body.length, declared?.size);
    assert.notEqual(sha256(blob.body), fx.badblob.corruptedDigest);
  });

  void test('multi:1 expected tree applies whiteouts, opaque dirs and hardlinks', () => {
    const t = fx.multi.tree;
    assert.equal(t['/data/a'], undefined);
    assert.equal(t['/data/dir/x'], undefined);
    assert.equal(t['/data/dir/y']?.type, 'file');
    assert.equal(t['/opt/keep/k']?.size, 2);
    assert.equal(t['/data/hl']?.hardlinkOf, '/data/b');
    assert.equal(t['/usr/bin/su-test']?.mode, 0o4755);
    assert.equal(t['/home/skiff/owned']?.uid, 1000);
    assert.equal(t['/data/fifo']?.type, 'fifo');
    assert.equal(t['/tmp']?.mode, 0o1777);
  });

  void test('malicious layers keep their member names verbatim', async () => {
    const evilLayer = fx.evil.manifest.layers[1];
    const blob = await get(`${reg.url}/v2/evil/blobs/${evilLayer.digest}`);
    assert.deepEqual(await tarNames(gunzipSync(blob.body)), ['../../evil-escape']);
    const tarball = await buildTar([{ path: '/abs', type: 'file', content: 'x' }], { verbatim: true });
    assert.deepEqual(await tarNames(tarball), ['/abs']);
  });
});

void test('computeChainIDs follows image-spec config.md', () => {
  const a = sha256('a');
  const b = sha256('b');
  const c = sha256('c');
  const ab = sha256(`${a} ${b}`);
  assert.deepEqual(computeChainIDs([]), []);
  assert.deepEqual(computeChainIDs([a]), [a]);
  assert.deepEqual(computeChainIDs([a, b, c]), [a, ab, sha256(`${ab} ${c}`)]);
});

void test('expectedTree: opaque keeps entries of its own layer, whiteout removes a subtree', () => {
  const tree = expectedTree([
    [
      { path: '/d', type: 'dir' },
      { path: '/d/old', type: 'file', content: 'o' },
      { path: '/w', type: 'dir' },
      { path: '/w/sub', type: 'file' },
    ],
    [opaque('/d'), { path: '/d/new', type: 'file', content: 'nn' }, whiteout('/w')],
  ]);
  assert.deepEqual(Object.keys(tree).sort(), ['/d', '/d/new']);
});

void describe('htpasswd registry', () => {
  const creds = { user: 'skiff', password: 's3cret-pw' };
  let reg: TestRegistry;

  before(async () => {
    reg = await startRegistry({ htpasswd: creds });
  });
  after(async () => {
    await reg?.stop();
  });

  const basic = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  });

  void test('refuses anonymous and wrong credentials with a Basic challenge', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    await res.arrayBuffer();
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="skiff-test"/);
    assert.equal((await get(`${reg.url}/v2/`, basic(creds.user, 'wrong'))).status, 401);
  });

  void test('accepts the right user for push and pull', async () => {
    assert.equal((await get(`${reg.url}/v2/`, basic(creds.user, creds.password))).status, 200);
    const layer = await buildLayer([{ path: '/hello', type: 'file', content: 'hi\n' }], 'gzip');
    const img = await pushImage(reg, 'private/hello', 'v1', { layers: [layer], auth: creds });
    const anon = await get(`${reg.url}/v2/private/hello/manifests/v1`, { accept: MANIFEST_ACCEPT });
    assert.equal(anon.status, 401);
    const authed = await get(`${reg.url}/v2/private/hello/manifests/v1`, {
      accept: MANIFEST_ACCEPT,
      ...basic(creds.user, creds.password),
    });
    assert.equal(authed.status, 200);
    assert.equal(sha256(authed.body), img.manifestDigest);
    const noAuthPush = pushImage({ ...reg, auth: undefined }, 'private/hello', 'v2', { layers: [layer] });
    await assert.rejects(noAuthPush, /401/);
  });
});
