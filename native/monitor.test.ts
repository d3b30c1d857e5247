// skiff-monitor driven as skiffd drives it. A stand-in "runtime" (a shell script) forks the
// "container" into the background, writes its pid and exits 0, as `runtime create` does; the
// container is then reparented to the monitor. One test runs real runc with a busybox bundle.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MONITOR_PROTOCOL as P,
  consoleSocketPath,
  formatMonitorArgs,
  parseExitFile,
  parseLogLine,
  parseStatusReply,
  parseSyncLine,
  type LogRecord,
  type MonitorArgs,
} from '../pod/runtime/monitor-protocol.js';
import { nativeBinary } from './native.js';

const MONITOR = nativeBinary('skiff-monitor');
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;

const leftovers = new Set<number>();
after(() => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

interface World {
  dir: string;
  args: Omit<MonitorArgs, 'runtimeArgv' | 'syncFd'>;
}

async function world(t: TestContext): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-monitor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return {
    dir,
    args: { id: 'c1', log: join(dir, 'c1.log'), exitFile: join(dir, 'exit'), pidFile: join(dir, 'pid'), ctl: join(dir, 'ctl') },
  };
}

/** A stand-in `runtime create`: runs `container` (sh code) in the background, writes its pid. */
async function fakeRuntime(w: World, container: string): Promise<string[]> {
  const script = join(w.dir, 'runtime.sh');
  await writeFile(join(w.dir, 'container.sh'), `#!/bin/sh\ncd "${w.dir}"\n${container}\n`);
  await chmod(join(w.dir, 'container.sh'), 0o755);
  await writeFile(script, `#!/bin/sh\n"${w.dir}/container.sh" &\necho $! > "$1"\n`);
  await chmod(script, 0o755);
  return [script, w.args.pidFile];
}

interface Running {
  monitor: ChildProcess;
  sync: Promise<string>;
  exited: Promise<number | null>;
}

/** Spawns the monitor as skiffd does: detached (new session), sync line on fd 3. */
function startMonitor(w: World, runtimeArgv: string[], extra: Partial<MonitorArgs> = {}): Running {
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

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function readIf(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

const exitFile = (w: World) => waitFor('the exit file', () => readIf(w.args.exitFile));

async function logRecords(path: string): Promise<LogRecord[]> {
  const text = (await readIf(path)) ?? '';
  assert.ok(text === '' || text.endsWith('\n'), 'the log ends with a newline');
  return text.split('\n').slice(0, -1).map((l) => parseLogLine(l));
}

/** One request line on a fresh connection to the control socket, and its reply line. */
function ctl(path: string, request: string): Promise<string> {
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

/** Running, not a zombie: an orphaned monitor waits for whoever adopts it to reap it. */
/** Sends `data` on one connection and collects `lines` reply lines. */
function ctlLines(path: string, data: string, lines: number): Promise<string[]> {
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

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

void test('the sync line carries the container pid, the log holds CRI records and the exit file exit code 3', async (t) => {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, 'echo out; echo err >&2; echo "two  words"; sleep 0.2; exit 3'));
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync, JSON.stringify(sync));
  assert.equal(sync.pid, Number((await readFile(w.args.pidFile, 'utf8')).trim()));

  const exit = parseExitFile(await exitFile(w));
  assert.equal(await m.exited, 0);
  assert.equal(exit.exitCode, 3);
  assert.equal(exit.signal, 0);
  assert.match(exit.exitedAt, TS_RE);
  const ms = Number(exit.exitedAtNs / 1_000_000n);
  assert.ok(Math.abs(ms - Date.now()) < 10_000, `exited_at_ns ${exit.exitedAtNs} is now`);
  assert.equal(new Date(exit.exitedAt).getTime(), ms);

  const text = await readFile(w.args.log, 'utf8');
  for (const line of text.trimEnd().split('\n')) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [PF] /);
  const recs = await logRecords(w.args.log);
  assert.deepEqual(
    recs.map((r) => `${r.stream} ${r.partial ? 'P' : 'F'} ${r.content}`).sort(),
    ['stderr F err', 'stdout F out', 'stdout F two  words'],
  );
  for (const r of recs) assert.match(r.time, TS_RE);
  assert.equal(existsSync(w.args.ctl), false, 'the control socket is removed at the end');
});

void test('a 40 KiB line is split into P, P, F records of at most 16 KiB whose concatenation is the line', async (t) => {
  const w = await world(t);
  let line = '';
  for (let i = 0; line.length < 40 * 1024; i++) line += `${i} `;
  line = line.slice(0, 40 * 1024);
  await writeFile(join(w.dir, 'line.txt'), `${line}\nafter\n`);
  const m = startMonitor(w, await fakeRuntime(w, 'cat line.txt'));
  await exitFile(w);
  assert.equal(await m.exited, 0);
  const recs = await logRecords(w.args.log);
  assert.deepEqual(recs.map((r) => (r.partial ? 'P' : 'F')), ['P', 'P', 'F', 'F']);
  assert.deepEqual(recs.map((r) => r.content.length), [16384, 16384, 40 * 1024 - 32768, 5]);
  assert.equal(recs.slice(0, 3).map((r) => r.content).join(''), line);
  assert.equal(recs[3].content, 'after');
});

void test('records at and around the max line length match the model: strip one \r before \n, P pieces of max, F rest', async (t) => {
  const w = await world(t);
  const max = 64;
  const lines: string[] = [];
  for (let len = 0; len <= 3 * max + 2; len++) {
    const body = Array.from({ length: len }, (_, i) => String.fromCharCode(97 + ((i + len) % 26))).join('');
    lines.push(`${body}\n`, `${body}\r\n`);
    if (len > 1) lines.push(`${body.slice(0, -1)}\r\r\n`, `${body.slice(0, len >> 1)}\r${body.slice(len >> 1)}\n`);
  }
  await writeFile(join(w.dir, 'lines.txt'), lines.join(''));
  const m = startMonitor(w, await fakeRuntime(w, 'cat lines.txt'), { logMaxLine: max });
  await exitFile(w);
  assert.equal(await m.exited, 0);

  const want: string[] = [];
  for (const line of lines) {
    const content = line.slice(0, line.endsWith('\r\n') ? -2 : -1);
    let rest = content;
    while (rest.length > max) {
      want.push(`P ${rest.slice(0, max)}`);
      rest = rest.slice(max);
    }
    want.push(`F ${rest}`);
  }
  const got = (await logRecords(w.args.log)).map((r) => `${r.partial ? 'P' : 'F'} ${r.content}`);
  assert.equal(got.length, want.length);
  assert.deepEqual(got, want);
});

void test('output left without a newline at exit is one P record, as containerd and conmon write it', async (t) => {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, "printf 'line\\r\\n'; printf 'no newline'; printf 'half' >&2"));
  await exitFile(w);
  assert.equal(await m.exited, 0);
  const recs = (await logRecords(w.args.log)).map((r) => `${r.stream} ${r.partial ? 'P' : 'F'} ${r.content}`).sort();
  assert.deepEqual(recs, ['stderr P half', 'stdout F line', 'stdout P no newline']);
});

void test('a container killed by SIGKILL exits with 137 and signal 9', async (t) => {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, 'echo started; exec sleep 30'));
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync);
  leftovers.add(sync.pid);
  await waitFor('the first line', async () => ((await readIf(w.args.log)) ?? '').includes('started') || undefined);
  process.kill(sync.pid, 'SIGKILL');
  const exit = parseExitFile(await exitFile(w));
  assert.deepEqual([exit.exitCode, exit.signal], [137, 9]);
  assert.equal(await m.exited, 0);
});

void test('control socket: status, reopen-log after a rename, reserved and unknown ops, reconnects', async (t) => {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, 'echo first; while [ ! -e go ]; do sleep 0.02; done; echo second; exit 0'));
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync);
  leftovers.add(sync.pid);
  await waitFor('the first line', async () => ((await readIf(w.args.log)) ?? '').includes('first') || undefined);

  const status = parseStatusReply(await ctl(w.args.ctl, '{"op":"status"}'));
  assert.deepEqual(status, { id: 'c1', pid: sync.pid, running: true, logDropped: 0 });
  // Connections come and go (a restarted skiffd); a half-sent request on a dropped one is harmless.
  await new Promise<void>((resolve) => {
    const s = createConnection(w.args.ctl, () => s.end('{"op":', resolve));
  });
  assert.equal(await ctl(w.args.ctl, '{"op":"attach"}'), '{"error":"unsupported"}');
  assert.equal(await ctl(w.args.ctl, ' { "x" : [1, {"op":"no"}], "op" : "resize", "width": 80 } '), '{"error":"unsupported"}');
  assert.equal(await ctl(w.args.ctl, '{"op":"dance"}'), '{"error":"unknown op \\"dance\\""}');
  assert.match(await ctl(w.args.ctl, 'not json'), /^\{"error":"bad request/);
  // Pipelined requests get one reply each; an over-long one an error, and the connection goes on.
  const long = `{"op":"status","pad":"${'x'.repeat(P.CTL_MAX_REQUEST * 2)}"}\n`;
  const replies = await ctlLines(w.args.ctl, `{"op":"status"}\n${long}{"op":"status"}\n`, 3);
  assert.equal(parseStatusReply(replies[0]).pid, sync.pid);
  assert.equal(replies[1], '{"error":"request too long"}');
  assert.equal(parseStatusReply(replies[2]).pid, sync.pid);
  // At most CTL_MAX_CLIENTS connections at once; one more is told so.
  const held = await Promise.all(
    Array.from({ length: P.CTL_MAX_CLIENTS }, () => new Promise<Socket>((resolve) => {
      const s = createConnection(w.args.ctl, () => resolve(s));
    })),
  );
  assert.deepEqual(await ctlLines(w.args.ctl, '', 1), ['{"error":"too many connections"}']);
  for (const s of held) s.destroy();

  await rename(w.args.log, `${w.args.log}.1`);
  assert.equal(await ctl(w.args.ctl, '{"op":"reopen-log"}'), '{"ok":true}');
  await writeFile(join(w.dir, 'go'), '');
  const exit = parseExitFile(await exitFile(w));
  assert.equal(exit.exitCode, 0);
  assert.equal(await m.exited, 0);
  assert.deepEqual((await logRecords(`${w.args.log}.1`)).map((r) => r.content), ['first']);
  assert.deepEqual((await logRecords(w.args.log)).map((r) => r.content), ['second']);
});

void test('log write errors (ENOSPC) drop output but never stop the monitor', async (t) => {
  const w = await world(t);
  w.args.log = '/dev/full';
  const m = startMonitor(w, await fakeRuntime(w, 'echo a; echo b >&2; while [ ! -e go ]; do sleep 0.02; done; exit 5'));
  assert.ok('pid' in parseSyncLine(await m.sync));
  const status = await waitFor('dropped records', async () => {
    const s = parseStatusReply(await ctl(w.args.ctl, '{"op":"status"}'));
    return s.logDropped >= 2 ? s : undefined;
  });
  assert.equal(status.running, true);
  await writeFile(join(w.dir, 'go'), '');
  assert.equal(parseExitFile(await exitFile(w)).exitCode, 5);
  assert.equal(await m.exited, 0);
});

void test('a grandchild holding the output pipes delays the exit file by about DRAIN_MS, no more', async (t) => {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, 'sleep 30 & echo $! > grandchild; echo bye; exit 4'));
  assert.ok('pid' in parseSyncLine(await m.sync));
  const exit = parseExitFile(await exitFile(w));
  // From the container's exit to the exit file's writing, by the monitor's own clock.
  const took = Number((statSync(w.args.exitFile, { bigint: true }).mtimeNs - exit.exitedAtNs) / 1_000_000n);
  const grandchild = Number(await readFile(join(w.dir, 'grandchild'), 'utf8'));
  leftovers.add(grandchild);
  t.after(() => process.kill(grandchild, 'SIGKILL'));
  assert.equal(exit.exitCode, 4);
  assert.ok(took >= P.DRAIN_MS - 20 && took < P.DRAIN_MS + 1000, `exit file ${took} ms after the exit`);
  assert.equal(await m.exited, 0);
  assert.deepEqual((await logRecords(w.args.log)).map((r) => r.content), ['bye']);
});

void test('a failing runtime create: the sync line has the error and the runtime output, the monitor exits 1', async (t) => {
  const w = await world(t);
  const script = join(w.dir, 'bad-runtime.sh');
  await writeFile(script, '#!/bin/sh\necho "bundle is broken" >&2\nexit 1\n');
  await chmod(script, 0o755);
  const m = startMonitor(w, [script]);
  const sync = parseSyncLine(await m.sync);
  assert.deepEqual(sync, { error: 'runtime create exited with status 1', output: 'bundle is broken\n' });
  assert.equal(await m.exited, 1);
  assert.equal(existsSync(w.args.ctl), false);
  assert.equal(existsSync(w.args.exitFile), false);

  const m2 = startMonitor(w, [join(w.dir, 'no-such-runtime')]);
  const sync2 = parseSyncLine(await m2.sync);
  assert.ok('error' in sync2 && /^run .*no-such-runtime: No such file/.test(sync2.error), JSON.stringify(sync2));
  assert.equal(await m2.exited, 1);
});

void test('the monitor outlives the process that started it and ignores SIGTERM, SIGINT and SIGHUP', async (t) => {
  const w = await world(t);
  const runtime = await fakeRuntime(w, 'echo early; while [ ! -e go ]; do sleep 0.02; done; echo late; exit 6');
  const args = formatMonitorArgs({ ...w.args, syncFd: 3, runtimeArgv: runtime });
  // A throwaway parent: starts the monitor in the background, records its pid and exits at once.
  const sh = spawn('sh', ['-c', `"$0" "$@" 3>"${w.dir}/sync" 2>"${w.dir}/monitor.stderr" </dev/null & echo $! >"${w.dir}/monitor.pid"`, MONITOR, ...args], {
    stdio: 'ignore',
  });
  await new Promise((resolve) => sh.on('exit', resolve));
  const monitorPid = Number(await waitFor('the monitor pid', () => readIf(join(w.dir, 'monitor.pid'))));
  leftovers.add(monitorPid);
  const sync = parseSyncLine(await waitFor('the sync line', async () => (await readIf(join(w.dir, 'sync')))?.trim() || undefined));
  assert.ok('pid' in sync);
  leftovers.add(sync.pid);

  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(monitorPid, sig);
  await sleep(50);
  assert.ok(alive(monitorPid), 'the monitor survives its parent and termination signals');
  assert.equal(parseStatusReply(await ctl(w.args.ctl, '{"op":"status"}')).running, true);
  await writeFile(join(w.dir, 'go'), '');
  assert.equal(parseExitFile(await exitFile(w)).exitCode, 6);
  assert.deepEqual((await logRecords(w.args.log)).map((r) => r.content), ['early', 'late']);
  await waitFor('the monitor to exit', async () => (alive(monitorPid) ? undefined : true));
});

void test('an idle monitor has a PSS under 300 KiB', async (t) => {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, 'i=0; while [ $i -lt 50 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done; exec sleep 30'));
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync);
  leftovers.add(sync.pid);
  await waitFor('the output', async () => ((await readIf(w.args.log)) ?? '').includes('err 49') || undefined);
  await ctl(w.args.ctl, '{"op":"status"}');
  const rollup = await readFile(`/proc/${m.monitor.pid}/smaps_rollup`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1]);
  const pss = kib('Pss');
  t.diagnostic(`idle monitor: Pss ${pss} KiB, Rss ${kib('Rss')} KiB, Private_Dirty ${kib('Private_Dirty')} KiB`);
  assert.ok(pss > 0 && pss < 300, `PSS ${pss} KiB`);
  process.kill(sync.pid, 'SIGKILL');
  assert.equal(parseExitFile(await exitFile(w)).exitCode, 137);
});

/** A bundle whose rootfs is Debian's static busybox. */
async function busyboxBundle(dir: string, args: string[], terminal: boolean): Promise<string> {
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

void test('runc: a busybox container logs through the monitor (pipes, then a terminal) and its exit reaches the exit file', async (t) => {
  const w = await world(t);
  const root = join(w.dir, 'runc-root');
  const cases = [
    { id: `skiff-mon-${process.pid}`, terminal: false, want: ['stdout F hello', 'stderr F oops'] },
    { id: `skiff-mon-tty-${process.pid}`, terminal: true, want: ['stdout F hello', 'stdout F oops'] },
  ];
  for (const c of cases) {
    t.after(() => {
      // Only when the test did not get to delete it (runc would recreate a removed --root).
      if (existsSync(join(root, c.id))) execFileSync('runc', ['--root', root, 'delete', '--force', c.id], { stdio: 'ignore' });
    });
    const bundle = await busyboxBundle(w.dir, ['sh', '-c', 'echo hello; echo oops >&2; exit 7'], c.terminal);
    const args = { ...w.args, id: c.id, log: join(w.dir, `${c.id}.log`), exitFile: join(w.dir, `${c.id}.exit`), tty: c.terminal };
    const create = ['runc', '--root', root, 'create', '--bundle', bundle, '--pid-file', w.args.pidFile];
    if (c.terminal) create.push('--console-socket', consoleSocketPath(w.args.ctl));
    const m = startMonitor({ dir: w.dir, args }, [...create, c.id], { tty: c.terminal });
    const sync = parseSyncLine(await m.sync);
    assert.ok('pid' in sync, `${JSON.stringify(sync)} ${(await readIf(join(w.dir, 'monitor.stderr'))) ?? ''}`);
    leftovers.add(sync.pid);
    assert.deepEqual(parseStatusReply(await ctl(w.args.ctl, '{"op":"status"}')), { id: c.id, pid: sync.pid, running: true, logDropped: 0 });
    execFileSync('runc', ['--root', root, 'start', c.id]);
    const exit = parseExitFile(await waitFor('the exit file', () => readIf(args.exitFile)));
    assert.equal(exit.exitCode, 7);
    assert.equal(await m.exited, 0);
    const recs = (await logRecords(args.log)).map((r) => `${r.stream} ${r.partial ? 'P' : 'F'} ${r.content}`);
    assert.deepEqual(recs.sort(), c.want.sort(), c.id);
    execFileSync('runc', ['--root', root, 'delete', c.id]);
    assert.equal(existsSync(consoleSocketPath(w.args.ctl)), false);
  }
});
