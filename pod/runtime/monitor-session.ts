// What exec and attach sessions through a container's monitor share (monitor-exec.ts,
// monitor-attach.ts): the handshake on a new control connection (the request line, then the
// monitor's one-line answer, or for a plain exec directly its first frame), and the framed session
// after it: output frames into Readables with backpressure to the socket, the exit frame, and
// stdin, end of stdin and terminal size frames from the client. The wire format is in
// monitor-protocol.ts.
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { SkiffError } from '../../common/errors.js';
import {
  ExecFrameReader,
  MONITOR_PROTOCOL as P,
  formatClientFrame,
  formatResizeFrame,
  formatStdinFrames,
  parseExecExit,
  refusalCode,
  type ExecExit,
} from './monitor-protocol.js';

type SessionErrorCode = 'SKIFF_RUNTIME_FAILED' | 'SKIFF_FAILED_PRECONDITION' | 'SKIFF_MONITOR_BUSY';

/**
 * Connects to `ctlSocket`, sends `request` and waits for the monitor's answer: {"ok":true} (or,
 * with `frameMayLead`, a first frame, which plain exec sessions start with) gives the socket and
 * whatever arrived after the answer; a refusal rejects (SKIFF_FAILED_PRECONDITION once the
 * container has exited). Errors start with `what`.
 */
export function openMonitorSession(
  ctlSocket: string,
  request: string,
  o: { what: string; timeoutMs: number; frameMayLead: boolean },
): Promise<{ sock: Socket; early: Buffer }> {
  const fail = (code: SessionErrorCode, why: string, cause?: unknown) => new SkiffError(code, `${o.what}: ${why}`, { cause });
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
        resolve({ sock, early: early ?? Buffer.alloc(0) });
      }
    };
    const timer = setTimeout(() => done(fail('SKIFF_RUNTIME_FAILED', `no answer in ${o.timeoutMs} ms`)), o.timeoutMs);
    const onError = (e: Error) => done(fail('SKIFF_RUNTIME_FAILED', e.message, e));
    const onClose = () => done(fail('SKIFF_RUNTIME_FAILED', 'the connection closed without an answer'));
    const onData = (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (o.frameMayLead && reply[0] !== 0x7b) return done(undefined, reply); // a plain session's first frame
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
      else if (typeof error === 'string') done(fail(refusalCode(error), error));
      else done(fail('SKIFF_RUNTIME_FAILED', `malformed answer ${JSON.stringify(line.slice(0, 200))}`));
    };
    sock.once('connect', () => sock.write(request));
    sock.on('data', onData);
    sock.once('error', onError);
    sock.once('close', onClose);
  });
}

export interface MonitorSessionOptions<X> {
  /** 'exec' or 'attach', for misuse errors. */
  kind: string;
  /** Starts the messages of errors once the session runs. */
  what: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Resize frames are sent only when set (attach sends them always; the monitor ignores them without a tty). */
  resizes: boolean;
  /** Names the session in frame errors. */
  frameLabel: string;
  /** The exit frame as the caller reports it. */
  exit: (e: ExecExit) => X;
}

/** An accepted session on its socket. */
export class MonitorSession<X> {
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exited: Promise<X | undefined>;
  private settleExit!: (e: X | undefined) => void;
  private readonly frames: ExecFrameReader;
  /** The streams whose last push() said to stop, until they ask for more. */
  private readonly full = new Set<Readable | null>();
  private closed = false;
  private stdinClosed = false;

  constructor(
    private readonly sock: Socket,
    private readonly o: MonitorSessionOptions<X>,
    early: Buffer,
  ) {
    this.frames = new ExecFrameReader(o.frameLabel);
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
        try {
          this.settleExit(this.o.exit(parseExecExit(f.data.toString('utf8'))));
        } catch {
          this.sock.destroy();
          return;
        }
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
      return Promise.reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${this.o.what}: ${what}: the session has ended`));
    }
    if (frames.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      frames.forEach((frame, i) => {
        const last = i === frames.length - 1;
        this.sock.write(frame, last ? (err) => (err ? reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${this.o.what}: ${what}: ${err.message}`, { cause: err })) : resolve()) : undefined);
      });
    });
  }

  writeStdin(data: Uint8Array): Promise<void> {
    if (!this.o.stdin) return Promise.reject(new TypeError(`${this.o.kind}: stdin was not asked for`));
    if (this.stdinClosed && !this.closed) return Promise.reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${this.o.what}: write stdin: stdin is closed`));
    return this.send(formatStdinFrames(data), 'write stdin');
  }

  closeStdin(): Promise<void> {
    if (!this.o.stdin || this.stdinClosed) return Promise.resolve();
    this.stdinClosed = true;
    return this.send([formatClientFrame(P.FRAME_STDIN_CLOSE)], 'close stdin');
  }

  resize(width: number, height: number): void {
    const frame = formatResizeFrame(width, height);
    if (this.o.resizes && !this.closed && !this.sock.destroyed) this.sock.write(frame);
  }

  /** Disconnects: an exec's process tree is killed, an attached container runs on. */
  close(): void {
    this.sock.destroy();
  }
}
