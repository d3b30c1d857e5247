import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  ExecFrameReader,
  MONITOR_PROTOCOL,
  consoleSocketPath,
  formatAttachRequest,
  formatClientFrame,
  formatExecRequest,
  formatMonitorArgs,
  formatRequest,
  formatResizeFrame,
  formatStdinFrames,
  parseExecExit,
  parseExitFile,
  parseLogLine,
  parseReply,
  parseStatusReply,
  parseSyncLine,
} from './monitor-protocol.js';

// dist/pod/runtime/ → the repository root.
const HEADER = fileURLToPath(new URL('../../../native/monitor-protocol.h', import.meta.url));

/** Every `#define SKIFF_MON_X value` of the header; throws on a define the one regex cannot read. */
function headerDefines(): Map<string, string | number> {
  const defines = new Map<string, string | number>();
  for (const line of readFileSync(HEADER, 'utf8').split('\n')) {
    if (!/^#define\s+SKIFF_MON_/.test(line)) continue;
    const m = /^#define\s+SKIFF_MON_(\w+)\s+("(?:[^"\\]|\\.)*"|\d+)\s*(?:\/\*.*\*\/\s*)?$/.exec(line);
    if (!m) throw new Error(`monitor-protocol.h: cannot read ${JSON.stringify(line)}`);
    defines.set(m[1], m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : Number(m[2]));
  }
  return defines;
}

void test('every constant of monitor-protocol.h has the same value in the TypeScript mirror, and no more', () => {
  const defines = headerDefines();
  assert.ok(defines.size >= 40, `only ${defines.size} defines read`);
  const mirror = new Map<string, string | number>(Object.entries(MONITOR_PROTOCOL));
  for (const [name, value] of defines) assert.equal(mirror.get(name), value, `SKIFF_MON_${name}`);
  for (const name of mirror.keys()) assert.ok(defines.has(name), `${name} is not in monitor-protocol.h`);
});

void test('formatMonitorArgs puts the flags first and the runtime command line after --', () => {
  const runtime = ['runc', '--root', '/run/runc', 'create', '--bundle', '/b', '--pid-file', '/p', 'c1'];
  assert.deepEqual(
    formatMonitorArgs({ id: 'c1', log: '/l', exitFile: '/e', pidFile: '/p', ctl: '/d/ctl', syncFd: 3, runtimeArgv: runtime }),
    ['--id', 'c1', '--log', '/l', '--exit-file', '/e', '--pid-file', '/p', '--ctl', '/d/ctl', '--sync-fd', '3', '--', ...runtime],
  );
  const args = formatMonitorArgs({
    id: 'c1', log: '/l', exitFile: '/e', pidFile: '/p', ctl: '/d/ctl', syncFd: 4,
    tty: true, stdin: true, stdinOnce: true, logMaxLine: 4096, oomFile: '/sys/fs/cgroup/x/memory.events',
    runtimeArgv: ['crun', 'create', 'c1'],
  });
  assert.deepEqual(args.slice(12), [
    '--tty', '--stdin', '--stdin-once', '--log-max-line', '4096', '--oom-file', '/sys/fs/cgroup/x/memory.events',
    '--', 'crun', 'create', 'c1',
  ]);
  assert.equal(consoleSocketPath('/run/skiff/c/c1/ctl'), '/run/skiff/c/c1/console.sock');
});

void test('formatMonitorArgs rejects what the monitor would refuse', () => {
  const base = { id: 'c', log: '/l', exitFile: '/e', pidFile: '/p', ctl: '/c', syncFd: 3, runtimeArgv: ['runc'] };
  assert.throws(() => formatMonitorArgs({ ...base, runtimeArgv: [] }), /empty runtime/);
  assert.throws(() => formatMonitorArgs({ ...base, syncFd: 2 }), /sync fd/);
  assert.throws(() => formatMonitorArgs({ ...base, logMaxLine: 10 }), /out of range/);
  assert.throws(() => formatMonitorArgs({ ...base, logMaxLine: 2 ** 21 }), /out of range/);
  assert.throws(() => formatMonitorArgs({ ...base, oomFile: '' }), /empty oom file/);
});

void test('parseLogLine reads CRI records', () => {
  const table: [string, ReturnType<typeof parseLogLine>][] = [
    ['2026-11-23T18:00:00.123456789Z stdout F hello world', { time: '2026-11-23T18:00:00.123456789Z', stream: 'stdout', partial: false, content: 'hello world' }],
    ['2026-11-23T18:00:00.1Z stderr P  two  spaces\n', { time: '2026-11-23T18:00:00.1Z', stream: 'stderr', partial: true, content: ' two  spaces' }],
    ['2026-11-23T18:00:00Z stdout F ', { time: '2026-11-23T18:00:00Z', stream: 'stdout', partial: false, content: '' }],
    ['2026-11-23T18:00:00.000000001Z stdout F:x tag extension', { time: '2026-11-23T18:00:00.000000001Z', stream: 'stdout', partial: false, content: 'tag extension' }],
  ];
  for (const [line, want] of table) assert.deepEqual(parseLogLine(line), want, line);
  for (const bad of ['', 'x stdout F a', '2026-11-23T18:00:00Z stdin F a', '2026-11-23T18:00:00Z stdout X a', '2026-11-23T18:00:00Z stdout F']) {
    assert.throws(() => parseLogLine(bad), /CRI log line malformed/, bad);
  }
});

void test('parseExitFile reads the exit file, keeping nanoseconds exact', () => {
  const e = parseExitFile('{"exit_code":137,"signal":9,"exited_at":"2026-11-23T18:00:00.123456789Z","exited_at_ns":"1795456800123456789","oom_killed":true}\n');
  assert.deepEqual(e, { exitCode: 137, signal: 9, exitedAt: '2026-11-23T18:00:00.123456789Z', exitedAtNs: 1795456800123456789n, oomKilled: true });
  const base = '"exit_code":0,"signal":0,"exited_at":"2026-11-23T18:00:00.1Z","exited_at_ns":"1"';
  assert.equal(parseExitFile(`{${base},"oom_killed":false}`).oomKilled, false);
  assert.equal(parseExitFile(`{${base}}`).oomKilled, false, 'an older monitor wrote no oom_killed');
  assert.throws(() => parseExitFile(`{${base},"oom_killed":"yes"}`), /malformed/);
  assert.throws(() => parseExitFile('{"exit_code":1}'), /malformed/);
  assert.throws(() => parseExitFile('{"exit_code":1,"signal":0,"exited_at":"yesterday","exited_at_ns":"1"}'), /malformed/);
  assert.throws(() => parseExitFile('{"exit_code":1,'), /not JSON/);
  assert.throws(() => parseExitFile('[]'), /not an object/);
});

void test('sync lines, status and replies parse into their types', () => {
  assert.deepEqual(parseSyncLine('{"pid":42}\n'), { pid: 42 });
  assert.deepEqual(parseSyncLine('{"error":"runtime create exited with status 1","output":"boom"}'), {
    error: 'runtime create exited with status 1',
    output: 'boom',
  });
  assert.throws(() => parseSyncLine('{"pid":0}'), /not a pid/);

  assert.deepEqual(parseStatusReply('{"id":"c1","pid":7,"running":true,"log_dropped":0}'), { id: 'c1', pid: 7, running: true, logDropped: 0 });
  const done = parseStatusReply(
    '{"id":"c1","pid":7,"running":false,"log_dropped":2,"exit_code":3,"signal":0,"exited_at":"2026-11-23T18:00:00.000000001Z","exited_at_ns":"1795456800000000001"}',
  );
  assert.equal(done.exit?.exitCode, 3);
  assert.equal(done.exit?.exitedAtNs, 1795456800000000001n);
  assert.throws(() => parseStatusReply('{"error":"unsupported"}'), /unsupported/);

  assert.deepEqual(parseReply('{"ok":true}'), { ok: true });
  assert.deepEqual(parseReply('{"error":"unsupported"}'), { error: 'unsupported' });
  assert.equal(formatRequest({ op: 'reopen-log' }), '{"op":"reopen-log"}\n');
});

/** A frame as the monitor writes it. */
function frame(type: number, payload: Buffer | string): Buffer {
  const data = Buffer.from(payload);
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

void test('the exec frame reader gives the same frames however the stream is cut into chunks', () => {
  const big = Buffer.alloc(MONITOR_PROTOCOL.FRAME_MAX, 'x');
  const stream = Buffer.concat([
    frame(1, 'out one\n'),
    frame(2, 'err\n'),
    frame(1, big),
    frame(2, Buffer.alloc(0)),
    frame(3, '{"exit_code":0,"signal":0,"timed_out":false}'),
  ]);
  const want = [
    [1, 'out one\n'],
    [2, 'err\n'],
    [1, big.toString()],
    [2, ''],
    [3, '{"exit_code":0,"signal":0,"timed_out":false}'],
  ];
  // Every single cut point, then byte by byte, then all at once.
  const cuts: number[][] = [];
  for (let i = 0; i <= stream.length; i += i < 40 ? 1 : 997) cuts.push([i]);
  cuts.push(Array.from({ length: stream.length }, (_, i) => i + 1));
  cuts.push([]);
  for (const points of cuts) {
    const r = new ExecFrameReader();
    const got: [number, string][] = [];
    let from = 0;
    for (const to of [...points, stream.length]) {
      for (const f of r.push(stream.subarray(from, to))) got.push([f.type, f.data.toString()]);
      from = to;
    }
    assert.deepEqual(got, want, `cut at ${points.length > 3 ? 'every byte' : JSON.stringify(points)}`);
    assert.equal(r.buffered, 0);
  }
  // A header alone, then half a payload: nothing yet, and the bytes wait.
  const r = new ExecFrameReader();
  assert.deepEqual(r.push(frame(1, 'abcdef').subarray(0, 8)), []);
  assert.equal(r.buffered, 8);
});

void test('the exec frame reader rejects frames the monitor never sends', () => {
  assert.throws(() => new ExecFrameReader().push(frame(4, 'x')), /unknown frame type 4/);
  assert.throws(() => new ExecFrameReader().push(Buffer.from('{"error":"x"}\n')), /unknown frame type 123/);
  const head = Buffer.from([1, 0, 0, 0x40, 1]); // FRAME_MAX + 1
  assert.throws(() => new ExecFrameReader().push(head), /frame of 16385 bytes/);
});

void test('exec requests and exit frames', () => {
  assert.equal(
    formatExecRequest({ argv: ['/bin/crun', 'exec', '--pid-file', '/p', 'c"1'], pidFile: '/p', timeoutMs: 1500 }),
    '{"op":"exec","argv":["/bin/crun","exec","--pid-file","/p","c\\"1"],"pid_file":"/p","timeout_ms":"1500"}\n',
  );
  const ok = { argv: ['x'], pidFile: '/p', timeoutMs: 0 };
  assert.throws(() => formatExecRequest({ ...ok, argv: [] }), /1 to 128/);
  assert.throws(() => formatExecRequest({ ...ok, argv: Array<string>(129).fill('a') }), /1 to 128/);
  assert.throws(() => formatExecRequest({ ...ok, argv: ['a\0b'] }), /NUL/);
  assert.throws(() => formatExecRequest({ ...ok, pidFile: '' }), /pid file/);
  assert.throws(() => formatExecRequest({ ...ok, timeoutMs: -1 }), /timeout/);
  assert.throws(() => formatExecRequest({ ...ok, argv: ['x'.repeat(MONITOR_PROTOCOL.CTL_MAX_REQUEST)] }), /over 8192/);

  assert.deepEqual(parseExecExit('{"exit_code":137,"signal":9,"timed_out":true}'), { exitCode: 137, signal: 9, timedOut: true });
  assert.throws(() => parseExecExit('{"exit_code":1,"signal":0}'), /malformed/);
});

void test('attach requests, and the frames a client sends: stdin cut at FRAME_MAX, stdin close, resize as two uint16', () => {
  assert.equal(formatAttachRequest({ stdin: true, stdout: true, stderr: false }), '{"op":"attach","stdin":true,"stdout":true,"stderr":false}\n');
  assert.throws(() => formatAttachRequest({ stdin: false, stdout: false, stderr: false }), /none of stdin, stdout, stderr/);

  const data = Buffer.from(Array.from({ length: 2 * MONITOR_PROTOCOL.FRAME_MAX + 7 }, (_, i) => i % 251));
  const frames = formatStdinFrames(data);
  assert.deepEqual(frames.map((f) => [f[0], f.readUInt32BE(1), f.length]), [
    [4, 16384, 16389],
    [4, 16384, 16389],
    [4, 7, 12],
  ]);
  assert.ok(Buffer.concat(frames.map((f) => f.subarray(5))).equals(data));
  assert.deepEqual(formatStdinFrames(Buffer.alloc(0)), []);
  assert.deepEqual([...formatClientFrame(MONITOR_PROTOCOL.FRAME_STDIN_CLOSE)], [5, 0, 0, 0, 0]);
  assert.throws(() => formatClientFrame(MONITOR_PROTOCOL.FRAME_STDIN, Buffer.alloc(MONITOR_PROTOCOL.FRAME_MAX + 1)), /over 16384/);

  assert.deepEqual([...formatResizeFrame(80, 24)], [6, 0, 0, 0, 4, 0, 80, 0, 24]);
  assert.deepEqual([...formatResizeFrame(65535, 300)], [6, 0, 0, 0, 4, 0xff, 0xff, 0x01, 0x2c]);
  for (const [w, h] of [[-1, 24], [80, 65536], [80.5, 24], [NaN, 1]]) assert.throws(() => formatResizeFrame(w, h), /is not a uint16/);
});

void test('no frame type, either way, is \'{\': the first byte tells a refusal line from a session', () => {
  const types = Object.entries(MONITOR_PROTOCOL).filter(([k]) => k.startsWith('FRAME_') && k !== 'FRAME_HEADER' && k !== 'FRAME_MAX');
  assert.equal(types.length, 6);
  for (const [name, v] of types) assert.notEqual(v, '{'.charCodeAt(0), name);
  assert.equal(new Set(types.map(([, v]) => v)).size, types.length, 'all distinct');
  assert.throws(() => new ExecFrameReader('monitor attach').push(frame(4, 'x')), /^SkiffError: monitor attach: unknown frame type 4/);
});
