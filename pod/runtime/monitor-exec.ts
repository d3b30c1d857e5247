// Exec through the container's monitor (native/monitor-exec.c): one connection per exec, an
// "exec" request line, then frames of stdout, stderr and the exit status until the monitor closes
// it. The monitor runs the runtime, enforces the timeout and kills the process tree; closing the
// connection early kills it too. monitorExec is ExecSync (output collected); monitorExecSession is
// the streaming exec (kubectl exec -i/-t): output as streams, stdin, terminal size. The wire
// format is in monitor-protocol.ts.
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { SkiffError, type ErrorCode } from '../../common/errors.js';
import {
  ExecFrameReader,
  MONITOR_PROTOCOL as P,
  formatExecRequest,
  parseExecExit,
  refusalCode,
  type ExecExit,
  type ExecRequest,
} from './monitor-protocol.js';
import { MonitorSession, openMonitorSession } from './monitor-session.js';

export interface MonitorExecOptions {
  /** `runtime exec --process F --pid-file P ID`, wrapper included. */
  argv: string[];
  /** The runtime's --pid-file. */
  pidFile: string;
  /** 0: no deadline. */
  timeoutMs: number;
  /** Bytes kept per stream; the rest is read and dropped. */
  maxOutput: number;
}

export interface MonitorExecResult {
  stdout: Buffer;
  stderr: Buffer;
  /** 128+signal when a signal killed the runtime process (the monitor's SIGKILL on timeout). */
  exitCode: number;
  signal: number;
  timedOut: boolean;
}

/** Output kept up to a limit; bytes past it are counted, not stored. */
class Capped {
  private chunks: Buffer[] = [];
  private kept = 0;
  constructor(private readonly max: number) {}
  add(b: Buffer): void {
    const room = this.max - this.kept;
    if (room <= 0) return;
    // A copy: the frame is a view of the socket's chunk, which would otherwise stay alive whole.
    const part = Buffer.from(b.subarray(0, room));
    this.chunks.push(part);
    this.kept += part.length;
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

export async function monitorExec(ctlSocket: string, o: MonitorExecOptions): Promise<MonitorExecResult> {
  const request = formatExecRequest({ argv: o.argv, pidFile: o.pidFile, timeoutMs: o.timeoutMs });
  const fail = (why: string, cause?: unknown, code: ErrorCode = 'SKIFF_RUNTIME_FAILED') =>
    new SkiffError(code, `exec ${o.argv[o.argv.length - 1]} via monitor at ${ctlSocket}: ${why}`, { cause });
  return new Promise((resolve, reject) => {
    const sock = connect(ctlSocket);
    const stdout = new Capped(o.maxOutput);
    const stderr = new Capped(o.maxOutput);
    const frames = new ExecFrameReader();
    // The first byte tells: '{' starts a refusal line, anything else the first frame.
    let refusal: string | undefined;
    let first = true;
    let settled = false;
    const settle = (err: Error | undefined, result?: MonitorExecResult) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      if (err) reject(err);
      else resolve(result as MonitorExecResult);
    };

    sock.once('connect', () => sock.write(request));
    sock.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (first && chunk.length > 0) {
        first = false;
        if (chunk[0] === 0x7b) refusal = '';
      }
      if (refusal !== undefined) {
        refusal += chunk.toString('utf8');
        const nl = refusal.indexOf('\n');
        if (nl >= 0) {
          const why = refusalMessage(refusal.slice(0, nl));
          settle(fail(why, undefined, refusalCode(why)));
        }
        return;
      }
      let got;
      try {
        got = frames.push(chunk);
      } catch (e) {
        settle(fail((e as Error).message, e));
        return;
      }
      for (const f of got) {
        if (f.type === P.FRAME_STDOUT) stdout.add(f.data);
        else if (f.type === P.FRAME_STDERR) stderr.add(f.data);
        else {
          let exit;
          try {
            exit = parseExecExit(f.data.toString('utf8'));
          } catch (e) {
            settle(fail((e as Error).message, e));
            return;
          }
          settle(undefined, { stdout: stdout.bytes, stderr: stderr.bytes, ...exit });
          return;
        }
      }
    });
    sock.once('end', () => settle(fail('the connection ended without an exit status')));
    sock.once('close', () => settle(fail('the connection closed without an exit status')));
    sock.once('error', (e) => settle(fail(e.message, e)));
  });
}

function refusalMessage(line: string): string {
  try {
    const v = JSON.parse(line) as Record<string, unknown>;
    const error = v[P.REPLY_ERROR];
    if (typeof error === 'string') return error;
  } catch {
    /* quoted below */
  }
  return `malformed reply ${JSON.stringify(line.slice(0, 200))}`;
}

// ---- Streaming sessions ----

export interface MonitorExecSessionOptions extends ExecRequest {
  /** How long to wait for the monitor's answer to the request (default 5000). */
  answerTimeoutMs?: number;
}

export interface ExecSession {
  /** The process's output (with a tty, the terminal). Not reading a stream stalls the session:
   * the monitor stops reading the process's output, which then blocks. Both end with the session. */
  readonly stdout: Readable;
  /** With a tty only what the runtime itself writes (its error messages). */
  readonly stderr: Readable;
  /** Sends bytes to the process's stdin; resolves once the kernel took them, which it does at the
   * pace the process reads. Rejects when the session has ended or its stdin was closed. */
  writeStdin(data: Uint8Array): Promise<void>;
  /** The end of the input: the process's stdin pipe closes (with a tty, nothing: the user's ^D
   * ends a terminal's input). */
  closeStdin(): Promise<void>;
  /** The terminal's size in columns and rows; ignored without a tty. */
  resize(width: number, height: number): void;
  /** The runtime process's status (timedOut: the deadline killed it); undefined when the session
   * ended without one (kill(), the monitor went away). */
  readonly exited: Promise<ExecExit | undefined>;
  /** Disconnects: the monitor kills the process tree. */
  kill(): void;
}

/** Starts an exec session. An interactive one (stdin or tty) is accepted with {"ok":true}; a plain
 * one by its first frame, so this resolves only once it has output or an exit status. Rejects with
 * the monitor's refusal (SKIFF_FAILED_PRECONDITION once the container has exited). */
export async function monitorExecSession(ctlSocket: string, o: MonitorExecSessionOptions): Promise<ExecSession> {
  const what = `exec ${o.argv[o.argv.length - 1]} via monitor at ${ctlSocket}`;
  const { sock, early } = await openMonitorSession(ctlSocket, formatExecRequest(o), { what, timeoutMs: o.answerTimeoutMs ?? 5000, frameMayLead: true });
  const s = new MonitorSession<ExecExit>(
    sock,
    { kind: 'exec', what, stdin: o.stdin === true, stdout: true, stderr: true, resizes: o.tty === true, frameLabel: 'monitor exec', exit: (e) => e },
    early,
  );
  return {
    stdout: s.stdout!,
    stderr: s.stderr!,
    exited: s.exited,
    writeStdin: (data) => s.writeStdin(data),
    closeStdin: () => s.closeStdin(),
    resize: (width, height) => s.resize(width, height),
    kill: () => s.close(),
  };
}
