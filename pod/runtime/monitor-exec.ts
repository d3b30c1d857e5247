// Exec through the container's monitor (native/monitor-exec.c): one connection per exec, an
// "exec" request line, then frames of stdout, stderr and the exit status until the monitor closes
// it. The monitor runs the runtime, enforces the timeout and kills the process tree; closing the
// connection early kills it too. monitorExec is ExecSync (output collected); monitorExecSession is
// the streaming exec (kubectl exec -i/-t): output as streams, stdin, terminal size. The wire
// format is in monitor-protocol.ts.
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { SkiffError } from '../../common/errors.js';
import {
  ExecFrameReader,
  MONITOR_PROTOCOL as P,
  formatClientFrame,
  formatExecRequest,
  formatResizeFrame,
  formatStdinFrames,
  parseExecExit,
  type ExecExit,
  type ExecRequest,
} from './monitor-protocol.js';

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
  const fail = (why: string, cause?: unknown) =>
    new SkiffError('SKIFF_RUNTIME_FAILED', `exec ${o.argv[o.argv.length - 1]} via monitor at ${ctlSocket}: ${why}`, { cause });
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
        if (nl >= 0) settle(fail(refusalMessage(refusal.slice(0, nl))));
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

type ExecErrorCode = 'SKIFF_RUNTIME_FAILED' | 'SKIFF_FAILED_PRECONDITION';

/** Starts an exec session. An interactive one (stdin or tty) is accepted with {"ok":true}; a plain
 * one by its first frame, so this resolves only once it has output or an exit status. Rejects with
 * the monitor's refusal (SKIFF_FAILED_PRECONDITION once the container has exited). */
export async function monitorExecSession(ctlSocket: string, o: MonitorExecSessionOptions): Promise<ExecSession> {
  const request = formatExecRequest(o);
  const timeoutMs = o.answerTimeoutMs ?? 5000;
  const what = `exec ${o.argv[o.argv.length - 1]} via monitor at ${ctlSocket}`;
  const fail = (code: ExecErrorCode, why: string, cause?: unknown) => new SkiffError(code, `${what}: ${why}`, { cause });
  return new Promise((resolve, reject) => {
    const sock = connect(ctlSocket);
    let reply = Buffer.alloc(0);
    const done = (err: Error | undefined, early?: Buffer) => {
      clearTimeout(timer);
      sock.off('data', onData).off('error', onError).off('close', onClose);
      if (err) {
        sock.destroy();
        reject(err);
      } else {
        resolve(new ExecStream(sock, o, what, early ?? Buffer.alloc(0)));
      }
    };
    const timer = setTimeout(() => done(fail('SKIFF_RUNTIME_FAILED', `no answer in ${timeoutMs} ms`)), timeoutMs);
    const onError = (e: Error) => done(fail('SKIFF_RUNTIME_FAILED', e.message, e));
    const onClose = () => done(fail('SKIFF_RUNTIME_FAILED', 'the connection closed without an answer'));
    const onData = (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (reply[0] !== 0x7b) return done(undefined, reply); // a plain session's first frame
      const nl = reply.indexOf(10);
      if (nl < 0) {
        if (reply.length > P.CTL_MAX_REQUEST) done(fail('SKIFF_RUNTIME_FAILED', 'an answer without an end'));
        return;
      }
      const line = reply.subarray(0, nl).toString('utf8');
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        /* v stays undefined: malformed */
      }
      const answer = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
      const error = answer[P.REPLY_ERROR];
      if (answer[P.REPLY_OK] === true) done(undefined, reply.subarray(nl + 1));
      else if (typeof error === 'string') done(fail(error === P.ERR_EXITED ? 'SKIFF_FAILED_PRECONDITION' : 'SKIFF_RUNTIME_FAILED', error));
      else done(fail('SKIFF_RUNTIME_FAILED', `malformed answer ${JSON.stringify(line.slice(0, 200))}`));
    };
    sock.once('connect', () => sock.write(request));
    sock.on('data', onData);
    sock.once('error', onError);
    sock.once('close', onClose);
  });
}

/** An accepted session on its socket. */
class ExecStream implements ExecSession {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExecExit | undefined>;
  private settleExit!: (e: ExecExit | undefined) => void;
  private readonly frames = new ExecFrameReader();
  /** The streams whose last push() said to stop, until they ask for more. */
  private readonly full = new Set<Readable>();
  private closed = false;
  private stdinClosed = false;

  constructor(
    private readonly sock: Socket,
    private readonly o: ExecRequest,
    private readonly what: string,
    early: Buffer,
  ) {
    this.exited = new Promise((resolve) => (this.settleExit = resolve));
    // A full stream pauses the socket; it flows again once no stream is full (frames are in order).
    const reader = (r: () => Readable) => () => {
      this.full.delete(r());
      if (!this.closed && this.full.size === 0) this.sock.resume();
    };
    this.stdout = new Readable({ read: reader(() => this.stdout) });
    this.stderr = new Readable({ read: reader(() => this.stderr) });
    sock.on('data', (chunk: Buffer) => this.receive(chunk));
    sock.on('error', () => undefined); // 'close' follows and ends everything
    sock.once('close', () => this.end());
    if (early.length > 0) this.receive(early);
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    let frames;
    try {
      frames = this.frames.push(chunk);
    } catch {
      this.sock.destroy(); // a frame the monitor never sends: the session cannot go on
      return;
    }
    for (const f of frames) {
      if (f.type === P.FRAME_EXIT) {
        try {
          this.settleExit(parseExecExit(f.data.toString('utf8')));
        } catch {
          this.sock.destroy();
          return;
        }
        continue;
      }
      const stream = f.type === P.FRAME_STDOUT ? this.stdout : this.stderr;
      if (!stream.push(f.data)) {
        this.full.add(stream);
        this.sock.pause();
      }
    }
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.settleExit(undefined); // no effect after an exit frame
    this.stdout.push(null);
    this.stderr.push(null);
  }

  /** Writes frames; resolves when the last one is in the kernel. */
  private send(frames: Buffer[], what: string): Promise<void> {
    if (this.closed || this.sock.destroyed) {
      return Promise.reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${this.what}: ${what}: the session has ended`));
    }
    if (frames.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      frames.forEach((frame, i) => {
        const last = i === frames.length - 1;
        this.sock.write(frame, last ? (err) => (err ? reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${this.what}: ${what}: ${err.message}`, { cause: err })) : resolve()) : undefined);
      });
    });
  }

  writeStdin(data: Uint8Array): Promise<void> {
    if (!this.o.stdin) return Promise.reject(new TypeError('exec: stdin was not asked for'));
    if (this.stdinClosed) return Promise.reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${this.what}: write stdin: stdin is closed`));
    return this.send(formatStdinFrames(data), 'write stdin');
  }

  closeStdin(): Promise<void> {
    if (!this.o.stdin || this.stdinClosed) return Promise.resolve();
    this.stdinClosed = true;
    return this.send([formatClientFrame(P.FRAME_STDIN_CLOSE)], 'close stdin');
  }

  resize(width: number, height: number): void {
    const frame = formatResizeFrame(width, height);
    if (this.o.tty && !this.closed && !this.sock.destroyed) this.sock.write(frame);
  }

  kill(): void {
    this.sock.destroy();
  }
}
