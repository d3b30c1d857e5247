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
  FLAG_END: '--',
  DEFAULT_LOG_MAX_LINE: 16384,
  MIN_LOG_MAX_LINE: 64,
  MAX_LOG_MAX_LINE: 1048576,
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
  REPLY_OK: 'ok',
  REPLY_ERROR: 'error',
  ERR_UNSUPPORTED: 'unsupported',
  CTL_MAX_REQUEST: 1024,
  CTL_MAX_CLIENTS: 8,
  STATUS_ID: 'id',
  STATUS_PID: 'pid',
  STATUS_RUNNING: 'running',
  STATUS_LOG_DROPPED: 'log_dropped',
  EXIT_CODE: 'exit_code',
  EXIT_SIGNAL: 'signal',
  EXIT_AT: 'exited_at',
  EXIT_AT_NS: 'exited_at_ns',
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
  | { op: typeof P.OP_ATTACH }
  | { op: typeof P.OP_RESIZE; width: number; height: number };

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
  if (
    !Number.isInteger(code) || !Number.isInteger(signal) ||
    typeof at !== 'string' || !RFC3339_NANO.test(at) ||
    typeof ns !== 'string' || !/^\d+$/.test(ns)
  ) {
    throw new SkiffError('SKIFF_INTERNAL', `${what}: malformed: ${JSON.stringify(v)}`);
  }
  return { exitCode: code as number, signal: signal as number, exitedAt: at, exitedAtNs: BigInt(ns) };
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
