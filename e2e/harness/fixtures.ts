// The image set the e2e tests pull: each fixture is pushed to the test registry and described
// with what a correct pull must produce (digests, chainIDs, the unpacked tree) or must refuse.
import { open } from 'node:fs/promises';
import { buildLayer, buildTar, busyboxEntries, opaque, rawLayer, whiteout, type BuiltLayer, type Entry } from './layer.js';
import { pushImage, pushIndex, type ImageConfigInput, type ImageFormat, type PushedImage, type PushedIndex } from './push.js';
import type { TestRegistry } from './registry.js';
import { expectedTree, type ExpectedTree } from './tree.js';

export interface ImageFixture extends PushedImage {
  /** The entries of each layer, lowest first, as built. */
  layerEntries: Entry[][];
  layers: Omit<BuiltLayer, 'blob'>[];
  /** What the image unpacks to. */
  tree: ExpectedTree;
}

export interface IndexFixture extends PushedIndex {
  /** The image the index offers for each platform. */
  platforms: { platform: { os: string; architecture: string; variant?: string }; image: ImageFixture }[];
  /** The image linux/amd64 resolves to, if any. */
  amd64?: ImageFixture;
}

export interface Fixtures {
  /** Single busybox layer, gzip, Docker schema 2. */
  busybox: ImageFixture;
  /** busybox + files + whiteout/opaque/hardlink/setuid/chown/fifo layer, OCI. */
  multi: ImageFixture;
  /** busybox (gzip) + a zstd layer, OCI. */
  zstd: ImageFixture;
  /** OCI index: linux/amd64 → multi's image, linux/arm64 → a different image. */
  multiarch: IndexFixture;
  /** Docker manifest list with linux/arm64 and linux/s390x only: no match for amd64. */
  armonly: IndexFixture;
  /** busybox + a layer with the member `../../evil-escape`. */
  evil: ImageFixture & { escapeMember: string };
  /** busybox + a layer with `link -> /tmp` then `link/<name>`, which must not land on the host. */
  evilSymlink: ImageFixture & { hostPath: string };
  /** A normal image whose second layer blob was overwritten on the registry's disk. */
  badblob: ImageFixture & { corruptedDigest: string };
}

async function imageFixture(
  reg: TestRegistry,
  repo: string,
  tag: string,
  layers: { entries: Entry[]; built: BuiltLayer }[],
  format: ImageFormat,
  config?: ImageConfigInput,
): Promise<ImageFixture> {
  const pushed = await pushImage(reg, repo, tag, { layers: layers.map((l) => l.built), format, config });
  const layerEntries = layers.map((l) => l.entries);
  return {
    ...pushed,
    layerEntries,
    layers: layers.map(({ built: { blob: _blob, ...rest } }) => rest),
    tree: expectedTree(layerEntries),
  };
}

async function layer(entries: Entry[], compression: 'gzip' | 'zstd' | 'none' = 'gzip') {
  return { entries, built: await buildLayer(entries, compression) };
}

// The files multi:1 adds, then changes in its third layer.
const MULTI_ADD: Entry[] = [
  { path: '/data', type: 'dir' },
  { path: '/data/a', type: 'file', content: 'a\n' },
  { path: '/data/dir', type: 'dir' },
  { path: '/data/dir/x', type: 'file', content: 'x\n' },
  { path: '/opt', type: 'dir' },
  { path: '/opt/keep', type: 'dir' },
  { path: '/opt/keep/k', type: 'file', content: 'k\n' },
];

const MULTI_CHANGE: Entry[] = [
  { path: '/data', type: 'dir' },
  whiteout('/data/a'),
  { path: '/data/dir', type: 'dir' },
  opaque('/data/dir'),
  { path: '/data/dir/y', type: 'file', content: 'y\n' },
  { path: '/data/b', type: 'file', content: 'b shared by a hardlink\n' },
  { path: '/data/hl', type: 'hardlink', linkname: '/data/b' },
  { path: '/data/fifo', type: 'fifo', mode: 0o600 },
  { path: '/usr', type: 'dir' },
  { path: '/usr/bin', type: 'dir' },
  { path: '/usr/bin/su-test', type: 'file', content: '#!/bin/sh\nid\n', mode: 0o4755, uid: 0, gid: 0 },
  { path: '/home', type: 'dir' },
  { path: '/home/skiff', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
  { path: '/home/skiff/owned', type: 'file', content: 'mine\n', mode: 0o640, uid: 1000, gid: 1000 },
];

/** A fixed name, so the test knows what to look for on the host and clean up. */
export const SYMLINK_ESCAPE_NAME = 'skiff-evil-symlink-escaped';

/** Overwrites a blob on the registry's disk with different bytes of the same length. */
async function corruptBlob(reg: TestRegistry, digest: string): Promise<void> {
  const file = await open(reg.blobPath(digest), 'r+');
  try {
    const { size } = await file.stat();
    const bytes = Buffer.alloc(size);
    await file.read(bytes, 0, size, 0);
    for (let i = 0; i < size; i++) bytes[i] = bytes[i] ^ 0xff;
    await file.write(bytes, 0, size, 0);
  } finally {
    await file.close();
  }
}

/** Builds and pushes every fixture into `reg`. About a second on this machine. */
export async function buildFixtures(reg: TestRegistry): Promise<Fixtures> {
  const base = await busyboxEntries();
  const bbGzip = await layer(base, 'gzip');

  const busybox = await imageFixture(reg, 'busybox', '1', [bbGzip], 'docker');

  const multiLayers = [bbGzip, await layer(MULTI_ADD), await layer(MULTI_CHANGE)];
  const multi = await imageFixture(reg, 'multi', '1', multiLayers, 'oci', {
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: ['cat /data/dir/y'],
    Env: ['PATH=/usr/bin:/bin', 'SKIFF_FIXTURE=multi'],
    User: '0:0',
    WorkingDir: '/data',
    ExposedPorts: { '8080/tcp': {} },
    Volumes: { '/data/vol': {} },
    StopSignal: 'SIGUSR1',
    Labels: { 'skiff.test': 'multi' },
  });

  const zstdEntries: Entry[] = [
    { path: '/zstd', type: 'dir' },
    { path: '/zstd/hello', type: 'file', content: 'hello from a zstd layer\n' },
  ];
  const zstd = await imageFixture(reg, 'zstd', '1', [bbGzip, await layer(zstdEntries, 'zstd')], 'oci');

  const arm64 = await imageFixture(
    reg,
    'multiarch',
    'arm64',
    [bbGzip, await layer([{ path: '/etc/arch', type: 'file', content: 'arm64\n' }])],
    'oci',
    { architecture: 'arm64', variant: 'v8' },
  );
  const multiarchIndex = await pushIndex(
    reg,
    'multiarch',
    '1',
    [
      { image: multi, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
    'oci',
  );
  const multiarch: IndexFixture = {
    ...multiarchIndex,
    platforms: [
      { platform: { os: 'linux', architecture: 'amd64' }, image: multi },
      { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, image: arm64 },
    ],
    amd64: multi,
  };

  const foreign = async (architecture: string) =>
    imageFixture(
      reg,
      'armonly',
      architecture,
      [bbGzip, await layer([{ path: '/etc/arch', type: 'file', content: `${architecture}\n` }])],
      'docker',
      { architecture },
    );
  const onlyArm = await foreign('arm64');
  const onlyS390x = await foreign('s390x');
  const armonlyPlatforms = [
    { platform: { os: 'linux', architecture: 'arm64' }, image: onlyArm },
    { platform: { os: 'linux', architecture: 's390x' }, image: onlyS390x },
  ];
  const armonly: IndexFixture = {
    ...(await pushIndex(reg, 'armonly', '1', armonlyPlatforms, 'docker')),
    platforms: armonlyPlatforms,
  };

  // Malicious layers are written verbatim: no leading-slash stripping, no path cleaning.
  const escapeMember = '../../evil-escape';
  const evilEntries: Entry[] = [{ path: escapeMember, type: 'file', content: 'escaped\n' }];
  const evilLayer = { entries: evilEntries, built: await rawLayer(await buildTar(evilEntries, { verbatim: true }), 'gzip') };
  const evilImage = await imageFixture(reg, 'evil', '1', [bbGzip, evilLayer], 'oci');
  // A safe unpack adds nothing from that layer (or refuses the image).
  const evil = { ...evilImage, tree: expectedTree([base]), escapeMember };

  const symlinkEntries: Entry[] = [
    { path: 'link', type: 'symlink', linkname: '/tmp' },
    { path: `link/${SYMLINK_ESCAPE_NAME}`, type: 'file', content: 'escaped through a symlink\n' },
  ];
  const symlinkLayer = { entries: symlinkEntries, built: await rawLayer(await buildTar(symlinkEntries, { verbatim: true }), 'gzip') };
  const symlinkImage = await imageFixture(reg, 'evil-symlink', '1', [bbGzip, symlinkLayer], 'oci');
  // The safe outcome keeps `link` and writes nothing through it onto the host; whether the file
  // lands in the rootfs's own /tmp or is refused is the unpacker's choice, so the tree lists
  // only the symlink.
  const evilSymlink = {
    ...symlinkImage,
    tree: expectedTree([base, [symlinkEntries[0]]]),
    hostPath: `/tmp/${SYMLINK_ESCAPE_NAME}`,
  };

  // Content unique to this image: blobs are stored once per registry, so corrupting a shared
  // layer (busybox) would break every other fixture.
  const badLayer = await layer([
    { path: '/bad', type: 'dir' },
    { path: '/bad/payload', type: 'file', content: 'this layer is served corrupted\n'.repeat(64) },
  ]);
  const badImage = await imageFixture(reg, 'badblob', '1', [bbGzip, badLayer], 'oci');
  await corruptBlob(reg, badLayer.built.digest);
  const badblob = { ...badImage, corruptedDigest: badLayer.built.digest };

  return { busybox, multi, zstd, multiarch, armonly, evil, evilSymlink, badblob };
}
