// Table-driven tests of platform normalization and manifest selection, against the results of
// containerd's platforms.Only matcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPlatform, formatPlatform, normalizePlatform, platformMatches, selectManifest } from './platform.js';
import { MediaType, type Descriptor, type Index, type Platform } from './oci.js';
import { isSkiffError } from '../common/errors.js';

function p(s: string): Platform {
  const [os, architecture, variant] = s.split('/') as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

function entry(platform: string | undefined, n: number, mediaType: string = MediaType.OCI_MANIFEST): Descriptor {
  const d: Descriptor = { mediaType, digest: `sha256:${String(n).padStart(64, '0')}`, size: 100 + n };
  if (platform) d.platform = p(platform);
  return d;
}

function index(...entries: Descriptor[]): Index {
  return { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: entries };
}

void test('normalizePlatform', () => {
  const cases: Array<[Platform, string]> = [
    [p('linux/x86_64'), 'linux/amd64'],
    [p('Linux/AMD64'), 'linux/amd64'],
    [p('linux/amd64/v1'), 'linux/amd64'],
    [p('linux/amd64/v3'), 'linux/amd64/v3'],
    [p('linux/aarch64'), 'linux/arm64'],
    [p('linux/arm64/v8'), 'linux/arm64'],
    [p('linux/arm64/8'), 'linux/arm64'],
    [p('linux/arm64/9.0'), 'linux/arm64/v9'],
    [p('linux/arm'), 'linux/arm/v7'],
    [p('linux/arm/6'), 'linux/arm/v6'],
    [p('linux/armhf'), 'linux/arm/v7'],
    [p('linux/armel'), 'linux/arm/v6'],
    [p('linux/i386'), 'linux/386'],
    [p('macos/arm64'), 'darwin/arm64'],
    [{ os: '', architecture: 'amd64' }, 'linux/amd64'],
    [p('linux/s390x'), 'linux/s390x'],
  ];
  for (const [input, want] of cases) assert.equal(formatPlatform(normalizePlatform(input)), want, formatPlatform(input));
});

void test('normalizePlatform keeps os.version and os.features', () => {
  const out = normalizePlatform({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763', 'os.features': ['win32k'] });
  assert.deepEqual(out, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763', 'os.features': ['win32k'] });
});

void test('platformMatches', () => {
  // [image platform, node platform, matches]
  const cases: Array<[string, string, boolean]> = [
    ['linux/amd64', 'linux/amd64', true],
    ['linux/x86_64', 'linux/amd64', true],
    ['linux/amd64/v1', 'linux/amd64', true],
    ['linux/amd64/v2', 'linux/amd64', false],
    ['linux/amd64/v2', 'linux/amd64/v3', true],
    ['linux/amd64/v4', 'linux/amd64/v3', false],
    ['linux/386', 'linux/amd64', true],
    ['linux/amd64', 'linux/386', false],
    ['linux/arm64/v8', 'linux/arm64', true],
    ['linux/arm64', 'linux/arm64/v8', true],
    ['linux/arm64/v8.2', 'linux/arm64', false],
    ['linux/arm64/v8.1', 'linux/arm64/v8.2', true],
    ['linux/arm64/v8.5', 'linux/arm64/v9', true],
    ['linux/arm/v7', 'linux/arm64', true],
    ['linux/arm/v5', 'linux/arm64', true],
    ['linux/arm64', 'linux/arm/v7', false],
    ['linux/arm', 'linux/arm/v7', true],
    ['linux/arm/v6', 'linux/arm/v7', true],
    ['linux/arm/v7', 'linux/arm/v6', false],
    ['windows/amd64', 'linux/amd64', false],
    ['unknown/unknown', 'linux/amd64', false],
    ['linux/ppc64le', 'linux/ppc64le', true],
  ];
  for (const [have, want, match] of cases) assert.equal(platformMatches(p(have), p(want)), match, `${have} on ${want}`);
});

void test('selectManifest', () => {
  const amd64 = entry('linux/amd64', 1);
  const arm64 = entry('linux/arm64/v8', 2);
  const armv7 = entry('linux/arm/v7', 3);
  const armv6 = entry('linux/arm/v6', 4);
  const i386 = entry('linux/386', 5);
  const amd64v3 = entry('linux/amd64/v3', 6);
  const attest = entry('unknown/unknown', 7);
  const bare = entry(undefined, 8);
  const cases: Array<[string, Index, string, Descriptor]> = [
    ['exact match', index(amd64, arm64, armv7), 'linux/amd64', amd64],
    ['arm64 v8 equals no variant', index(amd64, arm64), 'linux/arm64', arm64],
    ['exact arm variant beats a lower one', index(armv6, armv7), 'linux/arm/v7', armv7],
    ['lower arm variant when the exact one is absent', index(amd64, armv6), 'linux/arm/v7', armv6],
    ['arm64 falls back to 32-bit arm', index(amd64, armv7), 'linux/arm64', armv7],
    ['amd64 falls back to 386', index(arm64, i386), 'linux/amd64', i386],
    ['amd64 prefers itself to 386', index(i386, amd64), 'linux/amd64', amd64],
    ['amd64/v3 not chosen for a plain amd64 node', index(amd64v3, amd64), 'linux/amd64', amd64],
    ['amd64/v3 node prefers v3', index(amd64, amd64v3), 'linux/amd64/v3', amd64v3],
    ['attestation manifests are skipped', index(attest, amd64), 'linux/amd64', amd64],
    ['entry without platform only when nothing else matches', index(bare, arm64), 'linux/amd64', bare],
    ['entry with a matching platform beats one without', index(bare, amd64), 'linux/amd64', amd64],
    ['first listed wins a tie', index(entry('linux/amd64', 9), amd64), 'linux/amd64', entry('linux/amd64', 9)],
  ];
  for (const [name, idx, want, expected] of cases) assert.deepEqual(selectManifest(idx, p(want)), expected, name);
});

void test('selectManifest without a match lists the available platforms', () => {
  const idx = index(entry('linux/amd64', 1), entry('linux/arm/v7', 2), entry('unknown/unknown', 3), entry('linux/amd64', 4));
  assert.throws(
    () => selectManifest(idx, p('linux/s390x')),
    (err: unknown) => {
      assert.ok(isSkiffError(err, 'SKIFF_PLATFORM_NOT_FOUND'));
      assert.equal(err.message, 'no manifest for platform linux/s390x (available: linux/amd64, linux/arm/v7)');
      return true;
    },
  );
  assert.throws(() => selectManifest(index(), p('linux/amd64')), /available: none/);
  // A platform-less entry that is not a manifest (an artifact, say) is no candidate.
  assert.throws(() => selectManifest(index(entry(undefined, 1, 'application/vnd.example+json')), p('linux/amd64')), /available: none/);
});

void test('defaultPlatform is linux and this process architecture', () => {
  const d = defaultPlatform();
  assert.equal(d.os, 'linux');
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm' };
  if (arch[process.arch]) assert.equal(d.architecture, arch[process.arch]);
  if (process.arch === 'arm64') assert.equal(d.variant, undefined);
  if (process.arch === 'arm') assert.match(d.variant ?? '', /^v\d$/);
  assert.ok(platformMatches(d, d));
});
