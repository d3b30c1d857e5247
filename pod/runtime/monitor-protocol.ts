// The skiff-monitor protocol on the TypeScript side: the mirror of native/monitor-protocol.h (whose
// comments are the reference), with the parsers and the command-line builder skiffd and the tests
// use. monitor-protocol.test.ts reads the header and checks every constant here against it.
import { dirname, join } from 'node:path';
import { SkiffError } from '../../common/errors.js';

/** Every `#define SKIFF_MON_<NAME>` of monitor-protocol.h, under `<NAME>`. */
export const MONITOR_PROTOCOL = {
  FLAG_ID: '--id',
  FLAG_LOG: '--log',
  FLAG_EXIT_FILE: '--exit-file',
  FLAG_PID_FILE: '--pid-file',
  FLAG_CTL: '--ctl',
  FLAG_SYNC_FD: '--sync-fd',
  FLAG_TTY: '--tty',
  FLAG_STDIN: '--stdin',
  FLAG_STDIN_ONCE: '--stdin-once',
  FLAG_LOG_MAX_LINE: '--log-max-line',
  FLAG_OOM_FILE: '--oom-file',
  FLAG_END: '--',
  DEFAULT_LOG_MAX_LINE: 16384,
  MIN_LOG_MAX_LINE: 64,
  MAX_LOG_MAX_LINE: 1048576,
  OOM_KILL_KEY: 'oom_kill',
  CONSOLE_SOCKET: 'console.sock',
  DRAIN_MS: 1000,
  SYNC_PID: 'pid',
  SYNC_ERROR: 'error',
  SYNC_OUTPUT: 'output',
  SYNC_OUTPUT_MAX: 2048,
  CTL_OP: 'op',
  OP_STATUS: 'status',
  OP_REOPEN_LOG: 'reopen-log',
  OP_ATTACH: 'attach',
  OP_RESIZE: 'resize',
  OP_EXEC: 'exec',
  REPLY_OK: 'ok',
  REPLY_ERROR: 'error',
  ERR_UNSUPPORTED: 'unsupported',
  ERR_EXITED: 'the container has exited',
  CTL_MAX_REQUEST: 8192,
  CTL_MAX_CLIENTS: 16,
  STATUS_ID: 'id',
  STATUS_PID: 'pid',
  STATUS_RUNNING: 'running',
  STATUS_LOG_DROPPED: 'log_dropped',
  EXEC_ARGV: 'argv',
  EXEC_PID_FILE: 'pid_file',
  EXEC_TIMEOUT_MS: 'timeout_ms',
  EXEC_TIMED_OUT: 'timed_out',
  EXEC_STDIN: 'stdin',
  EXEC_TTY: 'tty',
  EXEC_CONSOLE_SOCKET: 'console_socket',
  EXEC_MAX_ARGS: 128,
  EXEC_MAX_SESSIONS: 64,
  FRAME_STDOUT: 1,
  FRAME_STDERR: 2,
  FRAME_EXIT: 3,
  FRAME_HEADER: 5,
  FRAME_MAX: 16384,
  ATTACH_STDIN: 'stdin',
  ATTACH_STDOUT: 'stdout',
  ATTACH_STDERR: 'stderr',
  ATTACH_MAX_SESSIONS: 16,
  ATTACH_BUFFER: 1048576,
  FRAME_STDIN: 4,
  FRAME_STDIN_CLOSE: 5,
  FRAME_RESIZE: 6,
  RESIZE_LEN: 4,
  EXIT_CODE: 'exit_code',
  EXIT_SIGNAL: 'signal',
  EXIT_AT: 'exited_at',
  EXIT_AT_NS: 'exited_at_ns',
  EXIT_OOM_KILLED: 'oom_killed',
  EXIT_SIGNAL_BASE: 128,
  STREAM_STDOUT: 'stdout',
  STREAM_STDERR: 'stderr',
  TAG_PARTIAL: 'P',
  TAG_FULL: 'F',
} as const;

const P = MONITOR_PROTOCOL;

export interface MonitorArgs {
  id: string;
  /** CRI log file. */
  log: string;
  exitFile: string;
  /** The runtime's --pid-file (the same path must be in runtimeArgv). */
  pidFile: string;
  /** Control socket; with tty, the console socket goes beside it (consoleSocketPath). */
  ctl: string;
  /** The descriptor number the sync line is written to, in the monitor. */
  syncFd: number;
  tty?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  logMaxLine?: number;
  /** The container's memory.oom_control (cgroup v1) or memory.events (v2), for exit's oomKilled. */
  oomFile?: string;
  /** The whole `runtime create` command line, wrapper included. */
  runtimeArgv: string[];
}

/** The monitor's arguments (without the program itself), in the order its usage line gives. */
export function formatMonitorArgs(o: MonitorArgs): string[] {
  if (o.runtimeArgv.length === 0) throw new TypeError('monitor: empty runtime command line');
  if (!Number.isInteger(o.syncFd) || o.syncFd < 3) throw new TypeError(`monitor: bad sync fd ${o.syncFd}`);
  const args = [
    P.FLAG_ID, o.id,
    P.FLAG_LOG, o.log,
    P.FLAG_EXIT_FILE, o.exitFile,
    P.FLAG_PID_FILE, o.pidFile,
    P.FLAG_CTL, o.ctl,
    P.FLAG_SYNC_FD, String(o.syncFd),
  ];
  if (o.tty) args.push(P.FLAG_TTY);
  if (o.stdin) args.push(P.FLAG_STDIN);
  if (o.stdinOnce) args.push(P.FLAG_STDIN_ONCE);
  if (o.logMaxLine !== undefined) {
    if (!Number.isInteger(o.logMaxLine) || o.logMaxLine < P.MIN_LOG_MAX_LINE || o.logMaxLine > P.MAX_LOG_MAX_LINE) {
      throw new TypeError(`monitor: log max line ${o.logMaxLine} out of range`);
    }
    args.push(P.FLAG_LOG_MAX_LINE, String(o.logMaxLine));
  }
  if (o.oomFile !== undefined) {
    if (o.oomFile === '') throw new TypeError('monitor: empty oom file path');
    args.push(P.FLAG_OOM_FILE, o.oomFile);
  }
  args.push(P.FLAG_END, ...o.runtimeArgv);
  return args;
}

/** Where a --tty monitor listens for the runtime's pty master (`--console-socket` of create). */
export function consoleSocketPath(ctl: string): string {
  return join(dirname(ctl), P.CONSOLE_SOCKET);
}

// ---- Sync line ----

export type MonitorSync = { pid: number } | { error: string; output: string };

export function parseSyncLine(line: string): MonitorSync {
  const v = parseObject(line, 'monitor sync line');
  const error = v[P.SYNC_ERROR];
  if (typeof error === 'string') {
    const output = v[P.SYNC_OUTPUT];
    return { error, output: typeof output === 'string' ? output : '' };
  }
  return { pid: positiveInt(v[P.SYNC_PID], 'monitor sync line', P.SYNC_PID) };
}

// ---- Control socket ----

export type MonitorRequest =
  | { op: typeof P.OP_STATUS }
  | { op: typeof P.OP_REOPEN_LOG }
  | { op: typeof P.OP_ATTACH; stdin: boolean; stdout: boolean; stderr: boolean }
  | { op: typeof P.OP_RESIZE; width: number; height: number }
  | { op: typeof P.OP_EXEC; argv: string[]; pid_file: string; timeout_ms: string; stdin?: true; tty?: true; console_socket?: string };

/** One request line, newline included. */
export function formatRequest(req: MonitorRequest): string {
  return JSON.stringify(req) + '\n';
}

export interface MonitorExit {
  /** 128+signal when a signal killed the container. */
  exitCode: number;
  /** 0 when the container exited by itself. */
  signal: number;
  /** RFC 3339 with nanoseconds, UTC. */
  exitedAt: string;
  /** Nanoseconds since the epoch. */
  exitedAtNs: bigint;
  /** The memory cgroup's oom_kill counter grew while the container ran (false from older monitors). */
  oomKilled: boolean;
}

export interface MonitorStatus {
  id: string;
  pid: number;
  running: boolean;
  logDropped: number;
  /** Present once the container has exited. */
  exit?: MonitorExit;
}

export type MonitorReply = { ok: true } | { error: string };

export function parseStatusReply(line: string): MonitorStatus {
  const what = 'monitor status reply';
  const v = parseObject(line, what);
  const error = v[P.REPLY_ERROR];
  if (typeof error === 'string') throw new SkiffError('SKIFF_INTERNAL', `${what}: ${error}`);
  const id = v[P.STATUS_ID];
  const running = v[P.STATUS_RUNNING];
  const dropped = v[P.STATUS_LOG_DROPPED];
  if (typeof id !== 'string' || typeof running !== 'boolean' || typeof dropped !== 'number') {
    throw new SkiffError('SKIFF_INTERNAL', `${what}: malformed: ${JSON.stringify(line)}`);
  }
  const status: MonitorStatus = { id, pid: positiveInt(v[P.STATUS_PID], what, P.STATUS_PID), running, logDropped: dropped };
  if (!running) status.exit = exitFields(v, what);
  return status;
}

export function parseReply(line: string): MonitorReply {
  const v = parseObject(line, 'monitor reply');
  const error = v[P.REPLY_ERROR];
  if (typeof error === 'string') return { error };
  if (v[P.REPLY_OK] === true) return { ok: true };
  throw new SkiffError('SKIFF_INTERNAL', `monitor reply: malformed: ${JSON.stringify(line)}`);
}

// ---- Exit file ----

export function parseExitFile(text: string): MonitorExit {
  return exitFields(parseObject(text, 'monitor exit file'), 'monitor exit file');
}

function exitFields(v: Record<string, unknown>, what: string): MonitorExit {
  const code = v[P.EXIT_CODE];
  const signal = v[P.EXIT_SIGNAL];
  const at = v[P.EXIT_AT];
  const ns = v[P.EXIT_AT_NS];
  const oom = v[P.EXIT_OOM_KILLED] ?? false;
  if (
    !Number.isInteger(code) || !Number.isInteger(signal) ||
    typeof at !== 'string' || !RFC3339_NANO.test(at) ||
    typeof ns !== 'string' || !/^\d+$/.test(ns) || typeof oom !== 'boolean'
  ) {
    throw new SkiffError('SKIFF_INTERNAL', `${what}: malformed: ${JSON.stringify(v)}`);
  }
  return { exitCode: code as number, signal: signal as number, exitedAt: at, exitedAtNs: BigInt(ns), oomKilled: oom };
}

// ---- Exec sessions ----

export interface ExecRequest {
  /** The whole command line (`runtime exec --process F --pid-file P ID`, wrapper included). */
  argv: string[];
  /** The runtime's --pid-file: the monitor kills that process's tree on timeout or disconnect. */
  pidFile: string;
  /** 0: no deadline. */
  timeoutMs: number;
  /** Interactive: the process gets a pipe as stdin, fed by FRAME_STDIN frames. */
  stdin?: boolean;
  /** A terminal: argv carries the runtime's `--tty --console-socket <consoleSocket>`. */
  tty?: boolean;
  /** Where the monitor listens for the pty master; required with tty. */
  consoleSocket?: string;
}

/** The exec request line, newline included; throws what the monitor would refuse. Without stdin
 * and tty it is the line of a plain ExecSync session, member for member. */
export function formatExecRequest(o: ExecRequest): string {
  if (o.argv.length === 0 || o.argv.length > P.EXEC_MAX_ARGS || o.argv[0] === '') {
    throw new TypeError(`monitor exec: argv must have 1 to ${P.EXEC_MAX_ARGS} strings`);
  }
  if (o.argv.some((a) => a.includes('\0'))) throw new TypeError('monitor exec: argv holds a NUL byte');
  if (o.pidFile === '') throw new TypeError('monitor exec: empty pid file path');
  if (!Number.isSafeInteger(o.timeoutMs) || o.timeoutMs < 0) throw new TypeError(`monitor exec: bad timeout ${o.timeoutMs}`);
  if (o.tty && !o.consoleSocket) throw new TypeError('monitor exec: a tty needs a console socket path');
  if (o.consoleSocket?.includes('\0')) throw new TypeError('monitor exec: console socket path holds a NUL byte');
  const req: MonitorRequest = { op: P.OP_EXEC, argv: o.argv, pid_file: o.pidFile, timeout_ms: String(o.timeoutMs) };
  if (o.stdin) req.stdin = true;
  if (o.tty) {
    req.tty = true;
    req.console_socket = o.consoleSocket;
  }
  const line = formatRequest(req);
  if (Buffer.byteLength(line) > P.CTL_MAX_REQUEST) {
    throw new TypeError(`monitor exec: request of ${Buffer.byteLength(line)} bytes is over ${P.CTL_MAX_REQUEST}`);
  }
  return line;
}

export interface ExecFrame {
  type: typeof P.FRAME_STDOUT | typeof P.FRAME_STDERR | typeof P.FRAME_EXIT;
  /** Output bytes, or the exit frame's JSON. */
  data: Buffer;
}

/**
 * Cuts the byte stream of an accepted exec or attach session into frames, whatever the chunking.
 * Throws on a frame the monitor never sends (unknown type, length over FRAME_MAX).
 */
export class ExecFrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** `what` names the session in errors. */
  constructor(private readonly what = 'monitor exec') {}

  /** The frames completed by `chunk`, in order. */
  push(chunk: Buffer): ExecFrame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: ExecFrame[] = [];
    while (this.pendingBytes >= P.FRAME_HEADER) {
      const head = this.peek(P.FRAME_HEADER);
      const type = head[0] as ExecFrame['type'];
      const len = head.readUInt32BE(1);
      if (type !== P.FRAME_STDOUT && type !== P.FRAME_STDERR && type !== P.FRAME_EXIT) {
        throw new SkiffError('SKIFF_RUNTIME_FAILED', `${this.what}: unknown frame type ${head[0]}`);
      }
      if (len > P.FRAME_MAX) throw new SkiffError('SKIFF_RUNTIME_FAILED', `${this.what}: frame of ${len} bytes`);
      if (this.pendingBytes < P.FRAME_HEADER + len) break;
      const frame = this.take(P.FRAME_HEADER + len);
      frames.push({ type, data: frame.subarray(P.FRAME_HEADER) });
    }
    return frames;
  }

  /** Bytes received that do not yet make a whole frame. */
  get buffered(): number {
    return this.pendingBytes;
  }

  private peek(n: number): Buffer {
    if (this.pending[0].length < n) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.pending[0].length < n) this.pending = [Buffer.concat(this.pending)];
    const first = this.pending[0];
    const out = first.subarray(0, n);
    if (first.length === n) this.pending.shift();
    else this.pending[0] = first.subarray(n);
    this.pendingBytes -= n;
    return out;
  }
}

export interface ExecExit {
  /** The runtime process's status: 128+signal when a signal killed it; 255 when unknown. */
  exitCode: number;
  signal: number;
  /** The monitor killed it at timeout_ms. */
  timedOut: boolean;
}

export function parseExecExit(payload: string): ExecExit {
  const what = 'monitor exec exit frame';
  const v = parseObject(payload, what);
  const code = v[P.EXIT_CODE];
  const signal = v[P.EXIT_SIGNAL];
  const timedOut = v[P.EXEC_TIMED_OUT];
  if (!Number.isInteger(code) || !Number.isInteger(signal) || typeof timedOut !== 'boolean') {
    throw new SkiffError('SKIFF_RUNTIME_FAILED', `${what}: malformed: ${JSON.stringify(payload)}`);
  }
  return { exitCode: code as number, signal: signal as number, timedOut };
}

// ---- Attach sessions ----

export interface AttachRequest {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** The attach request line, newline included; throws what the monitor would refuse as malformed. */
export function formatAttachRequest(o: AttachRequest): string {
  if (!o.stdin && !o.stdout && !o.stderr) throw new TypeError('monitor attach: none of stdin, stdout, stderr asked for');
  return formatRequest({ op: P.OP_ATTACH, stdin: o.stdin, stdout: o.stdout, stderr: o.stderr });
}

/** One client -> monitor frame (FRAME_STDIN, FRAME_STDIN_CLOSE, FRAME_RESIZE). */
export function formatClientFrame(type: typeof P.FRAME_STDIN | typeof P.FRAME_STDIN_CLOSE | typeof P.FRAME_RESIZE, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (payload.length > P.FRAME_MAX) throw new TypeError(`monitor attach: frame of ${payload.length} bytes is over ${P.FRAME_MAX}`);
  const frame = Buffer.allocUnsafe(P.FRAME_HEADER + payload.length);
  frame[0] = type;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, P.FRAME_HEADER);
  return frame;
}

/** Stdin bytes as FRAME_STDIN frames of at most FRAME_MAX bytes each (none for no bytes). */
export function formatStdinFrames(data: Uint8Array): Buffer[] {
  const frames: Buffer[] = [];
  for (let off = 0; off < data.length; off += P.FRAME_MAX) {
    frames.push(formatClientFrame(P.FRAME_STDIN, data.subarray(off, off + P.FRAME_MAX)));
  }
  return frames;
}

/** A terminal size as a FRAME_RESIZE frame: width (columns) then height (rows), uint16 big-endian. */
export function formatResizeFrame(width: number, height: number): Buffer {
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new TypeError(`monitor attach: terminal ${name} ${v} is not a uint16`);
  }
  const payload = Buffer.alloc(P.RESIZE_LEN);
  payload.writeUInt16BE(width, 0);
  payload.writeUInt16BE(height, 2);
  return formatClientFrame(P.FRAME_RESIZE, payload);
}

// ---- CRI log ----

export type LogStream = typeof P.STREAM_STDOUT | typeof P.STREAM_STDERR;

export interface LogRecord {
  /** RFC 3339 with nanoseconds, UTC, as written. */
  time: string;
  stream: LogStream;
  /** P: the line continues in the next record of this stream. */
  partial: boolean;
  content: string;
}

const RFC3339_NANO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const LOG_LINE = /^(\S+) (stdout|stderr) ([^ \n]+) (.*)$/s;

/** One record of a CRI log file, without its newline. Tags after the first (":"-separated, as
 * kubelet allows for the future) are ignored. */
export function parseLogLine(line: string): LogRecord {
  const m = LOG_LINE.exec(line.endsWith('\n') ? line.slice(0, -1) : line);
  const tag = m?.[3].split(':')[0];
  if (!m || !RFC3339_NANO.test(m[1]) || (tag !== P.TAG_PARTIAL && tag !== P.TAG_FULL)) {
    throw new SkiffError('SKIFF_INTERNAL', `CRI log line malformed: ${JSON.stringify(line.slice(0, 120))}`);
  }
  return { time: m[1], stream: m[2] as LogStream, partial: tag === P.TAG_PARTIAL, content: m[4] };
}

// ---- helpers ----

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new SkiffError('SKIFF_INTERNAL', `${what}: not JSON: ${JSON.stringify(text.slice(0, 200))}`, { cause: err });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SkiffError('SKIFF_INTERNAL', `${what}: not an object: ${JSON.stringify(text.slice(0, 200))}`);
  }
  return v as Record<string, unknown>;
}

function positiveInt(v: unknown, what: string, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new SkiffError('SKIFF_INTERNAL', `${what}: "${key}" is not a pid: ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * The error code of a monitor's refusal: the container has exited (FAILED_PRECONDITION), the
 * monitor serves as many sessions or connections as it can ("too many …": RESOURCE_EXHAUSTED, try
 * again later), or anything else (the runtime failed).
 */
export function refusalCode(error: string): 'SKIFF_FAILED_PRECONDITION' | 'SKIFF_MONITOR_BUSY' | 'SKIFF_RUNTIME_FAILED' {
  if (error === MONITOR_PROTOCOL.ERR_EXITED) return 'SKIFF_FAILED_PRECONDITION';
  if (error.startsWith('too many ')) return 'SKIFF_MONITOR_BUSY';
  return 'SKIFF_RUNTIME_FAILED';
}
