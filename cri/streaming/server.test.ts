// Routing and tokens: what a client gets before any protocol starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSkiffError } from '../../common/errors.js';
import { spdyDial, startServer, upgrade } from './fake-backend.js';
import { RequestCache } from './request-cache.js';
import { parseAddress } from './server.js';

const EXEC = { containerId: 'c1', cmd: ['exit', '0'], stdin: false, stdout: true, stderr: false, tty: false };
const SPDY = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' };

async function upgradeStatus(url: string, headers: Record<string, string> = SPDY): Promise<{ status: number; body: string }> {
  const { socket, response } = await upgrade(url, headers);
  socket.destroy();
  const [head, body = ''] = response.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), body };
}

test('URLs name the route and a fresh token each time', async (t) => {
  const { server } = await startServer(t);
  const a = new URL(server.getExecUrl(EXEC));
  const b = new URL(server.getExecUrl(EXEC));
  assert.equal(a.origin, new URL(server.url).origin);
  assert.match(a.pathname, /^\/exec\/[A-Za-z0-9_-]{22}$/);
  assert.notEqual(a.pathname, b.pathname);
  assert.match(new URL(server.getAttachUrl(EXEC)).pathname, /^\/attach\//);
  assert.match(new URL(server.getPortForwardUrl({ podSandboxId: 'sb' })).pathname, /^\/portforward\//);
});

test('a token works once: the second upgrade with it is a 404 saying why', async (t) => {
  const { server } = await startServer(t);
  const url = server.getExecUrl(EXEC);
  const { protocol } = await spdyDial(t, url, ['v4.channel.k8s.io']);
  assert.equal(protocol, 'v4.channel.k8s.io');
  const again = await upgradeStatus(url);
  assert.equal(again.status, 404);
  assert.match(again.body, /exec token is unknown, expired or already used/);
});

test('an expired token is a 404', async (t) => {
  const { server, backend } = await startServer(t, { tokenTtlMs: 30 });
  const url = server.getExecUrl(EXEC);
  await new Promise((r) => setTimeout(r, 80));
  const r = await upgradeStatus(url);
  assert.equal(r.status, 404);
  assert.match(r.body, /expired/);
  assert.equal(backend.execs, 0);
});

test('a token used on another route is a 404 and is used up', async (t) => {
  const { server } = await startServer(t);
  const url = new URL(server.getExecUrl(EXEC));
  const token = url.pathname.split('/')[2];
  assert.equal((await upgradeStatus(`${url.origin}/attach/${token}`)).status, 404);
  assert.equal((await upgradeStatus(url.href)).status, 404);
});

test('unknown routes are 404, with or without an upgrade', async (t) => {
  const { server } = await startServer(t);
  const base = new URL(server.url);
  assert.equal((await upgradeStatus(`${base.origin}/logs/abc`)).status, 404);
  const res = await fetch(`${base.origin}/`);
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

test('a plain request to a streaming URL is a 400 and uses up the token', async (t) => {
  const { server } = await startServer(t);
  const url = server.getExecUrl(EXEC);
  const res = await fetch(url, { method: 'POST' });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /needs an upgrade to SPDY\/3\.1 or WebSocket/);
  assert.equal((await upgradeStatus(url)).status, 404);
});

test('a SPDY upgrade offering no protocol we speak is refused with 403', async (t) => {
  const { server } = await startServer(t);
  const r = await upgradeStatus(server.getPortForwardUrl({ podSandboxId: 'sb' }), SPDY);
  assert.equal(r.status, 403);
  assert.match(r.body, /unable to negotiate protocol/);
});

test('a SPDY connection idle past streamIdleTimeoutMs is closed', async (t) => {
  const { server } = await startServer(t, { streamIdleTimeoutMs: 100, streamCreationTimeoutMs: 10_000 });
  const { socket } = await spdyDial(t, server.getPortForwardUrl({ podSandboxId: 'sb' }), ['portforward.k8s.io']);
  const started = Date.now();
  await new Promise((resolve) => socket.once('close', resolve));
  assert.ok(Date.now() - started >= 90, 'not before the idle timeout');
});

test('stop() ends sessions in progress', async (t) => {
  const { server, backend } = await startServer(t);
  const url = server.getExecUrl({ ...EXEC, cmd: ['hang'] });
  const { socket } = await spdyDial(t, url, ['v4.channel.k8s.io']);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await server.stop();
  await closed;
  assert.equal(backend.execs, 0);
});

test('the request cache refuses more than maxInFlight tokens with SKIFF_NO_SPACE and forgets expired ones', () => {
  let now = 0;
  const cache = new RequestCache(1000, 2, () => now);
  const req = { kind: 'portforward', req: { podSandboxId: 'sb' } } as const;
  cache.insert(req);
  const t2 = cache.insert(req);
  assert.throws(() => cache.insert(req), (e: unknown) => isSkiffError(e, 'SKIFF_NO_SPACE'));
  now = 1000;
  assert.equal(cache.consume(t2, 'portforward'), undefined, 'expired at exactly the TTL');
  cache.insert(req);
  assert.equal(cache.size, 1);
});

test('addresses parse as host:port, [v6]:port and :port; others are refused', () => {
  assert.deepEqual(parseAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseAddress('[::1]:10010'), { host: '::1', port: 10010 });
  assert.deepEqual(parseAddress(':10010'), { host: undefined, port: 10010 });
  for (const bad of ['127.0.0.1', 'localhost:99999', '::1:80', '']) {
    assert.throws(() => parseAddress(bad), (e: unknown) => isSkiffError(e, 'SKIFF_CONFIG_INVALID'), bad);
  }
});

test('with tls the server speaks HTTPS and hands out https URLs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-streaming-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  } catch {
    t.skip('openssl is not available to make a certificate');
    return;
  }
  const { server } = await startServer(t, { tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) } });
  const url = server.getExecUrl(EXEC);
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/exec\//);
  const status = await new Promise<number>((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
  assert.equal(status, 400);
});
