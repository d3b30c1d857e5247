// Table-driven tests of endpoint selection: mirrors first, then the registry, with containerd's
// scheme defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointsFor, isLoopback, splitHostPort, type Endpoint, type RegistryHostsConfig } from './hosts.js';
import { isSkiffError } from '../../common/errors.js';

const none: RegistryHostsConfig = { mirrors: {}, insecure: [] };

void test('endpointsFor', () => {
  const cases: Array<[string, string, RegistryHostsConfig, Endpoint[]]> = [
    ['docker.io is served by registry-1', 'docker.io', none, [{ base: 'https://registry-1.docker.io', domain: 'docker.io', mirror: false }]],
    ['a remote registry is https', 'quay.io', none, [{ base: 'https://quay.io', domain: 'quay.io', mirror: false }]],
    ['a port alone does not make it http', 'reg.example:5000', none, [{ base: 'https://reg.example:5000', domain: 'reg.example:5000', mirror: false }]],
    ['loopback with a port is http', '127.0.0.1:5000', none, [{ base: 'http://127.0.0.1:5000', domain: '127.0.0.1:5000', mirror: false }]],
    ['localhost with a port is http', 'localhost:5000', none, [{ base: 'http://localhost:5000', domain: 'localhost:5000', mirror: false }]],
    ['[::1] with a port is http', '[::1]:5000', none, [{ base: 'http://[::1]:5000', domain: '[::1]:5000', mirror: false }]],
    ['loopback without a port is https', 'localhost', none, [{ base: 'https://localhost', domain: 'localhost', mirror: false }]],
    ['loopback on 443 is https', '127.0.0.1:443', none, [{ base: 'https://127.0.0.1:443', domain: '127.0.0.1:443', mirror: false }]],
    ['insecure domains are http', 'reg.lan:5000', { mirrors: {}, insecure: ['reg.lan:5000'] }, [{ base: 'http://reg.lan:5000', domain: 'reg.lan:5000', mirror: false }]],
    [
      'mirrors come first, in order',
      'docker.io',
      { mirrors: { 'docker.io': ['http://127.0.0.1:5001', 'https://mirror.example/'] }, insecure: [] },
      [
        { base: 'http://127.0.0.1:5001', domain: 'docker.io', mirror: true },
        { base: 'https://mirror.example', domain: 'docker.io', mirror: true },
        { base: 'https://registry-1.docker.io', domain: 'docker.io', mirror: false },
      ],
    ],
    [
      'a mirror without a scheme is https unless insecure; path prefix kept, /v2 not doubled',
      'quay.io',
      { mirrors: { 'quay.io': ['mirror.example/cache/v2/', 'plain.lan:80'] }, insecure: ['plain.lan:80'] },
      [
        { base: 'https://mirror.example/cache', domain: 'quay.io', mirror: true },
        { base: 'http://plain.lan', domain: 'quay.io', mirror: true },
        { base: 'https://quay.io', domain: 'quay.io', mirror: false },
      ],
    ],
    ['mirrors of other domains are ignored', 'quay.io', { mirrors: { 'docker.io': ['http://m'] }, insecure: [] }, [{ base: 'https://quay.io', domain: 'quay.io', mirror: false }]],
  ];
  for (const [name, domain, cfg, want] of cases) assert.deepEqual(endpointsFor(domain, cfg), want, name);
});

void test('endpointsFor rejects a mirror that is not an http(s) URL', () => {
  for (const bad of ['http://', 'ftp://mirror.example']) {
    assert.throws(
      () => endpointsFor('docker.io', { mirrors: { 'docker.io': [bad] }, insecure: [] }),
      (err: unknown) => isSkiffError(err, 'SKIFF_CONFIG_INVALID') && err.message.includes(bad),
    );
  }
});

void test('splitHostPort and isLoopback', () => {
  const split: Array<[string, string, string | undefined]> = [
    ['host', 'host', undefined],
    ['host:5000', 'host', '5000'],
    ['[::1]:5000', '::1', '5000'],
    ['[::1]', '::1', undefined],
    ['::1', '::1', undefined],
  ];
  for (const [input, host, port] of split) assert.deepEqual(splitHostPort(input), { host, port }, input);
  const loop: Array<[string, boolean]> = [
    ['localhost', true],
    ['LOCALHOST', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['10.0.0.1', false],
    ['localhost.example', false],
    ['::2', false],
  ];
  for (const [input, want] of loop) assert.equal(isLoopback(input), want, input);
});
