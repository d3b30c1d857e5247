// skiff-monitor exec sessions (monitor-exec.c), driven through the real binary: ExecSync sessions
// (output, status, deadline, disconnect, backpressure), interactive ones (stdin, a terminal from
// real runc) and their client in pod/runtime/monitor-exec.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorExec, monitorExecSession } from '../pod/runtime/monitor-exec.js';
import {
  ExecFrameReader,
  MONITOR_PROTOCOL as P,
  formatClientFrame,
  parseExecExit,
  parseExitFile,
  parseStatusReply,
  parseSyncLine,
} from '../pod/runtime/monitor-protocol.js';
import {
  RawExec,
  allGone,
  alive,
  busyboxBundle,
  childrenOf,
  collect,
  ctl,
  ctlLines,
  execLine,
  exitFile,
  killLeftovers,
  leftovers,
  readIf,
  startMonitor,
  waitFor,
  waitingContainer,
  world,
} from './monitor-test-helpers.js';

after(killLeftovers);

void test('exec: stdout and stderr come back apart and byte for byte, over 1 MiB each, and maxOutput cuts without stopping the command', async (t) => {
  const c = await waitingContainer(t);
  const out = randomBytes(1536 * 1024 + 7);
  const err = randomBytes(1024 * 1024 + 13);
  await writeFile(join(c.w.dir, 'out.bin'), out);
  await writeFile(join(c.w.dir, 'err.bin'), err);
  const argv = ['sh', '-c', `cat "${c.w.dir}/out.bin" & cat "${c.w.dir}/err.bin" >&2; wait; echo done > "${c.w.dir}/done"`];
  const pidFile = join(c.w.dir, 'exec.pid');

  const r = await monitorExec(c.w.args.ctl, { argv, pidFile, timeoutMs: 0, maxOutput: 4 << 20 });
  assert.deepEqual([r.exitCode, r.signal, r.timedOut], [0, 0, false]);
  assert.equal(r.stdout.length, out.length);
  assert.ok(r.stdout.equals(out), 'stdout is exact');
  assert.equal(r.stderr.length, err.length);
  assert.ok(r.stderr.equals(err), 'stderr is exact');

  await rm(join(c.w.dir, 'done'));
  const cut = await monitorExec(c.w.args.ctl, { argv, pidFile, timeoutMs: 0, maxOutput: 1000 });
  assert.ok(cut.stdout.equals(out.subarray(0, 1000)));
  assert.ok(cut.stderr.equals(err.subarray(0, 1000)));
  assert.equal(cut.exitCode, 0);
  assert.equal(await readFile(join(c.w.dir, 'done'), 'utf8'), 'done\n', 'the command ran to its end');

  // Frames never exceed FRAME_MAX, and the stream does not start like an error line.
  const raw = new RawExec(c.w.args.ctl, execLine(['sh', '-c', `cat "${c.w.dir}/out.bin"`], pidFile));
  await raw.until('the session to end', (x) => x.closed);
  assert.equal(raw.bytes[0], P.FRAME_STDOUT);
  const frames = raw.frames();
  assert.ok(frames.every((f) => f.data.length <= P.FRAME_MAX));
  assert.equal(frames.at(-1)?.type, P.FRAME_EXIT);
  assert.deepEqual(parseExecExit(frames.at(-1)?.data.toString() ?? ''), { exitCode: 0, signal: 0, timedOut: false });
  assert.ok(Buffer.concat(frames.slice(0, -1).map((f) => f.data)).equals(out));
  assert.equal(await c.finish().then((e) => e.exitCode), 0);
});

void test('exec: exit codes 0 and 3, 137 and 143 for SIGKILL and SIGTERM; the container stays running and keeps its own exit code', async (t) => {
  const c = await waitingContainer(t, 6);
  const pidFile = join(c.w.dir, 'exec.pid');
  const table: [string, number, number][] = [
    ['exit 0', 0, 0],
    ['echo x; exit 3', 3, 0],
    ['kill -KILL $$', 137, 9],
    ['kill -TERM $$', 143, 15],
  ];
  for (const [script, code, signal] of table) {
    const r = await monitorExec(c.w.args.ctl, { argv: ['sh', '-c', script], pidFile, timeoutMs: 10_000, maxOutput: 1024 });
    assert.deepEqual([r.exitCode, r.signal, r.timedOut], [code, signal, false], script);
  }
  const status = parseStatusReply(await ctl(c.w.args.ctl, '{"op":"status"}'));
  assert.deepEqual([status.running, status.pid], [true, c.pid], 'an exec exit is not the container exit');
  const exit = await c.finish();
  assert.deepEqual([exit.exitCode, exit.signal], [6, 0]);
});

void test('exec: the command gets /dev/null stdin, only fds 0-2, no blocked or ignored signals, and its own process group', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  const run = async (script: string) =>
    (await monitorExec(c.w.args.ctl, { argv: ['sh', '-c', script], pidFile, timeoutMs: 10_000, maxOutput: 65536 })).stdout.toString();
  assert.equal(await run('readlink /proc/self/fd/0'), '/dev/null\n');
  assert.equal(await run('exec ls /proc/self/fd'), '0\n1\n2\n3\n', 'fds 0-2, and 3 is ls reading the directory');
  const status = await run('exec cat /proc/self/status');
  assert.match(status, /^SigBlk:\s+0+$/m);
  assert.match(status, /^SigIgn:\s+0+$/m);
  const [pid, pgrp] = (await run('echo $$; cut -d" " -f5 /proc/$$/stat')).trim().split('\n').map(Number);
  assert.equal(pgrp, pid, 'the command leads its own process group');
  assert.notEqual(pgrp, c.m.monitor.pid);
  await c.finish();
});

void test('exec: at timeout_ms the pid_file process and all its descendants are killed, including one in its own session', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  const script = `echo $$ > "${pidFile}"; setsid sleep 100 & sleep 100 & sleep 100`;
  const started = Date.now();
  const pending = monitorExec(c.w.args.ctl, { argv: ['sh', '-c', script], pidFile, timeoutMs: 800, maxOutput: 1024 });
  const shell = Number(await waitFor('the pid file', async () => (await readIf(pidFile))?.trim() || undefined));
  const sleeps = await waitFor('three sleeps', async () => {
    const kids = childrenOf(shell);
    return kids.length === 3 ? kids : undefined;
  });
  for (const p of [shell, ...sleeps]) leftovers.add(p);
  assert.ok([shell, ...sleeps].every(alive));
  const r = await pending;
  const took = Date.now() - started;
  assert.deepEqual([r.exitCode, r.signal, r.timedOut], [137, 9, true]);
  assert.ok(took >= 800 && took < 5000, `ended after ${took} ms`);
  await allGone([shell, ...sleeps]);
  await c.finish();
});

void test('exec: a client that disconnects mid-session gets its process trees killed: the runtime\'s and the pid_file\'s', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  // Like a runtime: the exec'd process (pid_file) is not under the runtime process, and in its own
  // session; the runtime itself has a child too.
  const inner = `echo $$ > "${pidFile}"; sleep 100 & sleep 100`;
  const script = `(setsid sh -c '${inner}' &); echo $$ > "${c.w.dir}/runtime.pid"; sleep 100`;
  const raw = new RawExec(c.w.args.ctl, execLine(['sh', '-c', script], pidFile));
  const exec = Number(await waitFor('the pid file', async () => (await readIf(pidFile))?.trim() || undefined));
  const runtime = Number(await waitFor('the runtime pid', async () => (await readIf(join(c.w.dir, 'runtime.pid')))?.trim() || undefined));
  const tree = await waitFor('both trees', async () => {
    const a = childrenOf(exec);
    const b = childrenOf(runtime);
    return a.length === 2 && b.length === 1 ? [exec, runtime, ...a, ...b] : undefined;
  });
  for (const p of tree) leftovers.add(p);
  assert.equal(raw.closed, false);
  raw.sock.destroy();
  await allGone(tree);
  // The slot is free again, and the monitor serves on.
  const r = await waitFor('a new session', () => monitorExec(c.w.args.ctl, { argv: ['echo', 'again'], pidFile, timeoutMs: 0, maxOutput: 100 }).catch(() => undefined));
  assert.equal(r.stdout.toString(), 'again\n');
  await c.finish();
});

void test('exec: EXEC_MAX_SESSIONS run at once, one more is refused with an error line, and an unknown op still answers', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  const sessions: RawExec[] = [];
  for (let i = 0; i < P.EXEC_MAX_SESSIONS; i++) {
    const s = new RawExec(c.w.args.ctl, execLine(['sh', '-c', 'echo $$; exec sleep 30'], pidFile));
    sessions.push(s);
    await s.until(`session ${i} to start`, (x) => x.output(P.FRAME_STDOUT).endsWith('\n'));
  }
  const pids = sessions.map((s) => Number(s.output(P.FRAME_STDOUT)));
  for (const p of pids) leftovers.add(p);
  assert.ok(pids.every(alive));

  const extra = new RawExec(c.w.args.ctl, execLine(['sh', '-c', 'echo never'], pidFile));
  await extra.until('the refusal', (x) => x.bytes.includes(10));
  assert.equal(extra.bytes[0], '{'.charCodeAt(0));
  assert.equal(extra.bytes.toString(), '{"error":"too many exec sessions"}\n');
  await assert.rejects(
    monitorExec(c.w.args.ctl, { argv: ['true'], pidFile, timeoutMs: 0, maxOutput: 1 }),
    (e: Error & { code?: string }) => e.code === 'SKIFF_MONITOR_BUSY' && /too many exec sessions/.test(e.message),
  );
  assert.equal(await ctl(c.w.args.ctl, '{"op":"nope"}'), '{"error":"unknown op \\"nope\\""}');
  assert.equal(parseStatusReply(await ctl(c.w.args.ctl, '{"op":"status"}')).running, true);
  extra.sock.destroy();
  for (const s of sessions) s.sock.destroy();
  await allGone(pids);
  await c.finish();
});

void test('exec: bad requests get an error line and the connection goes on serving; \\u escapes in argv are decoded', async (t) => {
  const c = await waitingContainer(t);
  const bad = [
    '{"op":"exec"}',
    '{"op":"exec","argv":[],"pid_file":"/p","timeout_ms":"0"}',
    '{"op":"exec","argv":"sh","pid_file":"/p","timeout_ms":"0"}',
    '{"op":"exec","argv":["sh",1],"pid_file":"/p","timeout_ms":"0"}',
    '{"op":"exec","argv":["sh"],"timeout_ms":"0"}',
    '{"op":"exec","argv":["sh"],"pid_file":"/p","timeout_ms":"soon"}',
    '{"op":"exec","argv":["sh"],"pid_file":"/p","timeout_ms":5}',
    '{"op":"exec","argv":["a\\u0000b"],"pid_file":"/p","timeout_ms":"0"}',
    `{"op":"exec","argv":${JSON.stringify(Array<string>(P.EXEC_MAX_ARGS + 1).fill('x'))},"pid_file":"/p","timeout_ms":"0"}`,
  ];
  const lines = [...bad, '{"op":"exec","argv":["/no/such/runtime"],"pid_file":"/p","timeout_ms":"0"}', '{"op":"status"}'];
  const replies = await ctlLines(c.w.args.ctl, lines.map((l) => `${l}\n`).join(''), lines.length);
  for (let i = 0; i < bad.length; i++) assert.match(replies[i], /^\{"error":"bad request: exec wants/, bad[i]);
  assert.equal(replies[bad.length], '{"error":"run /no/such/runtime: No such file or directory"}');
  assert.equal(parseStatusReply(replies[bad.length + 1]).running, true);

  const escaped = '{"op":"exec","argv":["sh","-c","printf %s \\"$0\\"","\\u0068\\u00e9\\ud83d\\ude00\\t\\/"],"pid_file":"/p","timeout_ms":"0"}\n';
  const raw = new RawExec(c.w.args.ctl, escaped);
  await raw.until('the session to end', (x) => x.closed);
  assert.equal(raw.output(P.FRAME_STDOUT), 'hé😀\t/');
  await c.finish();
});

void test('exec: a client that stops reading blocks the command instead of growing the monitor', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  const total = 8 << 20;
  const raw = new RawExec(c.w.args.ctl, execLine(['sh', '-c', `head -c ${total} /dev/zero; touch "${c.w.dir}/wrote"`], pidFile));
  raw.sock.pause();
  await sleep(700);
  assert.equal(existsSync(join(c.w.dir, 'wrote')), false, 'the command is blocked on its output');
  assert.ok(raw.bytes.length < total);
  const rollup = await readFile(`/proc/${c.m.monitor.pid}/smaps_rollup`, 'utf8');
  const pss = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1]);
  t.diagnostic(`monitor with a stalled session: Pss ${pss} KiB`);
  assert.ok(pss > 0 && pss < 400, `PSS ${pss} KiB`);
  assert.equal(parseStatusReply(await ctl(c.w.args.ctl, '{"op":"status"}')).running, true, 'the loop still serves');
  raw.sock.resume();
  await raw.until('the session to end', (x) => x.closed, 20_000);
  const frames = raw.frames();
  assert.equal(frames.filter((f) => f.type === P.FRAME_STDOUT).reduce((n, f) => n + f.data.length, 0), total);
  assert.deepEqual(parseExecExit(frames.at(-1)?.data.toString() ?? ''), { exitCode: 0, signal: 0, timedOut: false });
  assert.ok(existsSync(join(c.w.dir, 'wrote')));
  await c.finish();
});

void test('exec: when the container exits, running sessions are killed, get their exit frames, and the exit file follows', async (t) => {
  const c = await waitingContainer(t, 4);
  const pidFile = join(c.w.dir, 'exec.pid');
  const pending = monitorExec(c.w.args.ctl, {
    argv: ['sh', '-c', `echo $$ > "${pidFile}"; echo early; setsid sleep 100 & sleep 100`],
    pidFile,
    timeoutMs: 0,
    maxOutput: 1024,
  });
  const shell = Number(await waitFor('the pid file', async () => (await readIf(pidFile))?.trim() || undefined));
  const sleeps = await waitFor('two sleeps', async () => {
    const kids = childrenOf(shell);
    return kids.length === 2 ? kids : undefined;
  });
  for (const p of [shell, ...sleeps]) leftovers.add(p);
  await writeFile(join(c.w.dir, 'go'), '');
  const r = await pending;
  assert.deepEqual([r.exitCode, r.signal, r.timedOut], [137, 9, false]);
  assert.equal(r.stdout.toString(), 'early\n');
  const exit = parseExitFile(await exitFile(c.w));
  assert.deepEqual([exit.exitCode, exit.oomKilled], [4, false]);
  assert.equal(await c.m.exited, 0);
  await allGone([shell, ...sleeps]);
  assert.match(await ctl(c.w.args.ctl, '{"op":"status"}').catch((e: Error) => e.message), /ENOENT|ECONNREFUSED/, 'the socket is gone');
});

void test('runc: exec through the monitor returns output and status, and a timeout kills the process runc exec started', async (t) => {
  const w = await world(t);
  const root = join(w.dir, 'runc-root');
  const id = `skiff-mon-exec-${process.pid}`;
  t.after(() => {
    if (existsSync(join(root, id))) execFileSync('runc', ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
  });
  const bundle = await busyboxBundle(w.dir, ['sh', '-c', 'sleep 60'], false);
  const create = ['runc', '--root', root, 'create', '--bundle', bundle, '--pid-file', w.args.pidFile, id];
  const m = startMonitor(w, create);
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync, `${JSON.stringify(sync)} ${(await readIf(join(w.dir, 'monitor.stderr'))) ?? ''}`);
  leftovers.add(sync.pid);
  execFileSync('runc', ['--root', root, 'start', id]);

  const pidFile = join(w.dir, 'exec.pid');
  const exec = (script: string, timeoutMs: number) =>
    monitorExec(w.args.ctl, { argv: ['runc', '--root', root, 'exec', '--pid-file', pidFile, id, 'sh', '-c', script], pidFile, timeoutMs, maxOutput: 1 << 20 });
  const r = await exec('echo out; echo err >&2; exit 5', 10_000);
  assert.deepEqual([r.stdout.toString(), r.stderr.toString(), r.exitCode, r.timedOut], ['out\n', 'err\n', 5, false]);

  const started = Date.now();
  const slow = await exec('sleep 50 & sleep 40', 700);
  assert.equal(slow.timedOut, true);
  assert.ok(Date.now() - started < 5000);
  const execPid = Number(await readFile(pidFile, 'utf8'));
  await allGone([execPid]);
  const ps = execFileSync('runc', ['--root', root, 'ps', id], { encoding: 'utf8' });
  assert.doesNotMatch(ps, /sleep (40|50)/, 'no exec process is left in the container');

  execFileSync('runc', ['--root', root, 'kill', id, 'KILL']);
  assert.equal(parseExitFile(await exitFile(w)).exitCode, 137);
  assert.equal(await m.exited, 0);
  execFileSync('runc', ['--root', root, 'delete', id]);
});


// ---- Interactive exec sessions ----

void test('exec -i: stdin reaches cat and its echo comes back byte for byte; stdin close ends it with exit 0', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  const s = await monitorExecSession(c.w.args.ctl, { argv: ['sh', '-c', `echo $$ > "${pidFile}"; exec cat`], pidFile, timeoutMs: 0, stdin: true });
  const [out, err] = [collect(s.stdout), collect(s.stderr)];
  await s.writeStdin(Buffer.from('hello\n'));
  await out.until('the echo', (x) => x === 'hello\n');
  const data = randomBytes(300 * 1024 + 7); // more than a pipe holds, both ways
  await s.writeStdin(data);
  await waitFor('the echo of 300 KiB', async () => (out.length === 6 + data.length ? true : undefined));
  assert.ok(out.bytes.subarray(6).equals(data));
  s.resize(100, 40); // no terminal: ignored, and the session goes on
  await s.closeStdin();
  assert.deepEqual(await s.exited, { exitCode: 0, signal: 0, timedOut: false });
  await waitFor('the streams to end', async () => (out.ended && err.ended) || undefined);
  assert.equal(err.length, 0);
  await assert.rejects(s.writeStdin(Buffer.from('late')), /stdin is closed|the session has ended/);
  await c.finish();
});

void test('exec -i: stdin waits for a process that does not read, without buffering in the monitor', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  const script = `echo $$ > "${pidFile}"; while [ ! -e go2 ]; do sleep 0.02; done; exec cat > in.bin`;
  const s = await monitorExecSession(c.w.args.ctl, { argv: ['sh', '-c', `cd "${c.w.dir}" && ${script}`], pidFile, timeoutMs: 0, stdin: true });
  const data = randomBytes(4 << 20);
  let written = false;
  const write = s.writeStdin(data).then(() => (written = true));
  await sleep(500);
  assert.equal(written, false, 'the write waits for the process');
  const rollup = await readFile(`/proc/${c.m.monitor.pid}/smaps_rollup`, 'utf8');
  const pss = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1]);
  t.diagnostic(`monitor with 4 MiB of exec stdin waiting: Pss ${pss} KiB`);
  assert.ok(pss > 0 && pss < 400, `PSS ${pss} KiB`);
  assert.equal(parseStatusReply(await ctl(c.w.args.ctl, '{"op":"status"}')).running, true, 'the loop still serves');
  await writeFile(join(c.w.dir, 'go2'), '');
  await write;
  await s.closeStdin();
  assert.deepEqual(await s.exited, { exitCode: 0, signal: 0, timedOut: false });
  assert.ok((await readFile(join(c.w.dir, 'in.bin'))).equals(data));
  await c.finish();
});

void test('exec -i: the deadline and a disconnect still kill the tree; a malformed frame is a disconnect', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  const argv = ['sh', '-c', `echo $$ > "${pidFile}"; sleep 60 & cat; wait`];
  const started = Date.now();
  const timed = await monitorExecSession(c.w.args.ctl, { argv, pidFile, timeoutMs: 600, stdin: true });
  assert.deepEqual(await timed.exited, { exitCode: 137, signal: 9, timedOut: true });
  assert.ok(Date.now() - started < 5000);

  // A disconnect, through the client.
  await rm(pidFile, { force: true });
  const s = await monitorExecSession(c.w.args.ctl, { argv, pidFile, timeoutMs: 0, stdin: true });
  const out = collect(s.stdout);
  await s.writeStdin(Buffer.from('up\n'));
  await out.until('the echo', (x) => x === 'up\n');
  const tree = async () => {
    const sh = Number(await waitFor('the pid file', () => readIf(pidFile)));
    const pids = await waitFor('sh, sleep and cat', async () => {
      const all = [sh, ...childrenOf(sh)];
      return all.length >= 3 ? all : undefined;
    });
    pids.forEach((p) => leftovers.add(p));
    return pids;
  };
  const first = await tree();
  s.kill();
  await allGone(first);
  assert.equal(await s.exited, undefined);

  // A frame of an unknown type, at the byte level.
  await rm(pidFile, { force: true });
  const raw = new RawExec(c.w.args.ctl, JSON.stringify({ op: 'exec', argv, pid_file: pidFile, timeout_ms: '0', stdin: true }) + '\n');
  const second = await tree();
  raw.sock.write(formatClientFrame(9 as typeof P.FRAME_STDIN));
  await allGone(second);
  await raw.until('the connection to close', (x) => x.closed);
  assert.equal(raw.bytes.toString(), '{"ok":true}\n', 'no exit frame after a malformed frame');
  assert.match((await readIf(join(c.w.dir, 'monitor.stderr'))) ?? '', /unknown frame type 9/);
  await c.finish();
});

void test('exec: requests without stdin and tty are unchanged: no answer line, a frame first, later bytes ignored; bad interactive requests are refused', async (t) => {
  const c = await waitingContainer(t);
  const pidFile = join(c.w.dir, 'exec.pid');
  // Bytes after the request (even frames) are read and dropped: the command's stdin stays /dev/null.
  const frame = formatClientFrame(P.FRAME_STDIN, Buffer.from('ignored\n'));
  const raw = new RawExec(c.w.args.ctl, execLine(['sh', '-c', 'echo first; cat; echo "cat $?"'], pidFile) + frame.toString('latin1'));
  await raw.until('the session to end', (x) => x.closed);
  assert.equal(raw.bytes[0], P.FRAME_STDOUT, 'no ok line for a plain exec');
  assert.equal(raw.output(P.FRAME_STDOUT), 'first\ncat 0\n');
  assert.deepEqual(parseExecExit(raw.frames().at(-1)?.data.toString() ?? ''), { exitCode: 0, signal: 0, timedOut: false });

  const base = { op: 'exec', argv: ['true'], pid_file: pidFile, timeout_ms: '0' };
  const bad = [
    { ...base, stdin: 'yes' },
    { ...base, tty: 1 },
    { ...base, tty: true },
    { ...base, tty: true, console_socket: '' },
    { ...base, tty: true, console_socket: `/tmp/${'x'.repeat(120)}` },
  ].map((r) => JSON.stringify(r));
  const replies = await ctlLines(c.w.args.ctl, [...bad, '{"op":"status"}'].map((l) => `${l}\n`).join(''), bad.length + 1);
  for (let i = 0; i < bad.length; i++) assert.match(replies[i], /^\{"error":"bad request: exec wants/, bad[i]);
  assert.equal(parseStatusReply(replies[bad.length]).running, true);
  // An interactive session is accepted with an ok line, and its first frames may come with the request.
  const early = new RawExec(
    c.w.args.ctl,
    JSON.stringify({ ...base, argv: ['sh', '-c', 'cat; echo "end $?"'], stdin: true }) + '\n' + frame.toString('latin1') + formatClientFrame(P.FRAME_STDIN_CLOSE).toString('latin1'),
  );
  await early.until('the session to end', (x) => x.closed);
  const nl = early.bytes.indexOf(10);
  assert.equal(early.bytes.subarray(0, nl + 1).toString(), '{"ok":true}\n');
  const frames = new ExecFrameReader().push(early.bytes.subarray(nl + 1));
  assert.equal(Buffer.concat(frames.filter((f) => f.type === P.FRAME_STDOUT).map((f) => f.data)).toString(), 'ignored\nend 0\n');
  await c.finish();
  await assert.rejects(
    monitorExecSession(c.w.args.ctl, { argv: ['true'], pidFile, timeoutMs: 0, stdin: true }),
    (e: Error & { code?: string }) => e.code === 'SKIFF_RUNTIME_FAILED' && /ENOENT|ECONNREFUSED/.test(e.message),
  );
});

void test('runc: exec -it gets a pty: `tty` names it, resize frames change `stty size`, ^D ends it with its exit code; the deadline still kills', async (t) => {
  const w = await world(t);
  const root = join(w.dir, 'runc-root');
  const id = `skiff-mon-exectty-${process.pid}`;
  t.after(async () => {
    if (existsSync(join(root, id))) execFileSync('runc', ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
    // runc's default cgroup (/<id>) outlives its delete while the detached exec's process is
    // still being reaped: removed here, retried while the kernel still counts a task in it.
    for (const controller of await readdir('/sys/fs/cgroup')) {
      const dir = join('/sys/fs/cgroup', controller, id);
      for (let i = 0; i < 100 && existsSync(dir); i++) {
        try {
          await rmdir(dir);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  });
  const bundle = await busyboxBundle(w.dir, ['sh', '-c', 'sleep 60'], false);
  const m = startMonitor(w, ['runc', '--root', root, 'create', '--bundle', bundle, '--pid-file', w.args.pidFile, id]);
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync, `${JSON.stringify(sync)} ${(await readIf(join(w.dir, 'monitor.stderr'))) ?? ''}`);
  leftovers.add(sync.pid);
  execFileSync('runc', ['--root', root, 'start', id]);

  const pidFile = join(w.dir, 'exec.pid');
  const consoleSocket = join(w.dir, 'exec-console.sock');
  const execTty = (script: string, timeoutMs: number) =>
    monitorExecSession(w.args.ctl, {
      // runc takes a console socket only with --detach; the monitor then waits for the process.
      argv: ['runc', '--root', root, 'exec', '--detach', '--tty', '--console-socket', consoleSocket, '--pid-file', pidFile, id, 'sh', '-c', script],
      pidFile,
      timeoutMs,
      stdin: true,
      tty: true,
      consoleSocket,
    });
  const s = await execTty('busybox tty; while read l; do echo "got $l"; busybox stty size; done; exit 9', 20_000);
  const [out, err] = [collect(s.stdout), collect(s.stderr)];
  s.resize(123, 45); // before the terminal exists: applied when it arrives
  await out.until('the tty name', (x) => /\/dev\/pts\/\d+\r\n/.test(x));
  await s.writeStdin(Buffer.from('one\n'));
  await out.until('the first size', (x) => x.includes('45 123'));
  s.resize(80, 24);
  await s.writeStdin(Buffer.from('two\n'));
  await out.until('the second size', (x) => x.includes('24 80'));
  await s.writeStdin(Buffer.from([4])); // ^D: end of input for `read`
  assert.deepEqual(await s.exited, { exitCode: 9, signal: 0, timedOut: false });
  assert.match(out.text(), /^\/dev\/pts\/\d+\r\none\r\ngot one\r\n45 123\r\ntwo\r\ngot two\r\n24 80\r\n$/);
  assert.equal(err.length, 0, 'a terminal has no stderr');
  assert.equal(existsSync(consoleSocket), false, 'the console socket is removed');

  const started = Date.now();
  const slow = await execTty('sleep 50', 800);
  const slowOut = collect(slow.stdout);
  assert.deepEqual(await slow.exited, { exitCode: 137, signal: 9, timedOut: true });
  assert.ok(Date.now() - started < 5000);
  await waitFor('the output to end', async () => slowOut.ended || undefined);
  await allGone([Number(await readFile(pidFile, 'utf8'))]);
  assert.doesNotMatch(execFileSync('runc', ['--root', root, 'ps', id], { encoding: 'utf8' }), /sleep 50/, 'no exec process is left in the container');
  assert.equal(existsSync(consoleSocket), false);

  execFileSync('runc', ['--root', root, 'kill', id, 'KILL']);
  assert.equal(parseExitFile(await exitFile(w)).exitCode, 137);
  assert.equal(await m.exited, 0);
  execFileSync('runc', ['--root', root, 'delete', id]);
});
