// Table-driven tests of the pure parts of registry auth: AuthConfig decoding and
// WWW-Authenticate parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentialsFromAuthConfig, parseChallenges, type Challenge, type Credentials } from './auth.js';
import { isSkiffError } from '../../common/errors.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

void test('credentialsFromAuthConfig', () => {
  type In = Parameters<typeof credentialsFromAuthConfig>[0];
  const cases: Array<[string, In, Credentials | undefined]> = [
    ['undefined', undefined, undefined],
    ['null', null, undefined],
    ['empty', {}, undefined],
    ['username and password', { username: 'u', password: 'p' }, { username: 'u', password: 'p' }],
    ['username without password', { username: 'u' }, { username: 'u', password: '' }],
    ['auth field', { auth: b64('user:pa:ss') }, { username: 'user', password: 'pa:ss' }],
    ['username wins over auth', { username: 'u', password: 'p', auth: b64('x:y') }, { username: 'u', password: 'p' }],
    ['identity token', { identity_token: 'refresh' }, { identityToken: 'refresh' }],
    ['identity token wins over auth', { identity_token: 'r', auth: b64('x:y') }, { identityToken: 'r' }],
    ['registry token', { registry_token: 'bearer' }, { registryToken: 'bearer' }],
    ['empty strings are absent', { username: '', password: '', auth: '', identity_token: '' }, undefined],
  ];
  for (const [name, input, want] of cases) assert.deepEqual(credentialsFromAuthConfig(input, 'docker.io'), want, name);
});

void test('credentialsFromAuthConfig rejects a malformed auth field', () => {
  for (const auth of ['not base64!', b64('nocolon'), b64(':password'), 'dXNlcjpwYXNz=' /* bad padding */]) {
    assert.throws(
      () => credentialsFromAuthConfig({ auth }, 'docker.io'),
      (err: unknown) => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') && /auth/.test(err.message),
      auth,
    );
  }
});

void test('credentialsFromAuthConfig uses credentials only for the registry server_address names', () => {
  const auth = { username: 'u', password: 'p' };
  const creds: Credentials = { username: 'u', password: 'p' };
  const cases: Array<[server: string, domain: string, want: Credentials | undefined]> = [
    ['', 'registry.example.com', creds],
    ['registry.example.com', 'registry.example.com', creds],
    ['https://registry.example.com', 'registry.example.com', creds],
    ['https://registry.example.com/v2/', 'registry.example.com', creds],
    ['Registry.Example.COM', 'registry.example.com', creds],
    ['registry.example.com:5000', 'registry.example.com:5000', creds],
    ['http://127.0.0.1:5000', '127.0.0.1:5000', creds],
    ['localhost:5000', 'localhost:5000', creds],
    // Docker Hub answers to several names; a `docker login` config says https://index.docker.io/v1/.
    ['https://index.docker.io/v1/', 'docker.io', creds],
    ['index.docker.io', 'docker.io', creds],
    ['registry-1.docker.io', 'docker.io', creds],
    ['docker.io', 'docker.io', creds],
    ['https://registry-1.docker.io', 'docker.io', creds],
    // Another registry's credentials: anonymous, never sent elsewhere.
    ['registry.example.com', 'docker.io', undefined],
    ['https://index.docker.io/v1/', 'registry.example.com', undefined],
    ['registry.example.com:5000', 'registry.example.com', undefined],
    ['registry.example.com', 'registry.example.com:5000', undefined],
    ['https://evil.example.com/registry.example.com', 'registry.example.com', undefined],
    ['registry.example.com.evil.example', 'registry.example.com', undefined],
  ];
  for (const [server_address, domain, want] of cases) {
    assert.deepEqual(credentialsFromAuthConfig({ ...auth, server_address }, domain), want, `${server_address} for ${domain}`);
  }
  // A mismatch wins over a malformed auth field, as in containerd: those credentials are not used.
  assert.equal(credentialsFromAuthConfig({ auth: 'not base64!', server_address: 'other.example.com' }, 'docker.io'), undefined);
});

void test('credentialsFromAuthConfig rejects a server_address that names no host', () => {
  for (const server_address of ['https://', '/v1/', 'https://user@registry.example.com', 'reg istry.example.com', 'registry.example.com:port']) {
    assert.throws(
      () => credentialsFromAuthConfig({ username: 'u', password: 'p', server_address }, 'registry.example.com'),
      (err: unknown) => isSkiffError(err, 'SKIFF_INVALID_ARGUMENT') && err.message.includes(`server_address "${server_address}"`),
      server_address,
    );
  }
});

void test('parseChallenges', () => {
  const cases: Array<[string | undefined, Challenge[]]> = [
    [undefined, []],
    ['', []],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } }],
    ],
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    ['basic', [{ scheme: 'basic', params: {} }]],
    [
      'Basic realm="a", Bearer realm="http://127.0.0.1:1/t", service=svc',
      [
        { scheme: 'basic', params: { realm: 'a' } },
        { scheme: 'bearer', params: { realm: 'http://127.0.0.1:1/t', service: 'svc' } },
      ],
    ],
    [
      'Bearer realm = "r" , error="insufficient_scope", scope="repository:a:pull,push"',
      [{ scheme: 'bearer', params: { realm: 'r', error: 'insufficient_scope', scope: 'repository:a:pull,push' } }],
    ],
    ['Bearer Realm="with \\"quotes\\""', [{ scheme: 'bearer', params: { realm: 'with "quotes"' } }]],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseChallenges(input), want, String(input));
});
