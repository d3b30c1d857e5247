import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HOSTS, resolvConf, validHostname, writeSandboxFiles } from './sandbox-files.js';
import { isSkiffError } from '../common/errors.js';

test('resolv.conf from DNSConfig, or undefined when empty', () => {
  assert.equal(resolvConf(null), undefined);
  assert.equal(resolvConf({ servers: [], searches: [], options: [] }), undefined);
  assert.equal(
    resolvConf({ servers: ['10.96.0.10', 'fd00::a'], searches: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] }),
    'search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5\n',
  );
  assert.throws(() => resolvConf({ servers: ['not an ip'], searches: [], options: [] }), (e: unknown) => isSkiffError(e, 'SKIFF_INVALID_ARGUMENT'));
});

test('hostnames are RFC 1123', () => {
  for (const ok of ['web-0', 'a', 'pod.example.com', 'x'.repeat(63)]) assert.ok(validHostname(ok), ok);
  for (const bad of ['', '-a', 'a-', 'a_b', 'x'.repeat(64), 'a..b', `${'a'.repeat(40)}.${'b'.repeat(30)}`]) assert.ok(!validHostname(bad), bad);
});

test('writeSandboxFiles writes the pod files; host networking takes the node hosts file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-sbfiles-'));
  try {
    await writeFile(join(dir, 'node-hosts'), '10.0.0.1 node\n');
    await writeFile(join(dir, 'node-resolv'), 'nameserver 192.0.2.53\n');
    const node = { hosts: join(dir, 'node-hosts'), resolvConf: join(dir, 'node-resolv') };
    const f = await writeSandboxFiles(join(dir, 'pod'), { hostname: 'web-0', hostNetwork: false, dns: null }, node);
    assert.equal(await readFile(f.hostname, 'utf8'), 'web-0\n');
    assert.equal(await readFile(f.hosts, 'utf8'), DEFAULT_HOSTS);
    assert.equal(await readFile(f.resolvConf, 'utf8'), 'nameserver 192.0.2.53\n');
    const h = await writeSandboxFiles(join(dir, 'hostpod'), { hostname: 'node', hostNetwork: true, dns: { servers: ['1.2.3.4'], searches: [], options: [] } }, node);
    assert.equal(await readFile(h.hosts, 'utf8'), '10.0.0.1 node\n');
    assert.equal(await readFile(h.resolvConf, 'utf8'), 'nameserver 1.2.3.4\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
