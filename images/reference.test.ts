// Table-driven tests of reference parsing against the behaviour of distribution/reference
// (normalize_test.go, reference_test.go): the same inputs must normalize the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReference, isDigest, parseReference, repository, withDefaultTag, type Reference } from './reference.js';
import { isSkiffError } from '../common/errors.js';

const D = 'sha256:' + 'a'.repeat(64);
const D512 = 'sha512:' + 'b'.repeat(128);

const valid: Array<[string, Reference]> = [
  ['busybox', { domain: 'docker.io', path: 'library/busybox' }],
  ['busybox:1.36', { domain: 'docker.io', path: 'library/busybox', tag: '1.36' }],
  ['library/busybox', { domain: 'docker.io', path: 'library/busybox' }],
  ['docker.io/busybox', { domain: 'docker.io', path: 'library/busybox' }],
  ['index.docker.io/busybox', { domain: 'docker.io', path: 'library/busybox' }],
  ['index.docker.io/user/app:v1', { domain: 'docker.io', path: 'user/app', tag: 'v1' }],
  ['user/app', { domain: 'docker.io', path: 'user/app' }],
  ['a/b/c/d', { domain: 'docker.io', path: 'a/b/c/d' }],
  ['quay.io/coreos/etcd:v3.5.0', { domain: 'quay.io', path: 'coreos/etcd', tag: 'v3.5.0' }],
  ['localhost/app', { domain: 'localhost', path: 'app' }],
  ['localhost:5000/app:dev', { domain: 'localhost:5000', path: 'app', tag: 'dev' }],
  // A bare "localhost:5000" is the official image "localhost" with tag "5000", as upstream.
  ['localhost:5000', { domain: 'docker.io', path: 'library/localhost', tag: '5000' }],
  ['127.0.0.1:5000/a/b', { domain: '127.0.0.1:5000', path: 'a/b' }],
  ['[::1]:5000/app:t', { domain: '[::1]:5000', path: 'app', tag: 't' }],
  ['[2001:db8::1]/app', { domain: '[2001:db8::1]', path: 'app' }],
  ['myhost:443/app', { domain: 'myhost:443', path: 'app' }],
  ['busybox@' + D, { domain: 'docker.io', path: 'library/busybox', digest: D }],
  ['busybox:1.36@' + D, { domain: 'docker.io', path: 'library/busybox', tag: '1.36', digest: D }],
  ['host:5000/a/b@' + D512, { domain: 'host:5000', path: 'a/b', digest: D512 }],
  ['a_b/c__d/e--f/g.h', { domain: 'docker.io', path: 'a_b/c__d/e--f/g.h' }],
  ['app:Upper_Case-1.0', { domain: 'docker.io', path: 'library/app', tag: 'Upper_Case-1.0' }],
  ['app:' + 'x'.repeat(128), { domain: 'docker.io', path: 'library/app', tag: 'x'.repeat(128) }],
  // A first component with an uppercase letter is taken as a domain (the FIXME in
  // distribution's reference_test.go); the pull then fails at that host, as it does upstream.
  ['UPPER/case', { domain: 'UPPER', path: 'case' }],
  ['Example.COM/app', { domain: 'Example.COM', path: 'app' }],
  // "sha256:abc" alone is the repository "sha256" with tag "abc", exactly as upstream parses it.
  ['sha256:abc', { domain: 'docker.io', path: 'library/sha256', tag: 'abc' }],
];

const invalid: Array<[string, RegExp]> = [
  ['', /at least one component/],
  ['a'.repeat(64), /64-byte hexadecimal/],
  ['Uppercase:tag', /must be lowercase/],
  ['docker/Docker', /must be lowercase/],
  ['docker.io/docker/Docker', /must be lowercase/],
  ['test:5000/Uppercase/lowercase:tag', /must be lowercase/],
  ['a//b', /invalid reference format/],
  ['docker///docker', /invalid reference format/],
  [':tag', /invalid reference format/],
  ['app:', /invalid reference format/],
  ['app@', /invalid reference format/],
  ['-app', /invalid reference format/],
  ['app-/x', /invalid reference format/],
  ['app:-tag', /invalid reference format/],
  ['app:' + 'x'.repeat(129), /invalid reference format/],
  ['app@sha256:abc', /invalid reference format/],
  ['app@sha256:' + 'a'.repeat(63), /invalid checksum digest length/],
  ['app@sha256:' + 'A'.repeat(64), /invalid checksum digest format/],
  ['app@md5:' + 'a'.repeat(32), /unsupported digest algorithm/],
  ['::1/app', /invalid reference format/],
  ['https://github.com/docker/docker', /invalid reference format/],
  ['a b', /invalid reference format/],
  ['registry.example.com/' + 'a'.repeat(240), /more than 255 characters/],
  // 238 + "docker.io/library/" (18) = 256: the limit counts the normalized name.
  ['a'.repeat(238), /more than 255 characters/],
];

for (const [input, want] of valid) {
  void test(`parseReference accepts ${JSON.stringify(input.length > 60 ? input.slice(0, 60) + '…' : input)}`, () => {
    assert.deepEqual(parseReference(input), want);
  });
}

for (const [input, reason] of invalid) {
  void test(`parseReference rejects ${JSON.stringify(input.length > 60 ? input.slice(0, 60) + '…' : input)}`, () => {
    assert.throws(
      () => parseReference(input),
      (err: unknown) => {
        assert.ok(isSkiffError(err, 'SKIFF_IMAGE_REF_INVALID'), String(err));
        assert.match(err.message, reason);
        assert.ok(err.message.includes(`"${input.slice(0, 64)}`), `message names the input: ${err.message}`);
        return true;
      },
    );
  });
}

void test('a name of exactly 255 characters is accepted', () => {
  const ref = parseReference('a'.repeat(237));
  assert.equal(repository(ref).length, 255);
});

void test('formatReference keeps tag and digest and round-trips', () => {
  const cases: Array<[string, string]> = [
    ['busybox', 'docker.io/library/busybox'],
    ['busybox:latest', 'docker.io/library/busybox:latest'],
    ['host:5000/a/b@' + D, 'host:5000/a/b@' + D],
    ['b:1@' + D, 'docker.io/library/b:1@' + D],
    ['[::1]:5000/app:t', '[::1]:5000/app:t'],
  ];
  for (const [input, want] of cases) {
    assert.equal(formatReference(parseReference(input)), want);
    assert.deepEqual(parseReference(want), parseReference(input));
  }
});

void test('repository drops tag and digest', () => {
  assert.equal(repository(parseReference('busybox:1@' + D)), 'docker.io/library/busybox');
});

void test('withDefaultTag adds latest only when neither tag nor digest is set', () => {
  assert.equal(withDefaultTag(parseReference('busybox')).tag, 'latest');
  assert.equal(withDefaultTag(parseReference('busybox:1')).tag, '1');
  assert.equal(withDefaultTag(parseReference('busybox@' + D)).tag, undefined);
  const ref = parseReference('busybox');
  withDefaultTag(ref);
  assert.equal(ref.tag, undefined, 'input is not modified');
});

void test('isDigest', () => {
  const cases: Array<[string, boolean]> = [
    [D, true],
    [D512, true],
    ['sha384:' + 'c'.repeat(96), true],
    ['sha256:' + 'a'.repeat(63), false],
    ['sha256:' + 'A'.repeat(64), false],
    ['sha256:' + 'g'.repeat(64), false],
    ['sha512:' + 'a'.repeat(64), false],
    ['md5:' + 'a'.repeat(32), false],
    ['a'.repeat(64), false],
    ['sha256:', false],
    [':' + 'a'.repeat(64), false],
    ['', false],
  ];
  for (const [input, want] of cases) assert.equal(isDigest(input), want, input);
});
