// What the skiff-monitor tests share (monitor.test.ts, monitor-exec.test.ts): the monitor driven as
// skiffd drives it. A stand-in "runtime" (a shell script) forks the "container" into the
// background, writes its pid and exits 0, as `runtime create` does; the container is then
// reparented to the monitor. Exec sessions run plain shell commands as their "runtime exec",
// writing their own pid file. The runc tests use a busybox bundle.
import assert from 'node:assert/strict';
import { type TestContext } from 'node:test';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Readable } from 'node:stream';
import {
  ExecFrameReader,
  formatMonitorArgs,
  parseExitFile,
  parseLogLine,
  parseStatusReply,
  parseSyncLine,
  type ExecFrame,
  type LogRecord,
  type MonitorArgs,
} from '../pod/runtime/monitor-protocol.js';
import { nativeBinary } from './native.js';

export const MONITOR = nativeBinary('skiff-monitor');
export const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;

/** Pids a test started and may leave behind when it fails half-way: killLeftovers() ends them. */
export const leftovers = new Set<number>();
/** For after(): SIGKILLs the pids in leftovers, each by its own pid. */
export function killLeftovers(): void {
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export interface World {
  dir: string;
  args: Omit<MonitorArgs, 'runtimeArgv' | 'syncFd'>;
}

export async function world(t: TestContext): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-monitor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return {
    dir,
    args: { id: 'c1', log: join(dir, 'c1.log'), exitFile: join(dir, 'exit'), pidFile: join(dir, 'pid'), ctl: join(dir, 'ctl') },
  };
}

/** A stand-in `runtime create`: runs `container` (sh code) in the background, writes its pid. The
 * container keeps the runtime's stdin (sh gives a background job /dev/null unless redirected). */
export async function fakeRuntime(w: World, container: string): Promise<string[]> {
  const script = join(w.dir, 'runtime.sh');
  await writeFile(join(w.dir, 'container.sh'), `#!/bin/sh\ncd "${w.dir}"\n${container}\n`);
  await chmod(join(w.dir, 'container.sh'), 0o755);
  await writeFile(script, `#!/bin/sh\nexec 3<&0\n"${w.dir}/container.sh" <&3 3<&- &\necho $! > "$1"\n`);
  await chmod(script, 0o755);
  return [script, w.args.pidFile];
}

export interface Running {
  monitor: ChildProcess;
  sync: Promise<string>;
  exited: Promise<number | null>;
}

/** Spawns the monitor as skiffd does: detached (new session), sync line on fd 3. */
export function startMonitor(w: World, runtimeArgv: string[], extra: Partial<MonitorArgs> = {}): Running {
  const stderr = openSync(join(w.dir, 'monitor.stderr'), 'a');
  const monitor = spawn(MONITOR, formatMonitorArgs({ ...w.args, ...extra, syncFd: 3, runtimeArgv }), {
    detached: true,
    stdio: ['ignore', 'ignore', stderr, 'pipe'],
  });
  closeSync(stderr);
  if (monitor.pid) leftovers.add(monitor.pid);
  const exited = new Promise<number | null>((resolve) => monitor.on('exit', (code) => resolve(code)));
  const sync = new Promise<string>((resolve, reject) => {
    let text = '';
    const s = monitor.stdio[3] as NodeJS.ReadableStream;
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('end', () => resolve(text));
    s.on('error', reject);
  });
  return { monitor, sync, exited };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export async function readIf(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

export const exitFile = (w: World) => waitFor('the exit file', () => readIf(w.args.exitFile));

export async function logRecords(path: string): Promise<LogRecord[]> {
  const text = (await readIf(path)) ?? '';
  assert.ok(text === '' || text.endsWith('\n'), 'the log ends with a newline');
  return text.split('\n').slice(0, -1).map((l) => parseLogLine(l));
}

/** One request line on a fresh connection to the control socket, and its reply line. */
export function ctl(path: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let text = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request + '\n'));
    sock.on('data', (d: string) => {
      text += d;
      if (text.includes('\n')) {
        sock.destroy();
        resolve(text.slice(0, text.indexOf('\n')));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`control socket closed without a reply to ${request}`)));
  });
}

/** Sends `data` on one connection and collects `lines` reply lines. */
export function ctlLines(path: string, data: string, lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path, () => {
      if (data) sock.write(data);
    });
    let text = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      text += d;
      const got = text.split('\n').slice(0, -1);
      if (got.length >= lines) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('error', reject);
  });
}

/** Running, not a zombie: an orphaned monitor waits for whoever adopts it to reap it. */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A monitor whose container runs until the file `go` exists, then exits with `code`. */
export async function waitingContainer(t: TestContext, code = 0, extra: Partial<MonitorArgs> = {}) {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, `while [ ! -e go ]; do sleep 0.02; done; exit ${code}`), extra);
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync, JSON.stringify(sync));
  leftovers.add(sync.pid);
  /** Lets the container exit; resolves with its exit file once the monitor is gone. */
  const finish = async () => {
    await writeFile(join(w.dir, 'go'), '');
    const exit = parseExitFile(await exitFile(w));
    assert.equal(await m.exited, 0);
    return exit;
  };
  return { w, m, pid: sync.pid, finish };
}

/** An exec connection read at the byte level: everything the monitor sent, as it came. */
export class RawExec {
  bytes = Buffer.alloc(0);
  closed = false;
  readonly sock: Socket;
  constructor(path: string, request: string) {
    this.sock = createConnection(path, () => this.sock.write(request));
    this.sock.on('data', (b: Buffer) => (this.bytes = Buffer.concat([this.bytes, b])));
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('error', () => undefined);
  }
  frames(): ExecFrame[] {
    return new ExecFrameReader().push(this.bytes);
  }
  /** Concatenated payloads of one stream. */
  output(type: number): string {
    return Buffer.concat(this.frames().filter((f) => f.type === type).map((f) => f.data)).toString();
  }
  until(what: string, ok: (r: RawExec) => boolean, ms = 5000): Promise<true> {
    return waitFor(what, async () => ok(this) || undefined, ms);
  }
}

export function execLine(argv: string[], pidFile: string, timeoutMs = 0): string {
  return `${JSON.stringify({ op: 'exec', argv, pid_file: pidFile, timeout_ms: String(timeoutMs) })}\n`;
}

/** Children of every thread of `pid`. */
export function childrenOf(pid: number): number[] {
  try {
    return execFileSync('sh', ['-c', `cat /proc/${pid}/task/*/children`], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export const allGone = (pids: number[]) => waitFor(`pids ${pids.join(' ')} to be gone`, async () => (pids.some(alive) ? undefined : true));

/** A bundle whose rootfs is Debian's static busybox. */
export async function busyboxBundle(dir: string, args: string[], terminal: boolean): Promise<string> {
  const bundle = join(dir, terminal ? 'bundle-tty' : 'bundle');
  await mkdir(join(bundle, 'rootfs', 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(bundle, 'rootfs', 'bin', 'busybox'));
  await chmod(join(bundle, 'rootfs', 'bin', 'busybox'), 0o755);
  await symlink('busybox', join(bundle, 'rootfs', 'bin', 'sh'));
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as {
    process: { args: string[]; terminal: boolean; env: string[] };
    root: { readonly: boolean };
  };
  spec.process.args = args;
  spec.process.terminal = terminal;
  spec.process.env = ['PATH=/bin'];
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
  return bundle;
}

/** A monitor whose container runs `script` (sh, in the test's directory). */
export async function startContainer(t: TestContext, script: string, extra: Partial<MonitorArgs> = {}) {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, script), extra);
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync, JSON.stringify(sync));
  leftovers.add(sync.pid);
  const status = async () => parseStatusReply(await ctl(w.args.ctl, '{"op":"status"}'));
  return { w, m, pid: sync.pid, status, touch: (name: string) => writeFile(join(w.dir, name), '') };
}

/** Everything a stream of a session gives, as it comes. */
export function collect(r: Readable | null) {
  const chunks: Buffer[] = [];
  let n = 0;
  const c = {
    ended: false,
    get bytes() {
      return Buffer.concat(chunks, n);
    },
    get length() {
      return n;
    },
    text: () => c.bytes.toString(),
    until: (what: string, ok: (s: string) => boolean, ms = 5000) => waitFor(what, async () => ok(c.text()) || undefined, ms),
  };
  r?.on('data', (b: Buffer) => {
    chunks.push(b);
    n += b.length;
  });
  r?.on('end', () => (c.ended = true));
  return c;
}

export async function pssKiB(pid: number): Promise<number> {
  return Number(/^Pss:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]);
}

export const isSkiff = (code: string, message: RegExp) => (e: Error & { code?: string }) => e.code === code && message.test(e.message);

