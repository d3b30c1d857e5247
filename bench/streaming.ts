// Benchmark, streaming part: how long an exec takes from the rpc to its exit status — ExecSync, and
// the streaming Exec (rpc → URL → upgrade → stdout and status → closed) over WebSocket and over
// SPDY/3.1 — and how fast PortForward carries bytes over each transport; for skiff, and for
// Debian's containerd 1.6 (whose streaming server is kubelet's library) with the same clients when
// it is installed.
//
// Each runtime runs one pod whose busybox container serves three ports with `nc -ll` (one process
// per connection): echo (`cat`), source (writes the transfer size of zeros) and sink (reads the
// transfer size, then answers "done"). The clients are the `ws` package speaking the channel
// subprotocols by hand and spdy-transport through the streaming tests' helpers, opening streams
// as kubectl does.
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { WebSocket, type RawData } from 'ws';
import type { CriClient } from '../cri/client/client.js';
import { readAll, spdyDial } from '../cri/streaming/fake-backend.js';
import { stOpen } from '../cri/streaming/spdy/peer.js';
import { TestDaemon } from '../e2e/harness/daemon.js';
import { freePort } from '../e2e/harness/process.js';
import type { TestRegistry } from '../e2e/harness/registry.js';
import { withContainerd } from './containerd-cri.js';
import { inBenchWorld, podConfig, removePods, slug, type Target, type World } from './pods.js';
import { MiB, percentile, table } from './stats.js';

// Not SKIFF_BENCH_EXECS: the pods section reads that one as execs per pod.
const EXECS = Number(process.env.SKIFF_BENCH_STREAM_EXECS ?? 50);
const FORWARD_MIB = Number(process.env.SKIFF_BENCH_FORWARD_MIB ?? 100);
const FORWARD_RUNS = 3;
const WARMUPS = 3;
const EXEC_TIMEOUT_MS = 10_000;
// A port-forward in which no byte moves either way for this long has failed.
const STALL_MS = 3000;
// What the client writes per message / per stream write, and how much it lets ws queue unsent.
const CHUNK = 64 << 10;
const SEND_HIGH_WATER = 1 << 20;

// Newest first, as kubectl offers them; containerd 1.6 knows neither v5 over WebSocket nor over SPDY.
const REMOTECOMMAND_OFFER = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const PORTFORWARD_WS = 'v4.channel.k8s.io';
const PORTFORWARD_SPDY = 'portforward.k8s.io';

const TRANSPORTS = ['WebSocket', 'SPDY'] as const;
type Transport = (typeof TRANSPORTS)[number];
const DIRECTIONS = ['pod → client', 'client → pod', 'echo'] as const;
type Direction = (typeof DIRECTIONS)[number];

interface Ports {
  echo: number;
  source: number;
  sink: number;
}

interface Runtime {
  target: Target;
  ports: Ports;
  /** A measurement that fails is noted and left out instead of failing the section (the peer). */
  lenient: boolean;
}

interface Figures {
  label: string;
  execSync?: number[];
  exec: Partial<Record<Transport, { ms: number[]; protocol: string }>>;
  /** MiB/s of each run. */
  forward: Partial<Record<`${Transport} ${Direction}`, number[]>>;
  notes: string[];
  seconds: number;
}

/** `promise`, or an error naming `what` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** spdyDial hands its socket's teardown to node:test's t.after(); outside a test, run() does it. */
class Teardown {
  private readonly fns: (() => unknown)[] = [];
  readonly context = { after: (fn: () => unknown) => void this.fns.push(fn) } as unknown as TestContext;
  run(): void {
    for (const fn of this.fns.splice(0).reverse()) fn();
  }
}

/** The container's servers; `nc -ll -e` runs its program once per connection. */
function serversScript(p: Ports, bytes: number): string {
  return [
    `busybox nc -ll -p ${p.echo} -e cat &`,
    `busybox nc -ll -p ${p.source} -e sh -c "busybox head -c ${bytes} /dev/zero" &`,
    `busybox nc -ll -p ${p.sink} -e sh -c "busybox head -c ${bytes} >/dev/null; echo done" &`,
    'wait',
  ].join('\n');
}

async function startPod(rt: Runtime, w: World, bytes: number): Promise<{ podId: string; containerId: string }> {
  const { client: c, handler } = rt.target;
  const name = `${slug(rt.target)}-streaming`;
  const config = podConfig(rt.target, w, name);
  const { pod_sandbox_id: podId } = await c.runPodSandbox({ config, runtime_handler: handler });
  const { container_id: containerId } = await c.createContainer({
    pod_sandbox_id: podId,
    config: { metadata: { name: 'servers', attempt: 0 }, image: { image: w.image }, command: ['sh', '-c', serversScript(rt.ports, bytes)], log_path: `${name}.log` },
    sandbox_config: config,
  });
  await c.startContainer({ container_id: containerId });
  return { podId, containerId };
}

/** Times `run` `n` times one after another, after WARMUPS untimed calls; returns ms. */
async function sample<T>(n: number, run: () => Promise<T>): Promise<{ ms: number[]; last: T }> {
  let last = await run();
  for (let i = 1; i < WARMUPS; i++) last = await run();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    last = await run();
    ms.push(performance.now() - t0);
  }
  return { ms, last };
}

async function execSyncTrue(c: CriClient, containerId: string): Promise<void> {
  const r = await c.execSync({ container_id: containerId, cmd: ['true'], timeout: String(EXEC_TIMEOUT_MS / 1000) });
  if (r.exit_code !== 0) throw new Error(`ExecSync true exited ${r.exit_code}: ${Buffer.from(r.stderr).toString()}`);
}

const ECHO_X: { cmd: string[]; stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean } = { cmd: ['echo', 'x'], stdin: false, stdout: true, stderr: false, tty: false };

/** What a v4+ error channel or stream says for a successful exec; pre-v4 says nothing. */
function checkExec(how: string, protocol: string, stdout: string, status: string): void {
  if (stdout !== 'x\n') throw new Error(`${how} echo x: stdout ${JSON.stringify(stdout)}, status ${JSON.stringify(status)}`);
  const v4 = /^v[4-9]\./.test(protocol);
  const ok = v4 ? (JSON.parse(status || '{}') as { status?: string }).status === 'Success' : status === '';
  if (!ok) throw new Error(`${how} echo x (${protocol || 'no subprotocol'}): status ${JSON.stringify(status)}`);
}

/** Exec `echo x` over WebSocket: channel 1 stdout, channel 3 the status; done when the server has closed. Returns the subprotocol. */
async function execWebSocket(c: CriClient, containerId: string): Promise<string> {
  const { url } = await c.exec({ container_id: containerId, ...ECHO_X });
  const ws = new WebSocket(url, REMOTECOMMAND_OFFER, { perMessageDeflate: false });
  const channels: Buffer[][] = [[], [], [], [], []];
  ws.on('message', (m: RawData) => {
    const b = toBuffer(m);
    if (b.length > 0 && b[0] < channels.length) channels[b[0]].push(b.subarray(1));
  });
  try {
    await within(once(ws, 'close'), EXEC_TIMEOUT_MS, 'exec over WebSocket');
  } finally {
    ws.terminate();
  }
  checkExec('exec over WebSocket', ws.protocol, Buffer.concat(channels[1]).toString(), Buffer.concat(channels[3]).toString());
  return ws.protocol;
}

/**
 * Exec `echo x` over SPDY, streams opened as kubectl does (error first): done once stdout and the
 * status have ended, or the server has closed the connection (kubelet's library, in containerd,
 * sends GOAWAY and closes without ending the streams; spdystream clients read that as the end).
 */
async function execSpdy(c: CriClient, containerId: string): Promise<string> {
  const { url } = await c.exec({ container_id: containerId, ...ECHO_X });
  const teardown = new Teardown();
  try {
    const { conn, protocol, socket } = await spdyDial(teardown.context, url, REMOTECOMMAND_OFFER);
    const closed = once(socket, 'close');
    const open = async (streamtype: string): Promise<{ text: () => string; ended: Promise<unknown> }> => {
      const stream = await stOpen(conn, { streamtype });
      stream.on('error', () => undefined);
      const parts: Buffer[] = [];
      stream.on('data', (b: Buffer) => parts.push(b));
      return { text: () => Buffer.concat(parts).toString(), ended: new Promise((resolve) => stream.once('end', resolve)) };
    };
    const status = await open('error');
    const stdout = await open('stdout');
    await within(Promise.race([Promise.all([stdout.ended, status.ended]), closed]), EXEC_TIMEOUT_MS, 'exec over SPDY');
    checkExec('exec over SPDY', protocol, stdout.text(), status.text());
    return protocol;
  } finally {
    teardown.run();
  }
}

/** One port-forward connection, whatever carries it. */
interface Forward {
  /** Sends bytes to the pod's port; resolves when the next may be sent. */
  write(chunk: Buffer): Promise<void>;
  /** `data`: bytes from the pod's port. `end`: the connection ended, with what the server said on the error channel. */
  readonly events: EventEmitter<{ data: [Buffer]; end: [string] }>;
  close(): void;
}

/**
 * port-forward over WebSocket (v4.channel.k8s.io, one port): channel 0 data both ways, channel 1
 * error text; the server starts each with the port as two bytes, little-endian. The client's data
 * frames carry no such prefix.
 */
async function forwardWebSocket(url: string, port: number): Promise<Forward> {
  const ws = new WebSocket(`${url}?port=${port}`, [PORTFORWARD_WS], { perMessageDeflate: false });
  const events = new EventEmitter<{ data: [Buffer]; end: [string] }>();
  const prefixLeft = [2, 2];
  let errorText = '';
  ws.on('message', (m: RawData) => {
    const b = toBuffer(m);
    const channel = b[0];
    if (channel !== 0 && channel !== 1) return;
    const skip = Math.min(prefixLeft[channel], b.length - 1);
    prefixLeft[channel] -= skip;
    const payload = b.subarray(1 + skip);
    if (payload.length === 0) return;
    if (channel === 0) events.emit('data', payload);
    else errorText += payload.toString();
  });
  ws.on('error', (err) => (errorText += `${errorText ? '; ' : ''}${err.message}`));
  ws.once('close', (code: number) => events.emit('end', `${errorText}${errorText ? '; ' : ''}WebSocket closed (${code})`));
  await within(once(ws, 'open'), EXEC_TIMEOUT_MS, 'port-forward WebSocket handshake');
  if (ws.protocol !== PORTFORWARD_WS) throw new Error(`port-forward over WebSocket: server chose subprotocol "${ws.protocol}"`);
  const DATA = Buffer.from([0]);
  return {
    events,
    write: (chunk) =>
      new Promise((resolve, reject) => {
        ws.send(Buffer.concat([DATA, chunk]), (err) => (err ? reject(err) : resolve()));
        if (ws.bufferedAmount <= SEND_HIGH_WATER) resolve();
      }),
    close: () => ws.close(),
  };
}

/** port-forward over SPDY as kubectl opens it: an error stream, then a data stream, sharing port and requestID. */
async function forwardSpdy(url: string, port: number): Promise<Forward> {
  const teardown = new Teardown();
  try {
    const { conn, socket } = await spdyDial(teardown.context, url, [PORTFORWARD_SPDY]);
    const headers = { port: String(port), requestid: '0' };
    const error = await stOpen(conn, { streamtype: 'error', ...headers });
    error.end(); // kubectl never writes on it
    const errorText = readAll(error).then(String, () => '');
    const data = await stOpen(conn, { streamtype: 'data', ...headers });
    for (const s of [error, data]) s.on('error', () => undefined);
    const events = new EventEmitter<{ data: [Buffer]; end: [string] }>();
    data.on('data', (b: Buffer) => events.emit('data', b));
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      void within(errorText, 1000, 'error stream').then(
        (text) => events.emit('end', text),
        () => events.emit('end', ''),
      );
    };
    data.once('end', end);
    socket.once('close', end);
    return {
      events,
      write: async (chunk) => {
        if (!data.write(chunk)) await once(data, 'drain');
      },
      close: () => teardown.run(),
    };
  } catch (err) {
    teardown.run();
    throw err;
  }
}

/**
 * Moves `bytes` over one connection: pod → client from the source port, client → pod into the
 * sink (until it answers "done"), or through the echo port and back. Returns MiB/s, timed from
 * the open connection to the last byte. Fails when nothing moves either way for STALL_MS.
 */
async function transfer(f: Forward, direction: Direction, bytes: number): Promise<number> {
  const t0 = performance.now();
  let sent = 0;
  let got = 0;
  let moved = t0;
  let tail = '';
  let stallTimer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve, reject) => {
    f.events.on('data', (b) => {
      got += b.length;
      moved = performance.now();
      if (direction !== 'client → pod') {
        if (got >= bytes) resolve();
        return;
      }
      tail = (tail + b.toString('latin1')).slice(-8);
      if (tail.includes('done')) resolve();
    });
    f.events.once('end', (said) => reject(new Error(`connection ended after ${sent} bytes sent and ${got} received${said ? `: ${said}` : ''}`)));
    stallTimer = setInterval(() => {
      if (performance.now() - moved > STALL_MS) reject(new Error(`stalled: nothing moved for ${STALL_MS} ms after ${sent} bytes sent and ${got} received`));
    }, 100);
  });
  done.catch(() => undefined); // awaited below; a failure while writing must not go unhandled meanwhile
  try {
    if (direction !== 'pod → client') {
      const chunk = randomBytes(CHUNK);
      while (sent < bytes) {
        const n = Math.min(CHUNK, bytes - sent);
        await Promise.race([f.write(chunk.subarray(0, n)), done]);
        sent += n;
        moved = performance.now();
      }
    }
    await done;
  } finally {
    clearInterval(stallTimer);
  }
  if (direction !== 'client → pod' && got !== bytes) throw new Error(`port-forward ${direction}: ${got} bytes back, want ${bytes}`);
  return bytes / MiB / ((performance.now() - t0) / 1000);
}

async function measure(rt: Runtime, w: World, bytes: number): Promise<Figures> {
  const started = performance.now();
  const { client: c, label } = rt.target;
  const f: Figures = { label, exec: {}, forward: {}, notes: [], seconds: 0 };
  const step = async <T>(what: string, run: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await run();
    } catch (err) {
      if (!rt.lenient) throw new Error(`${label}: ${what}: ${(err as Error).message}`, { cause: err });
      f.notes.push(`${label}: ${what} not measured: ${(err as Error).message.split('\n')[0]}`);
      return undefined;
    }
  };
  try {
    const { podId, containerId } = await startPod(rt, w, bytes);
    f.execSync = (await step('ExecSync', () => sample(EXECS, () => execSyncTrue(c, containerId))))?.ms;
    const execs: Record<Transport, (c: CriClient, id: string) => Promise<string>> = { WebSocket: execWebSocket, SPDY: execSpdy };
    for (const t of TRANSPORTS) {
      const r = await step(`exec over ${t}`, () => sample(EXECS, () => execs[t](c, containerId)));
      if (r) f.exec[t] = { ms: r.ms, protocol: r.last };
    }
    const dial: Record<Transport, (url: string, port: number) => Promise<Forward>> = { WebSocket: forwardWebSocket, SPDY: forwardSpdy };
    const portOf: Record<Direction, number> = { 'pod → client': rt.ports.source, 'client → pod': rt.ports.sink, echo: rt.ports.echo };
    const forwardOnce = async (t: Transport, d: Direction, size: number): Promise<number> => {
      const port = portOf[d];
      const { url } = await c.portForward({ pod_sandbox_id: podId, port: [port] });
      const conn = await dial[t](url, port);
      try {
        return await transfer(conn, d, size);
      } finally {
        conn.close();
      }
    };
    for (const t of TRANSPORTS) {
      // Untimed: the first connection of a transport, and a check that the servers listen (small
      // enough to fit in any flow-control window).
      if ((await step(`port-forward over ${t}`, () => forwardOnce(t, 'echo', 16 << 10))) === undefined) continue;
      for (const d of DIRECTIONS) {
        const runs: number[] = [];
        for (let i = 0; i < FORWARD_RUNS; i++) {
          const r = await step(`port-forward over ${t} ${d}`, () => forwardOnce(t, d, bytes));
          if (r === undefined) break;
          runs.push(r);
        }
        if (runs.length === FORWARD_RUNS) f.forward[`${t} ${d}`] = runs;
      }
    }
  } catch (err) {
    await removePods(rt.target, slug(rt.target)).catch((cleanupErr: unknown) => {
      throw new Error(`${(err as Error).message}; removing the pod then failed too: ${(cleanupErr as Error).message}`, { cause: err });
    });
    throw err;
  }
  await removePods(rt.target, slug(rt.target));
  f.seconds = (performance.now() - started) / 1000;
  return f;
}

async function measureSkiff(w: World, registryHost: string, bytes: number): Promise<Figures> {
  const d = await TestDaemon.start({ toml: `[registry]\ninsecure = ["${registryHost}"]\n` });
  try {
    await d.client.pullImage({ image: { image: w.image } });
    const target: Target = { label: 'skiff', client: d.client, handler: '', hostNetwork: false, supervisor: 'skiff-monitor' };
    return await measure({ target, ports: { echo: 8080, source: 8081, sink: 8082 }, lenient: false }, w, bytes);
  } finally {
    await d.cleanup();
  }
}

/** containerd's figures, or why there are none (in `notes`). */
function measureContainerd(w: World, reg: TestRegistry, bytes: number, notes: string[]): Promise<Figures | undefined> {
  return withContainerd(reg, w.image, notes, async (client) => {
    const target: Target = { label: 'containerd', client, handler: '', hostNetwork: true, supervisor: 'containerd-shim' };
    // Host network: the servers listen on the node, on ports nobody uses now.
    const ports = { echo: await freePort(), source: await freePort(), sink: await freePort() };
    return measure({ target, ports, lenient: true }, w, bytes);
  });
}

function report(results: Figures[], bytes: number, load: number[]): string {
  const ms = (xs: number[] | undefined): string => (xs ? `${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 90).toFixed(1)}` : 'n/a');
  const rate = (xs: number[] | undefined): string => (xs ? `${percentile(xs, 50).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})` : 'n/a');
  const rows: string[][] = [
    ['ExecSync `true` round trip p50 / p90 ms', ...results.map((r) => ms(r.execSync))],
    ...TRANSPORTS.map((t) => [`streaming exec \`echo x\` (${t}) p50 / p90 ms`, ...results.map((r) => ms(r.exec[t]?.ms))]),
    ...TRANSPORTS.flatMap((t) => DIRECTIONS.map((d) => [`port-forward ${t}, ${d} MiB/s`, ...results.map((r) => rate(r.forward[`${t} ${d}`]))])),
  ];
  const protocols = results.map((r) => `${r.label} ${TRANSPORTS.map((t) => `${t} ${r.exec[t]?.protocol ?? 'n/a'}`).join(', ')}`);
  return [
    'one pod per runtime, its busybox container serving three ports with `nc -ll`: echo (cat), source (zeros), sink (answers "done" after the transfer size).',
    `exec: ${EXECS} samples each after ${WARMUPS} untimed, one after another; ExecSync runs \`true\`; streaming exec runs \`echo x\` (stdout only) and is timed from the ` +
      'Exec rpc through the upgrade, stdout and the status (channel 3 / error stream) to the end of the connection.',
    `exec subprotocols negotiated: ${protocols.join('; ')}.`,
    `port-forward: ${bytes / MiB} MiB per run, a new PortForward URL and connection each run, ${FORWARD_RUNS} runs after one untimed 16 KiB echo; ` +
      `median (min–max) MiB/s from the open connection to the last byte back (pod → client, echo: ${bytes / MiB} MiB out and the same back) or the sink's answer ` +
      `(client → pod). WebSocket ${PORTFORWARD_WS}; SPDY/3.1 ${PORTFORWARD_SPDY} through spdy-transport; client messages and writes of ${CHUNK >> 10} KiB.`,
    "skiff's pod has its own network namespace (built-in network); containerd has no CNI plugin here, so its pod uses the host network and port-forward dials the " +
      'node\'s loopback. skiffd logs at debug level (e2e harness).',
    `host: ${cpus().length} CPUs, 1-min load average ${load[0].toFixed(2)} before and ${load[1].toFixed(2)} after (other work skews these figures).`,
    ...(results.some((r) => r.label === 'containerd' && !r.forward['SPDY client → pod'])
      ? [
          'spdy-transport keeps to SPDY/3\'s 64 KiB initial send window until the server sends WINDOW_UPDATE; containerd\'s server (moby/spdystream, as kubelet) never ' +
            'does, so this client stalls after 64 KiB towards it. kubectl\'s spdystream ignores flow control and is not limited so.',
        ]
      : []),
    ...results.map((r) => `${r.label}: ${r.seconds.toFixed(1)} s`),
    '',
    table(['metric', ...results.map((r) => r.label)], rows),
  ].join('\n');
}

export async function benchStreaming(): Promise<string> {
  const notes: string[] = [];
  const results: Figures[] = [];
  const load = [loadavg()[0]];
  const bytes = Math.round(FORWARD_MIB * MiB);
  await inBenchWorld('streaming', notes, async (w, reg) => {
    results.push(await measureSkiff(w, reg.host, bytes));
    const peer = await measureContainerd(w, reg, bytes, notes);
    if (peer) results.push(peer);
  });
  load.push(loadavg()[0]);
  return [report(results, bytes, load), ...results.flatMap((r) => r.notes), ...notes].join('\n');
}
