// port-forward over WebSocket end to end with a raw `ws` client: port prefixes on every channel,
// data to and from TCP echo targets on 127.0.0.1, the error channel, garbage.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import type { PortForwardSession } from './portforward.js';
import { Inbox, listenEcho, listenUpgrades, servePortForward, within, type Loopback } from './loopback-fixture.js';

async function startServer(t: TestContext): Promise<{ server: Loopback; sessions: PortForwardSession[] }> {
  const sessions: PortForwardSession[] = [];
  const server = await listenUpgrades(async (req, socket, head) => {
    const s = await servePortForward(req, socket, head);
    if (s) sessions.push(s);
  });
  t.after(() => server.close());
  return { server, sessions };
}

const le = (port: number): Buffer => Buffer.from([port & 0xff, port >> 8]);
const frame = (channel: number, data: string | Buffer): Buffer => Buffer.concat([Buffer.from([channel]), Buffer.from(data)]);

test('two ports: each channel opens with its port, data reaches each target and comes back', async (t) => {
  const a = await listenEcho();
  const b = await listenEcho();
  t.after(() => Promise.all([a.close(), b.close()]));
  const { server, sessions } = await startServer(t);
  const inbox = new Inbox(new WebSocket(server.url(`/portforward?port=${a.port},${b.port}`), ['v4.channel.k8s.io']));
  t.after(() => inbox.ws.terminate());
  await inbox.opened;
  assert.equal(inbox.ws.protocol, 'v4.channel.k8s.io');
  for (const [channel, port] of [[0, a.port], [1, a.port], [2, b.port], [3, b.port]] as const) {
    assert.deepEqual((await inbox.next()).data, frame(channel, le(port)), `channel ${channel} prefix`);
  }
  inbox.ws.send(frame(0, 'to a'));
  assert.deepEqual((await inbox.next()).data, frame(0, 'to a'));
  inbox.ws.send(frame(2, 'to b'));
  assert.deepEqual((await inbox.next()).data, frame(2, 'to b'));
  inbox.ws.close();
  assert.equal((await inbox.closed).code, 1005, 'the client closed without a code');
  await within(sessions[0].closed, 2000, 'session close');
});

test('a port nobody listens on reports on its error channel; the socket closes once every port is done', async (t) => {
  const dead = await listenEcho();
  const deadPort = dead.port;
  await dead.close();
  const { server } = await startServer(t);
  const inbox = new Inbox(new WebSocket(server.url(`/portforward?port=${deadPort}`), ['v4.channel.k8s.io']));
  t.after(() => inbox.ws.terminate());
  await inbox.opened;
  assert.deepEqual((await inbox.next()).data, frame(0, le(deadPort)));
  assert.deepEqual((await inbox.next()).data, frame(1, le(deadPort)));
  const error = await inbox.next();
  assert.equal(error.data[0], 1);
  assert.match(error.data.subarray(1).toString(), new RegExp(`^error forwarding port ${deadPort} to pod test, uid : connect ECONNREFUSED`));
  assert.equal((await inbox.closed).code, 1000);
});

test('v4.base64 port-forward sends base64 prefixes and data as text', async (t) => {
  const echo = await listenEcho();
  t.after(() => echo.close());
  const { server } = await startServer(t);
  const inbox = new Inbox(new WebSocket(server.url(`/portforward?port=${echo.port}`), ['v4.base64.channel.k8s.io']));
  t.after(() => inbox.ws.terminate());
  await inbox.opened;
  const prefix = await inbox.next();
  assert.equal(prefix.binary, false);
  assert.equal(prefix.data.toString(), `0${le(echo.port).toString('base64')}`);
  assert.equal((await inbox.next()).data.toString(), `1${le(echo.port).toString('base64')}`);
  inbox.ws.send(`0${Buffer.from([0, 0xff, 7]).toString('base64')}`);
  assert.equal((await inbox.next()).data.toString(), '0AP8H');
  inbox.ws.close();
  await inbox.closed;
});

test('port-forward refuses v5 and garbage closes with 1002', async (t) => {
  const echo = await listenEcho();
  t.after(() => echo.close());
  const { server } = await startServer(t);
  const refused = new WebSocket(server.url(`/portforward?port=${echo.port}`), ['v5.channel.k8s.io']);
  t.after(() => refused.terminate());
  const status = await new Promise<number | undefined>((resolve) => {
    refused.on('error', () => undefined);
    refused.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode);
    });
  });
  assert.equal(status, 403);

  const inbox = new Inbox(new WebSocket(server.url(`/portforward?port=${echo.port}`), ['v4.channel.k8s.io']));
  t.after(() => inbox.ws.terminate());
  await inbox.opened;
  inbox.ws.send(frame(2, 'no such channel'));
  assert.equal((await within(inbox.closed, 2000, 'close')).code, 1002);
});

test('a port-forward URL without ports is refused with 400', async (t) => {
  const { server } = await startServer(t);
  const ws = new WebSocket(server.url('/portforward'), ['v4.channel.k8s.io']);
  t.after(() => ws.terminate());
  const refused = await new Promise<{ status: number | undefined; body: string }>((resolve) => {
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.body, 'port-forward: query parameter "port" is required\n');
});
