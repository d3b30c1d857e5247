// skiff-monitor driven as skiffd drives it (monitor-test-helpers.ts has the stand-in runtime):
// logging, the control socket, the exit file, attach sessions, and real runc with a busybox bundle.
// Exec sessions are in monitor-exec.test.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorAttach } from '../pod/runtime/monitor-attach.js';
import { monitorExec } from '../pod/runtime/monitor-exec.js';
import {
  ExecFrameReader,
  MONITOR_PROTOCOL as P,
  consoleSocketPath,
  formatMonitorArgs,
  parseExitFile,
  parseStatusReply,
  parseSyncLine,
} from '../pod/runtime/monitor-protocol.js';
import {
  MONITOR,
  TS_RE,
  alive,
  busyboxBundle,
  collect,
  ctl,
  ctlLines,
  exitFile,
  fakeRuntime,
  killLeftovers,
  leftovers,
  logRecords,
  pssKiB,
  readIf,
  startContainer,
  startMonitor,
  waitFor,
  waitingContainer,
  world,
  isSkiff,
} from './monitor-test-helpers.js';

after(killLeftovers);

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
  assert.match(await ctl(w.args.ctl, '{"op":"attach"}'), /^\{"error":"bad request: attach wants booleans/);
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
  // The monitor frees the slots once it has read the hangups.
  await waitFor('the held connections to be let go', async () => ((await ctl(w.args.ctl, '{"op":"status"}')).includes('too many') ? undefined : true));

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

void test('an idle monitor has a PSS under 300 KiB, and exec sessions give their memory back', async (t) => {
  const w = await world(t);
  const m = startMonitor(w, await fakeRuntime(w, 'i=0; while [ $i -lt 50 ]; do echo "line $i"; echo "err $i" >&2; i=$((i+1)); done; exec sleep 30'));
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync);
  leftovers.add(sync.pid);
  await waitFor('the output', async () => ((await readIf(w.args.log)) ?? '').includes('err 49') || undefined);
  await ctl(w.args.ctl, '{"op":"status"}');
  const kib = async (field: string) => {
    const rollup = await readFile(`/proc/${m.monitor.pid}/smaps_rollup`, 'utf8');
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1]);
  };
  const pss = await kib('Pss');
  const dirty = await kib('Private_Dirty');
  t.diagnostic(`idle monitor: Pss ${pss} KiB, Rss ${await kib('Rss')} KiB, Private_Dirty ${dirty} KiB`);
  assert.ok(pss > 0 && pss < 300, `PSS ${pss} KiB`);
  // Exec sessions hand their memory back when they end.
  const argv = ['sh', '-c', 'head -c 2000000 /dev/zero; head -c 300000 /dev/zero >&2'];
  for (let i = 0; i < 4; i++) {
    const r = await monitorExec(w.args.ctl, { argv, pidFile: join(w.dir, 'exec.pid'), timeoutMs: 0, maxOutput: 0 });
    assert.equal(r.exitCode, 0);
  }
  const after = await kib('Private_Dirty');
  t.diagnostic(`after 4 exec sessions of 2.3 MB: Pss ${await kib('Pss')} KiB, Private_Dirty ${after} KiB`);
  // Private memory, not PSS: a PSS also moves when other processes sharing the binary come and go.
  assert.ok(after - dirty < 24, `private memory grew from ${dirty} to ${after} KiB`);
  process.kill(sync.pid, 'SIGKILL');
  assert.equal(parseExitFile(await exitFile(w)).exitCode, 137);
});

void test('oom_killed: true when the oom_kill counter grew during the container\'s life, false otherwise, for v1 and v2 files', async (t) => {
  const v1 = (n: number, disable = 0) => `oom_kill_disable ${disable}\nunder_oom ${disable}\noom_kill ${n}\n`;
  const v2 = (n: number) => `low 0\nhigh 0\nmax 7\noom 3\noom_kill ${n}\noom_group_kill 0\n`;
  const cases: { name: string; before?: string; after?: string; flag?: boolean; want: boolean }[] = [
    { name: 'v1 grew', before: v1(5), after: v1(6), want: true },
    { name: 'v1 same, other lines changed', before: v1(5), after: v1(5, 1), want: false },
    { name: 'v2 grew', before: v2(2), after: v2(4), want: true },
    { name: 'v2 same', before: v2(2), after: v2(2), want: false },
    { name: 'missing, then there', after: v2(1), want: true },
    { name: 'there, then missing', before: v2(1), want: false },
    { name: 'no --oom-file', flag: false, want: false },
  ];
  await Promise.all(
    cases.map(async (k) => {
      const dir = await mkdtemp(join(tmpdir(), 'skiff-oom-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const oomFile = join(dir, 'memory.events');
      if (k.before !== undefined) await writeFile(oomFile, k.before);
      const c = await waitingContainer(t, 0, k.flag === false ? {} : { oomFile });
      if (k.after !== undefined) await writeFile(oomFile, k.after);
      else await rm(oomFile, { force: true });
      const exit = await c.finish();
      assert.equal(exit.oomKilled, k.want, k.name);
      assert.match(await readFile(c.w.args.exitFile, 'utf8'), new RegExp(`"oom_killed":${k.want}}\\n$`), k.name);
    }),
  );
});

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

// ---- Attach sessions ----

void test('attach: two clients get the output produced after they attached, byte for byte, the log still gets it, and the exit frame ends both', async (t) => {
  const c = await startContainer(t, 'echo before; while [ ! -e go ]; do sleep 0.02; done; cat out.txt; cat err.bin >&2; exit 3');
  const lines = Array.from({ length: 3000 }, (_, i) => `${i} ${randomBytes(45).toString('base64')}`);
  const text = `${lines.join('\n')}\n`;
  const bin = randomBytes(300 * 1024 + 5);
  await writeFile(join(c.w.dir, 'out.txt'), text);
  await writeFile(join(c.w.dir, 'err.bin'), bin);
  await waitFor('"before" in the log', async () => ((await readIf(c.w.args.log)) ?? '').includes('before') || undefined);

  const a = await monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: true });
  const b = await monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: false });
  assert.equal(b.stderr, null);
  const [aOut, aErr, bOut] = [collect(a.stdout), collect(a.stderr), collect(b.stdout)];
  await c.touch('go');
  assert.deepEqual(await a.exited, { exitCode: 3, signal: 0 });
  assert.deepEqual(await b.exited, { exitCode: 3, signal: 0 });
  await waitFor('the streams to end', async () => (aOut.ended && aErr.ended && bOut.ended) || undefined);
  assert.equal(aOut.length, text.length);
  assert.ok(aOut.bytes.equals(Buffer.from(text)), 'stdout is exact, and starts after the attach');
  assert.ok(aErr.bytes.equals(bin), 'stderr is exact');
  assert.ok(bOut.bytes.equals(Buffer.from(text)), 'the second client got the same');

  assert.equal(parseExitFile(await exitFile(c.w)).exitCode, 3);
  assert.equal(await c.m.exited, 0);
  const recs = await logRecords(c.w.args.log);
  assert.deepEqual(recs.filter((r) => r.stream === 'stdout').map((r) => r.content), ['before', ...lines]);
  assert.equal(recs.filter((r) => r.stream === 'stderr').length > 0, true);
});

void test('attach: stdin reaches a cat container and its echo comes back to every client; without stdin_once the end of a client\'s stdin or its detach leaves the container\'s stdin open', async (t) => {
  const c = await startContainer(t, 'exec cat', { stdin: true });
  const a = await monitorAttach(c.w.args.ctl, { stdin: true, stdout: true, stderr: false });
  const aOut = collect(a.stdout);
  await a.writeStdin(Buffer.from('hello\n'));
  await aOut.until('the echo', (s) => s === 'hello\n');
  a.resize(100, 40); // no terminal: ignored, and the session goes on
  await a.closeStdin();
  await assert.rejects(a.writeStdin(Buffer.from('late')), /stdin is closed/);

  const b = await monitorAttach(c.w.args.ctl, { stdin: true, stdout: true, stderr: false });
  const bOut = collect(b.stdout);
  await b.writeStdin(Buffer.from('again\n'));
  await bOut.until('the second echo', (s) => s === 'again\n');
  await aOut.until('the echo of the other client', (s) => s === 'hello\nagain\n');
  a.detach();
  b.detach();
  assert.equal(await a.exited, undefined);
  assert.equal(await b.exited, undefined);
  await sleep(150);
  assert.equal((await c.status()).running, true, 'detaching leaves the container running');

  const d = await monitorAttach(c.w.args.ctl, { stdin: true, stdout: true, stderr: false });
  const dOut = collect(d.stdout);
  await d.writeStdin(Buffer.from('still open\n'));
  await dOut.until('the third echo', (s) => s === 'still open\n');
  process.kill(c.pid, 'SIGKILL');
  assert.deepEqual(await d.exited, { exitCode: 137, signal: 9 });
  assert.equal(parseExitFile(await exitFile(c.w)).exitCode, 137);
  assert.equal(await c.m.exited, 0);
});

void test('attach: with stdin_once the first client closing its stdin closes the container\'s (cat exits 0), and stdin is refused after', async (t) => {
  const c = await startContainer(t, 'cat; echo "cat ended $?"; while [ ! -e go ]; do sleep 0.02; done', { stdin: true, stdinOnce: true });
  const a = await monitorAttach(c.w.args.ctl, { stdin: true, stdout: true, stderr: false });
  const watcher = await monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: false });
  const [aOut, wOut] = [collect(a.stdout), collect(watcher.stdout)];
  await a.writeStdin(Buffer.from('x\n'));
  await aOut.until('the echo', (s) => s === 'x\n');
  assert.equal((await c.status()).running, true);
  await a.closeStdin();
  await aOut.until('cat to end', (s) => s === 'x\ncat ended 0\n');
  await wOut.until('the watcher to see it', (s) => s === 'x\ncat ended 0\n');
  await assert.rejects(
    monitorAttach(c.w.args.ctl, { stdin: true, stdout: true, stderr: false }),
    isSkiff('SKIFF_RUNTIME_FAILED', /the container's stdin is closed/),
  );
  await c.touch('go');
  assert.deepEqual(await a.exited, { exitCode: 0, signal: 0 });
  assert.deepEqual(await watcher.exited, { exitCode: 0, signal: 0 });
  assert.equal(await c.m.exited, 0);
});

void test('attach: with stdin_once a client that writes and detaches at once still has all its input delivered, then stdin closes', async (t) => {
  const c = await startContainer(t, 'while [ ! -e go ]; do sleep 0.02; done; cat > in.bin; exit 5', { stdin: true, stdinOnce: true });
  const data = randomBytes(100 * 1024 + 3); // more than the pipe holds: the rest waits in the socket
  const a = await monitorAttach(c.w.args.ctl, { stdin: true, stdout: false, stderr: false });
  await a.writeStdin(data);
  a.detach();
  assert.equal(await a.exited, undefined);
  await c.touch('go');
  assert.equal(parseExitFile(await exitFile(c.w)).exitCode, 5, 'cat saw the end of its input');
  assert.ok((await readFile(join(c.w.dir, 'in.bin'))).equals(data));
  assert.equal(await c.m.exited, 0);
});

void test('attach: stdin waits for a container that does not read, without buffering in the monitor; two clients\' frames are never interleaved', async (t) => {
  const c = await startContainer(t, 'while [ ! -e go ]; do sleep 0.02; done; exec cat > in.bin', { stdin: true });
  const size = 2 << 20;
  const [a, b] = await Promise.all([0, 1].map(() => monitorAttach(c.w.args.ctl, { stdin: true, stdout: false, stderr: false })));
  let done = 0;
  const writes = [a.writeStdin(Buffer.alloc(size, 'a')), b.writeStdin(Buffer.alloc(size, 'b'))].map((p) => p.then(() => done++));
  await sleep(500);
  assert.equal(done, 0, 'the writes wait for the container');
  const pss = await pssKiB(c.m.monitor.pid ?? 0);
  t.diagnostic(`monitor with 4 MiB of stdin waiting: Pss ${pss} KiB`);
  assert.ok(pss > 0 && pss < 400, `PSS ${pss} KiB`);
  assert.equal((await c.status()).running, true, 'the loop still serves');

  await c.touch('go');
  await Promise.all(writes);
  const file = join(c.w.dir, 'in.bin');
  await waitFor('all of the input', async () => (statSync(file).size === 2 * size ? true : undefined));
  const got = await readFile(file);
  const blocks = { a: 0, b: 0 };
  for (let off = 0; off < got.length; off += P.FRAME_MAX) {
    const block = got.subarray(off, off + P.FRAME_MAX);
    const letter = String.fromCharCode(block[0]) as 'a' | 'b';
    assert.ok(block.every((x) => x === block[0]), `the ${P.FRAME_MAX} bytes at ${off} come from one client`);
    blocks[letter]++;
  }
  assert.deepEqual(blocks, { a: size / P.FRAME_MAX, b: size / P.FRAME_MAX });
  a.detach();
  b.detach();
  process.kill(c.pid, 'SIGKILL');
  assert.equal(parseExitFile(await exitFile(c.w)).exitCode, 137);
});

void test('attach: a client that stops reading is disconnected while the container runs on, the log and the other client get everything, and its memory goes back', async (t) => {
  // 4 MB at about 5 MB/s: a client that reads keeps up even on a busy machine, one that does not
  // falls ATTACH_BUFFER behind in a fraction of that.
  const c = await startContainer(t, 'while [ ! -e go ]; do sleep 0.02; done; i=0; while [ $i -lt 40 ]; do cat chunk.txt; sleep 0.02; i=$((i+1)); done; touch wrote; while [ ! -e go2 ]; do sleep 0.02; done');
  const chunk = `${'x'.repeat(99)}\n`.repeat(1000);
  await writeFile(join(c.w.dir, 'chunk.txt'), chunk);
  const pss0 = await pssKiB(c.m.monitor.pid ?? 0);
  // The stalled client, at the byte level: it reads the answer, then nothing more.
  const slow = createConnection(c.w.args.ctl, () => slow.write('{"op":"attach","stdout":true}\n'));
  let slowBytes = Buffer.alloc(0);
  let slowClosed = false;
  let answered = false;
  slow.on('data', (d: Buffer) => {
    slowBytes = Buffer.concat([slowBytes, d]);
    if (!answered && slowBytes.includes(10)) slow.pause();
    answered ||= slowBytes.includes(10);
  });
  slow.on('close', () => (slowClosed = true));
  slow.on('error', () => undefined);
  await waitFor('the answer', async () => slowBytes.includes(10) || undefined);
  assert.equal(slowBytes.subarray(0, slowBytes.indexOf(10) + 1).toString(), '{"ok":true}\n');
  const fast = await monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: false });
  const fastOut = collect(fast.stdout);

  await c.touch('go');
  const total = 40 * chunk.length;
  await waitFor('the container to write it all', async () => existsSync(join(c.w.dir, 'wrote')) || undefined, 20_000);
  await waitFor('the note', async () => /fell \d+ bytes behind; disconnected/.test((await readIf(join(c.w.dir, 'monitor.stderr'))) ?? '') || undefined);
  await waitFor('the other client to get it all', async () => (fastOut.length === total ? true : undefined), 20_000);
  const recs = await logRecords(c.w.args.log);
  assert.equal(recs.length, 40 * 1000, 'the log has all of it');
  assert.ok(recs.every((r) => r.content === 'x'.repeat(99) && !r.partial));

  slow.resume();
  await waitFor('the slow client to see the end', async () => slowClosed || undefined);
  const frames = new ExecFrameReader().push(slowBytes.subarray(slowBytes.indexOf(10) + 1));
  const slowGot = frames.reduce((n, f) => n + f.data.length, 0);
  t.diagnostic(`the stalled client got ${slowGot} of ${total} bytes`);
  assert.ok(slowGot > 0 && slowGot < total);
  assert.ok(frames.every((f) => f.type === P.FRAME_STDOUT), 'no exit frame: it was cut off');
  assert.ok(fastOut.bytes.equals(Buffer.from(chunk.repeat(40))));
  fast.detach();
  assert.equal(await fast.exited, undefined);
  assert.equal((await c.status()).running, true);
  const pss1 = await waitFor('the memory to go back', async () => {
    const p = await pssKiB(c.m.monitor.pid ?? 0);
    return p - pss0 < 32 ? p : undefined;
  });
  t.diagnostic(`monitor Pss ${pss0} KiB before the attach sessions, ${pss1} KiB after`);
  await c.touch('go2');
  assert.equal(parseExitFile(await exitFile(c.w)).exitCode, 0);
  assert.equal(await c.m.exited, 0);
});

void test('attach: refused for stdin without --stdin, over ATTACH_MAX_SESSIONS, on bad requests, and once the container has exited', async (t) => {
  const c = await startContainer(t, 'while [ ! -e go ]; do sleep 0.02; done; sleep 30 & echo $! > grandchild; exit 4');
  await assert.rejects(
    monitorAttach(c.w.args.ctl, { stdin: true, stdout: true, stderr: false }),
    isSkiff('SKIFF_RUNTIME_FAILED', /the container was created without stdin/),
  );
  const bad = [
    '{"op":"attach"}',
    '{"op":"attach","stdout":"yes"}',
    '{"op":"attach","stdout":1}',
    '{"op":"attach","stdout":truex}',
    '{"op":"attach","stdin":false,"stdout":false,"stderr":false}',
  ];
  const replies = await ctlLines(c.w.args.ctl, [...bad, '{"op":"status"}'].map((l) => `${l}\n`).join(''), bad.length + 1);
  for (let i = 0; i < bad.length; i++) assert.match(replies[i], /^\{"error":"bad request: attach wants booleans/, bad[i]);
  assert.equal(parseStatusReply(replies[bad.length]).running, true);

  const held = [];
  for (let i = 0; i < P.ATTACH_MAX_SESSIONS; i++) held.push(await monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: true }));
  await assert.rejects(
    monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: false }),
    isSkiff('SKIFF_MONITOR_BUSY', /too many attach sessions/),
  );
  held.pop()?.detach();
  const again = await waitFor('a free slot', () => monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: false }).catch(() => undefined));
  held.push(again);

  // A grandchild holds the output open: the monitor lingers DRAIN_MS after the exit, and says so.
  await c.touch('go');
  await waitFor('the exit', async () => ((await c.status()).running ? undefined : true));
  const grandchild = Number(await waitFor('the grandchild', async () => (await readIf(join(c.w.dir, 'grandchild')))?.trim() || undefined));
  leftovers.add(grandchild);
  t.after(() => process.kill(grandchild, 'SIGKILL'));
  await assert.rejects(
    monitorAttach(c.w.args.ctl, { stdin: false, stdout: true, stderr: false }),
    isSkiff('SKIFF_FAILED_PRECONDITION', /the container has exited/),
  );
  for (const s of held) assert.deepEqual(await s.exited, { exitCode: 4, signal: 0 }, 'the attached clients get the exit');
  assert.equal(parseExitFile(await exitFile(c.w)).exitCode, 4);
  assert.equal(await c.m.exited, 0);
});

void test('runc: attach to a terminal: the input echoes, resize changes `stty size`, and ^D ends the container', async (t) => {
  const w = await world(t);
  const root = join(w.dir, 'runc-root');
  const id = `skiff-mon-attach-${process.pid}`;
  t.after(() => {
    if (existsSync(join(root, id))) execFileSync('runc', ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
  });
  const bundle = await busyboxBundle(w.dir, ['sh', '-c', 'while read l; do echo "got $l"; busybox stty size; done; exit 9'], true);
  const create = ['runc', '--root', root, 'create', '--bundle', bundle, '--pid-file', w.args.pidFile, '--console-socket', consoleSocketPath(w.args.ctl), id];
  const m = startMonitor(w, create, { tty: true, stdin: true });
  const sync = parseSyncLine(await m.sync);
  assert.ok('pid' in sync, `${JSON.stringify(sync)} ${(await readIf(join(w.dir, 'monitor.stderr'))) ?? ''}`);
  leftovers.add(sync.pid);
  const a = await monitorAttach(w.args.ctl, { stdin: true, stdout: true, stderr: true });
  const out = collect(a.stdout);
  const err = collect(a.stderr);
  execFileSync('runc', ['--root', root, 'start', id]);

  a.resize(123, 45);
  await a.writeStdin(Buffer.from('one\n'));
  await out.until('the first size', (s) => s.includes('45 123'));
  a.resize(80, 24);
  await a.writeStdin(Buffer.from('two\n'));
  await out.until('the second size', (s) => s.includes('24 80'));
  await a.writeStdin(Buffer.from([4])); // ^D: end of input for `read`
  assert.deepEqual(await a.exited, { exitCode: 9, signal: 0 });
  // The terminal echoes the input and ends lines with \r\n; it is all one stream, stdout.
  assert.equal(out.text(), 'one\r\ngot one\r\n45 123\r\ntwo\r\ngot two\r\n24 80\r\n');
  assert.equal(err.length, 0);
  assert.equal(await m.exited, 0);
  const recs = (await logRecords(w.args.log)).map((r) => `${r.stream} ${r.content}`);
  assert.deepEqual(recs, ['stdout one', 'stdout got one', 'stdout 45 123', 'stdout two', 'stdout got two', 'stdout 24 80']);
  execFileSync('runc', ['--root', root, 'delete', id]);
});

