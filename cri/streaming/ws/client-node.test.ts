// @kubernetes/client-node against our sessions: its Exec and PortForward dial the API server's
// paths (/api/v1/namespaces/…/pods/…/exec|portforward) on the KubeConfig's cluster server, which
// here is our loopback server routing those paths to RemoteCommandSession and PortForwardSession.
//
// client-node 1.x (node-fetch and ws; runs on Node 20, 22 and 24): 2.x needs Node >= 22.19.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { Exec, KubeConfig, PortForward, type V1Status } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { REMOTECOMMAND_PROTOCOLS } from './channel.js';
import { RemoteCommandSession } from './remotecommand.js';
import { acceptChannelWebSocket } from './upgrade.js';
import { listenEcho, listenUpgrades, servePortForward, within, type Loopback } from './loopback-fixture.js';
import type { PortForwardSession } from './portforward.js';



function kubeConfig(server: Loopback): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'loopback', server: server.url('', 'http'), skipTLSVerify: true }],
    users: [{ name: 'nobody' }],
    contexts: [{ name: 'loopback', cluster: 'loopback', user: 'nobody' }],
    currentContext: 'loopback',
  });
  return kc;
}

interface World {
  server: Loopback;
  protocols: string[];
  portForwards: PortForwardSession[];
}

async function startApiServer(t: TestContext): Promise<World> {
  const world: World = { server: undefined as unknown as Loopback, protocols: [], portForwards: [] };
  world.server = await listenUpgrades(async (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    if (/^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/portforward$/.test(url.pathname)) {
      const session = await servePortForward(req, socket, head, 'ports');
      if (session) world.portForwards.push(session);
      return;
    }
    if (!/^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/exec$/.test(url.pathname)) {
      socket.destroy();
      return;
    }
    const accepted = await acceptChannelWebSocket(req, socket, head, REMOTECOMMAND_PROTOCOLS);
    if (!accepted) return;
    world.protocols.push(accepted.protocol.name);
    const on = (k: string): boolean => q.get(k) === 'true';
    const session = new RemoteCommandSession(accepted.ws, accepted.protocol, { stdin: on('stdin'), stdout: on('stdout'), stderr: on('stderr'), tty: on('tty') });
    // The fake command: stdout gets stdin upper-cased, stderr gets the byte count, exit code = argv[1].
    const [, code] = q.getAll('command');
    let count = 0;
    session.stdin?.on('data', (d: Buffer) => {
      count += d.length;
      session.stdout?.write(d.toString().toUpperCase());
    });
    session.stdin?.on('end', () => {
      session.stderr?.write(`${count} bytes\n`);
      void session.finish({ exitCode: Number(code) });
    });
  });
  t.after(() => world.server.close());
  return world;
}

function collect(stream: PassThrough): () => string {
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return () => text;
}

for (const code of [3, 0]) {
  test(`client-node Exec gets stdout, stderr and exit code ${code} (status ${code ? 'NonZeroExitCode' : 'Success'})`, async (t) => {
    const world = await startApiServer(t);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out = collect(stdout);
    const err = collect(stderr);
    let ws: WebSocket | undefined;
    t.after(() => ws?.terminate());
    const status = await within(
      new Promise<V1Status>((resolve, reject) => {
        new Exec(kubeConfig(world.server))
          .exec('default', 'pod', 'ctr', ['shout', String(code)], stdout, stderr, Readable.from([Buffer.from('hello '), Buffer.from('world')]), false, resolve)
          .then((conn) => (ws = conn), reject);
      }),
      5000,
      'exec status',
    );
    assert.deepEqual(world.protocols, ['v5.channel.k8s.io']);
    if (code === 0) {
      assert.deepEqual(status, { metadata: {}, status: 'Success' });
    } else {
      assert.deepEqual(status, {
        metadata: {},
        status: 'Failure',
        message: 'command terminated with non-zero exit code: exit status 3',
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: '3' }] },
      });
    }
    assert.equal(out(), 'HELLO WORLD');
    assert.equal(err(), '11 bytes\n');
  });
}

test('client-node PortForward carries 10 MB to a TCP echo target and back intact', async (t) => {
  const echo = await listenEcho();
  t.after(() => echo.close());
  const world = await startApiServer(t);
  const total = 10 << 20;
  const payload = randomBytes(total);
  const sent = createHash('sha256').update(payload).digest('hex');
  const received = createHash('sha256');
  let receivedBytes = 0;
  const output = new PassThrough();
  const errors = new PassThrough();
  const errorText = collect(errors);
  const input = new PassThrough();
  const done = new Promise<void>((resolve) => {
    output.on('data', (d: Buffer) => {
      received.update(d);
      receivedBytes += d.length;
      if (receivedBytes >= total) resolve();
    });
  });
  const started = process.hrtime.bigint();
  const ws = (await new PortForward(kubeConfig(world.server)).portForward('default', 'pod', [echo.port], output, errors, input)) as unknown as WebSocket;
  t.after(() => ws.terminate());
  for (let offset = 0; offset < total; offset += 64 << 10) input.write(payload.subarray(offset, offset + (64 << 10)));
  await within(done, 30000, '10 MB echo');
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  t.diagnostic(`10 MiB port-forward round trip in ${seconds.toFixed(2)} s: ${(total / (1 << 20) / seconds).toFixed(1)} MiB/s each way`);
  assert.equal(receivedBytes, total);
  assert.equal(received.digest('hex'), sent);
  assert.equal(errorText(), '');
  input.end(); // client-node closes the WebSocket at the end of its input
  assert.equal(world.portForwards.length, 1);
  await within(world.portForwards[0].closed, 5000, 'port-forward session close');
});
