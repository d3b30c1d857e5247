// e2e: the `skiff` CLI's exec, attach and port-forward against the real daemon and real pods, run
// as a child process the way people run it: stdin piped (bytes and exit code exact), a terminal
// from script(1) (the size set on it reaches the container's tty), attach to a container that
// echoes its stdin, and port-forward to a server in the pod's network namespace, stopped by
// SIGINT. Traffic only to 127.0.0.1; every process started here is stopped by its pid.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import type * as v1 from '../cri/gen/v1.js';
import { SKIFF_CLI, type TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

interface Cli {
  child: ChildProcess;
  stdout(): Buffer;
  stderr(): string;
  /** The exit code, or 128+signal. */
  exited: Promise<number>;
}

const children = new Set<ChildProcess>();

function track(child: ChildProcess): Cli {
  children.add(child);
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9));
    });
  });
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, exited };
}

/** `skiff -r <daemon> ARGS` with stdin, stdout and stderr as pipes. */
function cli(d: TestDaemon, args: string[]): Cli {
  return track(spawn(process.execPath, [SKIFF_CLI, '--runtime-endpoint', d.endpoint, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** A shell command line run by script(1) on a new pseudo-terminal; its stdin and stdout are pipes to the terminal. */
function underPty(command: string): Cli {
  return track(spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

const sh = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('skiff exec, attach and port-forward over WebSocket against skiffd', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let podId = '';
  let shell = '';
  let cfg: v1.PodSandboxConfig;

  before(async () => {
    w = await startPodWorld();
    d = w.d;
    cfg = { metadata: { name: 'cli-stream', namespace: 'e2e', uid: 'uid-cli-stream', attempt: 0 }, hostname: 'cli-stream', log_directory: w.dir, linux: { cgroup_parent: w.cgroupParent } };
    ({ pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg }));
    ({ container_id: shell } = await d.client.createContainer({
      pod_sandbox_id: podId,
      // Serves an echo on 8080 (one connection at a time, again and again) and otherwise waits.
      config: { metadata: { name: 'shell' }, image: { image: w.image }, command: ['sh', '-c', 'while true; do nc -l -p 8080 -e cat; done'], log_path: 'shell.log' },
      sandbox_config: cfg,
    }));
    await d.client.startContainer({ container_id: shell });
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    if (podId) await d?.client.removePodSandbox({ pod_sandbox_id: podId }).catch(() => undefined);
    await w?.close();
  });

  test('skiff exec -i: piped stdin reaches the command and its end too; stdout and stderr exact; exit code 3', { timeout: 30_000 }, async () => {
    const run = cli(d, ['exec', '-i', shell, 'sh', '-c', 'cat; echo oops >&2; exit 3']);
    const input = Buffer.from(randomBytes(150_000).toString('base64') + '\n');
    run.child.stdin?.end(input);
    assert.equal(await within(run.exited, 20_000, 'exec'), 3, run.stderr());
    assert.equal(run.stdout().length, input.length);
    assert.equal(sha(run.stdout()), sha(input));
    assert.equal(run.stderr(), 'oops\n');
  });

  test('skiff exec -it on a terminal: the terminal\'s size reaches the container\'s tty, typed input goes in, exit code 4', { timeout: 30_000 }, async () => {
    // The size may reach the container just after the command started: wait for it there.
    const remote = 'for i in $(seq 50); do [ "$(stty size)" = "33 99" ] && break; sleep 0.1; done; stty size; read line; echo "got $line"; exit 4';
    const command = `stty rows 33 cols 99; exec ${sh(process.execPath)} ${sh(SKIFF_CLI)} -r ${sh(d.endpoint)} exec -it ${shell} sh -c ${sh(remote)}`;
    const run = underPty(command);
    let text = '';
    run.child.stdout?.on('data', (b: Buffer) => (text += b.toString('latin1')));
    for (let i = 0; i < 200 && !/33 99\r\n/.test(text); i++) await new Promise((r) => setTimeout(r, 50));
    // The container's tty turns "\n" into "\r\n"; ours, raw, passes that on as it is.
    assert.match(text, /(^|\n)33 99\r\n/, JSON.stringify(text));
    run.child.stdin?.write('hello\r');
    const code = await within(run.exited, 20_000, 'exec -it');
    assert.match(text, /\ngot hello\r\n$/, JSON.stringify(text));
    assert.ok(!text.includes('\r\r\n'), `our terminal adds no carriage returns: ${JSON.stringify(text)}`);
    assert.equal(code, 4, `${JSON.stringify(text)} ${run.stderr()}`);
  });

  test('skiff attach -i: a container that echoes its stdin (stdin_once) sends it back exactly; its end ends the session', { timeout: 30_000 }, async () => {
    const { container_id: echo } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name: 'echo' }, image: { image: w.image }, command: ['cat'], stdin: true, stdin_once: true, tty: false, log_path: 'echo.log' },
      sandbox_config: cfg,
    });
    await d.client.startContainer({ container_id: echo });
    const run = cli(d, ['attach', '-i', echo]);
    const input = Buffer.from('line one\nline two\n' + randomBytes(20_000).toString('hex') + '\n');
    run.child.stdin?.end(input);
    assert.equal(await within(run.exited, 20_000, 'attach'), 0, run.stderr());
    assert.equal(run.stdout().toString(), input.toString());
    assert.equal(run.stderr(), '');
    for (let i = 0; i < 50; i++) {
      if ((await d.client.containerStatus({ container_id: echo })).status?.state === 'CONTAINER_EXITED') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await d.client.containerStatus({ container_id: echo })).status?.state, 'CONTAINER_EXITED', 'cat saw EOF and exited');
  });

  test('skiff port-forward POD :8080: bytes through the printed local port come back from the pod; SIGINT stops it', { timeout: 40_000 }, async () => {
    const run = cli(d, ['port-forward', podId, ':8080']);
    let port = 0;
    for (let i = 0; i < 200 && !port; i++) {
      port = Number(/^Forwarding from 127\.0\.0\.1:(\d+) -> 8080$/m.exec(run.stdout().toString())?.[1] ?? 0);
      if (!port) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(port > 0, `no Forwarding line: ${run.stdout().toString()} ${run.stderr()}`);
    const payload = randomBytes(1 << 20);
    // nc in the pod may be between two connections: try again until one echoes.
    let echoed: Buffer = Buffer.alloc(0);
    for (let attempt = 0; attempt < 20 && echoed.length < payload.length; attempt++) {
      echoed = await roundTrip(port, payload);
      if (echoed.length < payload.length) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(echoed.length, payload.length, run.stderr());
    assert.equal(sha(echoed), sha(payload));
    run.child.kill('SIGINT');
    assert.equal(await within(run.exited, 10_000, 'port-forward exit'), 0, run.stderr());
    assert.match(run.stdout().toString(), new RegExp(`^Forwarding from 127\\.0\\.0\\.1:${port} -> 8080\\n(Handling connection for ${port}\\n)+$`));
    await assert.rejects(roundTrip(port, Buffer.from('x')), /ECONNREFUSED/, 'the listener is gone');
  });
});

/** Sends `payload` to 127.0.0.1:port and returns what comes back until as much came or the other side ended. */
async function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  const socket = connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  let size = 0;
  try {
    await once(socket, 'connect');
    socket.write(payload);
    await within(
      new Promise<void>((resolve, reject) => {
        socket.on('data', (b: Buffer) => {
          parts.push(b);
          size += b.length;
          if (size >= payload.length) resolve();
        });
        socket.once('end', resolve);
        socket.once('error', reject);
      }),
      15_000,
      'echo through port-forward',
    );
    return Buffer.concat(parts);
  } finally {
    socket.destroy();
  }
}
