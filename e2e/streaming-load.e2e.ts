// e2e: the streaming server under volume, against the real daemon and pods: 100 MB of exec stdout
// over WebSocket (client-node) and SPDY (spdy-transport), 100 MB round trip through port-forward
// over both, each with a checksum and with skiffd's memory bounded while it flows (backpressure,
// not buffering); 20 exec sessions at once, each with its own output and exit code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { Exec, type V1Status } from '@kubernetes/client-node';
import type * as v1 from '../cri/gen/v1.js';
import { spdyDial } from '../cri/streaming/fake-backend.js';
import { stOpen } from '../cri/streaming/spdy/peer.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';
import { clientNodeForward, connectChannels, eventually, kubeConfigFor, sha256 } from './harness/streaming-clients.js';

const BIG = 100_000_000;
const MiB = 1 << 20;

/** A writable that hashes and counts what it is given. */
class Hasher extends Writable {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb();
  }
}

/** skiffd's resident memory, sampled every 50 ms while `work` runs: the most it grew by. */
async function rssGrowth<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; grewMiB: number }> {
  const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const base = rss();
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, rss())), 50);
  try {
    const result = await work();
    return { result, grewMiB: (peak - base) / MiB };
  } finally {
    clearInterval(timer);
  }
}

describe('streaming under load: 100 MB transfers, 20 sessions at once', { timeout: 240_000 }, () => {
  let w: PodWorld;
  let d: TestDaemon;
  let podId = '';
  let containerId = '';
  let bigSum = '';
  let daemonPid = 0;

  before(async () => {
    w = await startPodWorld();
    d = w.d;
    daemonPid = d.child!.pid!;
    const cfg: v1.PodSandboxConfig = { metadata: { name: 'load', namespace: 'e2e', uid: 'uid-load', attempt: 0 }, log_directory: w.dir, linux: { cgroup_parent: w.cgroupParent } };
    ({ pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg }));
    ({ container_id: containerId } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name: 'c' }, image: { image: w.image }, command: ['sh', '-c', 'nc -ll -p 8080 -e cat'], log_path: 'c.log' },
      sandbox_config: cfg,
    }));
    await d.client.startContainer({ container_id: containerId });
    // 100 MB of random bytes in the container's own filesystem, and their checksum from inside.
    const made = await d.client.execSync({ container_id: containerId, cmd: ['sh', '-c', `head -c ${BIG} /dev/urandom > /tmp/big && sha256sum /tmp/big`], timeout: 60 });
    assert.equal(made.exit_code, 0, made.stderr.toString());
    bigSum = made.stdout.toString().split(' ')[0];
    assert.match(bigSum, /^[0-9a-f]{64}$/);
  });

  after(async () => {
    await w?.close();
  });

  test('100 MB of exec stdout through client-node (WebSocket): checksum exact, skiffd memory bounded', async () => {
    const { url } = await d.client.exec({ container_id: containerId, cmd: ['cat', '/tmp/big'], stdin: false, stdout: true, stderr: true, tty: false });
    const out = new Hasher();
    const { result: status, grewMiB } = await rssGrowth(daemonPid, () =>
      new Promise<V1Status>((resolve, reject) => {
        new Exec(kubeConfigFor(url)).exec('e2e', 'load', 'c', ['cat', '/tmp/big'], out, null, null, false, resolve).catch(reject);
      }),
    );
    assert.equal(status.status, 'Success');
    assert.ok(await eventually(() => out.bytes === BIG), `${out.bytes} of ${BIG} bytes`);
    assert.equal(out.hash.digest('hex'), bigSum);
    assert.ok(grewMiB < 64, `skiffd grew by ${grewMiB.toFixed(1)} MiB while 100 MB went through`);
  });

  test('100 MB of exec stdout through spdy-transport, read slowly: checksum exact, skiffd memory bounded', async (t) => {
    const { url } = await d.client.exec({ container_id: containerId, cmd: ['cat', '/tmp/big'], stdin: false, stdout: true, stderr: false, tty: false });
    const { conn } = await spdyDial(t, url, ['v4.channel.k8s.io']);
    const error = await stOpen(conn, { streamtype: 'error' });
    const stdout = await stOpen(conn, { streamtype: 'stdout' });
    const hash = createHash('sha256');
    let bytes = 0;
    const statusText = new Promise<string>((resolve) => {
      let s = '';
      error.on('data', (b: Buffer) => (s += b.toString()));
      error.once('end', () => resolve(s));
    });
    const { grewMiB } = await rssGrowth(daemonPid, async () => {
      // A reader slower than the producer for the first 20 MB: the server must wait, not queue.
      for await (const chunk of stdout as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
        if (bytes < 20 * MiB) await new Promise((r) => setImmediate(r));
      }
    });
    assert.equal(bytes, BIG);
    assert.equal(hash.digest('hex'), bigSum);
    assert.equal((JSON.parse(await statusText) as { status: string }).status, 'Success');
    assert.ok(grewMiB < 64, `skiffd grew by ${grewMiB.toFixed(1)} MiB while 100 MB went through`);
  });

  test('100 MB round trip through port-forward (client-node WebSocket): checksum exact', async () => {
    const { url } = await d.client.portForward({ pod_sandbox_id: podId, port: [8080] });
    const payload = randomBytes(BIG);
    const { result: echoed, grewMiB } = await rssGrowth(daemonPid, () => clientNodeForward(url, payload));
    assert.equal(echoed.length, BIG);
    assert.equal(sha256(echoed), sha256(payload));
    assert.ok(grewMiB < 64, `skiffd grew by ${grewMiB.toFixed(1)} MiB while 100 MB went through`);
  });

  test('100 MB round trip through port-forward over SPDY (spdy-transport): checksum exact', async (t) => {
    const { url } = await d.client.portForward({ pod_sandbox_id: podId, port: [8080] });
    const { conn } = await spdyDial(t, url, ['portforward.k8s.io']);
    await stOpen(conn, { streamtype: 'error', port: '8080', requestid: '0' });
    const data = await stOpen(conn, { streamtype: 'data', port: '8080', requestid: '0' });
    const want = createHash('sha256');
    const got = createHash('sha256');
    let received = 0;
    const done = new Promise<void>((resolve) => {
      data.on('data', (b: Buffer) => {
        got.update(b);
        received += b.length;
        if (received >= BIG) resolve();
      });
    });
    const { grewMiB } = await rssGrowth(daemonPid, async () => {
      const chunk = 256 << 10;
      for (let off = 0; off < BIG; off += chunk) {
        const part = randomBytes(Math.min(chunk, BIG - off));
        want.update(part);
        if (!data.write(part)) await new Promise((r) => data.once('drain', r));
      }
      await done;
    });
    data.end();
    assert.equal(received, BIG);
    assert.equal(got.digest('hex'), want.digest('hex'));
    assert.ok(grewMiB < 64, `skiffd grew by ${grewMiB.toFixed(1)} MiB while 100 MB went through`);
  });

  test('20 exec sessions at once (WebSocket and SPDY): each gets its own output and exit code', async (t) => {
    const one = async (i: number): Promise<void> => {
      const cmd = ['sh', '-c', `head -c ${50_000 + i} /dev/zero | tr '\\0' '${String.fromCharCode(97 + i)}'; sleep 0.2; echo err${i} >&2; exit ${i + 1}`];
      const { url } = await d.client.exec({ container_id: containerId, cmd, stdin: false, stdout: true, stderr: true, tty: false });
      const want = String.fromCharCode(97 + i).repeat(50_000 + i);
      if (i % 2 === 0) {
        const c = await connectChannels(url);
        await c.closed;
        assert.ok(c.text(1) === want, `session ${i} stdout: ${c.text(1).length} bytes, ${JSON.stringify(c.text(1).slice(0, 20))}…; status ${c.text(3)}`);
        assert.equal(c.text(2), `err${i}\n`);
        assert.equal((JSON.parse(c.text(3)) as { details: { causes: { message: string }[] } }).details.causes[0].message, String(i + 1));
      } else {
        const { conn } = await spdyDial(t, url, ['v4.channel.k8s.io']);
        const [status, out, err] = await Promise.all(
          ['error', 'stdout', 'stderr'].map(async (streamtype) => {
            const s = await stOpen(conn, { streamtype });
            let text = '';
            s.on('data', (b: Buffer) => (text += b.toString()));
            return new Promise<string>((resolve) => s.once('end', () => resolve(text)));
          }),
        );
        assert.ok(out === want, `session ${i} stdout: ${out.length} bytes, ${JSON.stringify(out.slice(0, 20))}…; status ${status}`);
        assert.equal(err, `err${i}\n`);
        assert.equal((JSON.parse(status) as { details: { causes: { message: string }[] } }).details.causes[0].message, String(i + 1));
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: 20 }, (_, i) => one(i)));
    t.diagnostic(`20 sessions in ${(performance.now() - started).toFixed(0)} ms`);
  });
});
