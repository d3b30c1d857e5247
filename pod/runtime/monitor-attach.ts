// Attach through the container's monitor (native/monitor-attach.c), for kubectl attach: one
// connection per session, an "attach" request line, {"ok":true}, then frames both ways: the
// container's output (a copy of what goes to the CRI log) and its exit status from the monitor,
// stdin, end of stdin and terminal size to it. The wire format is in monitor-protocol.ts.
//
// Backpressure goes all the way: a stdout/stderr stream that is not read pauses the socket (and a
// monitor whose buffer for this session overflows disconnects it, so the container never waits);
// writeStdin resolves only once the kernel has taken the bytes, which it does at the pace the
// container reads its stdin.
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { SkiffError } from '../../common/errors.js';
import {
  ExecFrameReader,
  MONITOR_PROTOCOL as P,
  formatAttachRequest,
  formatClientFrame,
  formatResizeFrame,
  formatStdinFrames,
  parseExecExit,
  type AttachRequest,
} from './monitor-protocol.js';

export interface MonitorAttachOptions extends AttachRequest {
  /** How long to wait for the monitor's answer to the request. */
  timeoutMs?: number;
}

export interface AttachExit {
  /** 128+signal when a signal killed the container. */
  exitCode: number;
  signal: number;
}

export interface AttachSession {
  /** The container's output from the attach on (with a tty, the terminal); null when not asked
   * for. Ends with the session. Not reading it stalls the session, and the monitor then cuts it. */
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Sends bytes to the container's stdin; resolves once the kernel took them (so they arrive even
   * if the session is detached right after), rejects when the session has ended. */
  writeStdin(data: Uint8Array): Promise<void>;
  /** This client's stdin has ended; with StdinOnce (and no tty) the container's stdin closes. */
  closeStdin(): Promise<void>;
  /** The terminal's size, in columns and rows; the monitor ignores it without a tty. */
  resize(width: number, height: number): void;
  /** The container's exit status; undefined when the session ended without one (detached, the
   * client fell behind, the monitor went away). */
  readonly exited: Promise<AttachExit | undefined>;
  /** Ends the session at once; the container runs on. */
  detach(): void;
}

export async function monitorAttach(ctlSocket: string, o: MonitorAttachOptions): Promise<AttachSession> {
  const request = formatAttachRequest(o);
  const timeoutMs = o.timeoutMs ?? 5000;
  const fail = (code: 'SKIFF_RUNTIME_FAILED' | 'SKIFF_FAILED_PRECONDITION', why: string, cause?: unknown) =>
    new SkiffError(code, `attach via monitor at ${ctlSocket}: ${why}`, { cause });
  return new Promise((resolve, reject) => {
    const sock = connect(ctlSocket);
    let reply = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(fail('SKIFF_RUNTIME_FAILED', `no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(fail('SKIFF_RUNTIME_FAILED', e.message, e));
    };
    const onClose = () => {
      clearTimeout(timer);
      reject(fail('SKIFF_RUNTIME_FAILED', 'the connection closed without an answer'));
    };
    const onData = (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      const nl = reply.indexOf(10);
      if (nl < 0) {
        if (reply.length > P.CTL_MAX_REQUEST) onFail('SKIFF_RUNTIME_FAILED', 'an answer without an end');
        return;
      }
      clearTimeout(timer);
      sock.off('data', onData).off('error', onError).off('close', onClose);
      const line = reply.subarray(0, nl).toString('utf8');
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        /* v stays undefined: malformed */
      }
      const answer = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
      if (answer[P.REPLY_OK] === true) {
        resolve(new Attached(sock, o, reply.subarray(nl + 1)));
        return;
      }
      const error = answer[P.REPLY_ERROR];
      if (typeof error === 'string') onFail(error === P.ERR_EXITED ? 'SKIFF_FAILED_PRECONDITION' : 'SKIFF_RUNTIME_FAILED', error);
      else onFail('SKIFF_RUNTIME_FAILED', `malformed answer ${JSON.stringify(line.slice(0, 200))}`);
    };
    const onFail = (code: 'SKIFF_RUNTIME_FAILED' | 'SKIFF_FAILED_PRECONDITION', why: string) => {
      sock.destroy();
      reject(fail(code, why));
    };
    sock.once('connect', () => sock.write(request));
    sock.on('data', onData);
    sock.once('error', onError);
    sock.once('close', onClose);
  });
}

/** An accepted session on its socket. */
class Attached implements AttachSession {
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exited: Promise<AttachExit | undefined>;
  private settleExit!: (e: AttachExit | undefined) => void;
  private readonly frames = new ExecFrameReader('monitor attach');
  /** The streams whose last push() said to stop, until they ask for more. */
  private readonly full = new Set<Readable | null>();
  private closed = false;
  private stdinClosed = false;

  constructor(
    private readonly sock: Socket,
    private readonly o: AttachRequest,
    early: Buffer,
  ) {
    this.exited = new Promise((resolve) => (this.settleExit = resolve));
    // A full stream pauses the socket (receive()); it flows again once no stream is full, so a
    // stream asked for and not read holds back the other too, as the monitor's frames are in order.
    const reader = (r: () => Readable | null) => () => {
      this.full.delete(r());
      if (!this.closed && this.full.size === 0) this.sock.resume();
    };
    this.stdout = o.stdout ? new Readable({ read: reader(() => this.stdout) }) : null;
    this.stderr = o.stderr ? new Readable({ read: reader(() => this.stderr) }) : null;
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
        let exit;
        try {
          exit = parseExecExit(f.data.toString('utf8'));
        } catch {
          this.sock.destroy();
          return;
        }
        this.settleExit({ exitCode: exit.exitCode, signal: exit.signal });
        continue;
      }
      const stream = f.type === P.FRAME_STDOUT ? this.stdout : this.stderr;
      if (stream && !stream.push(f.data)) {
        this.full.add(stream);
        this.sock.pause();
      }
    }
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.settleExit(undefined); // no effect after an exit frame
    this.stdout?.push(null);
    this.stderr?.push(null);
  }

  /** Writes frames; resolves when the last one is in the kernel. */
  private send(frames: Buffer[], what: string): Promise<void> {
    if (this.closed || this.sock.destroyed) {
      return Promise.reject(new SkiffError('SKIFF_RUNTIME_FAILED', `attach: ${what}: the session has ended`));
    }
    if (frames.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      for (let i = 0; i < frames.length; i++) {
        const last = i === frames.length - 1;
        this.sock.write(frames[i], last ? (err) => (err ? reject(new SkiffError('SKIFF_RUNTIME_FAILED', `attach: ${what}: ${err.message}`, { cause: err })) : resolve()) : undefined);
      }
    });
  }

  writeStdin(data: Uint8Array): Promise<void> {
    if (!this.o.stdin) return Promise.reject(new TypeError('attach: stdin was not asked for'));
    if (this.stdinClosed && !this.closed) return Promise.reject(new SkiffError('SKIFF_RUNTIME_FAILED', 'attach: write stdin: stdin is closed'));
    return this.send(formatStdinFrames(data), 'write stdin');
  }

  closeStdin(): Promise<void> {
    if (!this.o.stdin || this.stdinClosed) return Promise.resolve();
    this.stdinClosed = true;
    return this.send([formatClientFrame(P.FRAME_STDIN_CLOSE)], 'close stdin');
  }

  resize(width: number, height: number): void {
    const frame = formatResizeFrame(width, height);
    if (!this.closed && !this.sock.destroyed) this.sock.write(frame);
  }

  detach(): void {
    this.sock.destroy();
  }
}
