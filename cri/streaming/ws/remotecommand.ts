// Server side of exec and attach over one WebSocket (kubelet cri/streaming/remotecommand:
// websocket.go, exec.go, attach.go): channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize. The
// caller gets Node streams and resize events, runs the command, then calls finish() with how it
// ended; the session writes the error channel exactly as kubelet does and closes the socket.
import { EventEmitter } from 'node:events';
import { finished, type Readable, type Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { logger } from '../../../common/log.js';
import type { ChannelProtocol } from './channel.js';
import { ChannelConn, CloseCode } from './conn.js';

const log = logger('stream-ws');

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;

/** Which streams the request asked for (CRI ExecRequest / AttachRequest fields). */
export interface RemoteCommandOptions {
  readonly stdin: boolean;
  readonly stdout: boolean;
  /** Ignored when tty is set: a terminal merges stderr into stdout (kubelet drops it too). */
  readonly stderr: boolean;
  readonly tty: boolean;
  /** Words the error status with kubelet's exec or attach phrasing. Default 'exec'. */
  readonly operation?: 'exec' | 'attach';
}

/** remotecommand.TerminalSize. */
export interface TerminalSize {
  readonly width: number;
  readonly height: number;
}

/**
 * How the command ended. An exitCode other than 0 is a NonZeroExitCode failure (`error`, if given,
 * is the runtime's description of the exit, as Go's ExitError text; default "exit status N").
 * An error without an exitCode is an internal error. Neither, or exitCode 0 alone, is success.
 */
export interface ExitStatus {
  readonly exitCode?: number;
  readonly error?: string;
}

interface SessionEvents {
  resize: [TerminalSize];
  close: [];
}

export class RemoteCommandSession extends EventEmitter<SessionEvents> {
  readonly protocol: ChannelProtocol;
  readonly tty: boolean;
  /** Present when stdin was requested; ends at the v5 close signal or when the socket closes. */
  readonly stdin: Readable | undefined;
  /** Present when stdout was requested. Writes wait while the socket is backed up. */
  readonly stdout: Writable | undefined;
  /** Present when stderr was requested without a tty. */
  readonly stderr: Writable | undefined;
  /** Resolves with the WebSocket close code once the socket is closed. */
  readonly closed: Promise<number>;
  private readonly conn: ChannelConn;
  private readonly operation: 'exec' | 'attach';
  private finishing: Promise<void> | undefined;

  constructor(ws: WebSocket, protocol: ChannelProtocol, options: RemoteCommandOptions) {
    super();
    this.protocol = protocol;
    this.tty = options.tty;
    this.operation = options.operation ?? 'exec';
    this.conn = new ChannelConn(ws, protocol, { channelCount: 5 });
    this.closed = this.conn.closed;
    const stderr = options.stderr && !options.tty;
    this.stdin = options.stdin ? this.conn.readable(STDIN) : undefined;
    this.stdout = options.stdout ? this.conn.writable(STDOUT) : undefined;
    this.stderr = stderr ? this.conn.writable(STDERR) : undefined;
    this.conn.handle(RESIZE, resizeDecoder((size) => this.emit('resize', size)));
    // kubelet's first message: an empty one on the lowest channel the client reads, so it knows
    // the connection is established.
    this.conn.send(options.stdout ? STDOUT : stderr ? STDERR : ERROR, new Uint8Array(0));
    void this.closed.then(() => this.emit('close'));
  }

  /**
   * Ends stdout and stderr, waits until what was written to them is sent, writes the status on
   * the error channel and closes the socket normally. Calling it again returns the same promise.
   */
  finish(status: ExitStatus): Promise<void> {
    this.finishing ??= this.doFinish(status);
    return this.finishing;
  }

  /** Closes the socket without a status (the server is shutting down, say). */
  async abort(code: number = CloseCode.GOING_AWAY, reason = ''): Promise<void> {
    await this.conn.close(code, reason);
  }

  private async doFinish(status: ExitStatus): Promise<void> {
    await Promise.all([this.stdout, this.stderr].flatMap((w) => (w ? [endAndWait(w)] : [])));
    const text = this.protocol.version >= 4 ? statusJSON(status, this.operation) : statusText(status, this.operation);
    if (text !== undefined) this.conn.send(ERROR, Buffer.from(text));
    log.debug({ protocol: this.protocol.name, exitCode: status.exitCode }, 'remote command finished');
    await this.conn.close(CloseCode.NORMAL);
  }
}

/** metav1.Status as kubelet's exec.go / attach.go build it for `status`. */
export function execStatus(status: ExitStatus, operation: 'exec' | 'attach' = 'exec'): Record<string, unknown> {
  const { exitCode, error } = status;
  if (exitCode !== undefined && exitCode !== 0 && operation === 'exec') {
    return {
      metadata: {},
      status: 'Failure',
      message: `command terminated with non-zero exit code: ${error ?? `exit status ${exitCode}`}`,
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
    };
  }
  if (error !== undefined || (exitCode !== undefined && exitCode !== 0)) {
    const cause = `${operation === 'exec' ? 'error executing command in container' : 'error attaching to container'}: ${error ?? `exit status ${exitCode}`}`;
    // apierrors.NewInternalError
    return {
      metadata: {},
      status: 'Failure',
      message: `Internal error occurred: ${cause}`,
      reason: 'InternalError',
      details: { causes: [{ message: cause }] },
      code: 500,
    };
  }
  return { metadata: {}, status: 'Success' };
}

/** The v4+ error channel payload: the Status as Go's encoding/json writes it. */
export function statusJSON(status: ExitStatus, operation: 'exec' | 'attach' = 'exec'): string {
  return goJSON(execStatus(status, operation));
}

/** The pre-v4 error channel payload: the failure message as text; nothing on success. */
export function statusText(status: ExitStatus, operation: 'exec' | 'attach' = 'exec'): string | undefined {
  const s = execStatus(status, operation);
  return s.status === 'Success' ? undefined : String(s.message);
}

// encoding/json escapes <, > and & for HTML, and U+2028/U+2029 for JavaScript; key order above
// follows metav1.Status's field order, which is the order Go writes.
function goJSON(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function endAndWait(writer: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (!writer.writableEnded && !writer.destroyed) writer.end();
    // A socket closed under us destroys the writer; finish() still completes.
    finished(writer, () => resolve());
  });
}

/**
 * The resize channel is a stream of JSON objects (kubelet reads it with a json.Decoder, so one
 * object may span messages and one message may hold several). Field names match without regard to
 * case, as in Go: kubectl sends {"Width":80,"Height":24}, client-node {"height":24,"width":80}. A
 * value that does not parse stops resize handling, as it stops kubelet's decoder; the session goes on.
 */
export function resizeDecoder(emit: (size: TerminalSize) => void): { data(payload: Buffer): void; end(): void } {
  let pending = '';
  let broken = false;
  return {
    data(payload) {
      if (broken) return;
      pending += payload.toString('utf8');
      for (;;) {
        pending = pending.trimStart();
        if (pending === '') return;
        const end = objectEnd(pending);
        if (end === 0 && pending.length <= 4096) return; // the rest is in a later message
        const size = end > 0 ? parseSize(pending.slice(0, end)) : undefined;
        pending = end > 0 ? pending.slice(end) : '';
        if (!size) {
          broken = true;
          log.debug('undecodable resize message; ignoring further resizes');
          return;
        }
        emit(size);
      }
    },
    end() {
      pending = '';
    },
  };
}

// Index just past the first complete top-level JSON value when it is an object, 0 if incomplete,
// -1 if the text does not start with an object.
function objectEnd(text: string): number {
  if (text[0] !== '{') return -1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  return 0;
}

function parseSize(text: string): TerminalSize | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  let width = 0;
  let height = 0;
  for (const [key, v] of Object.entries(value)) {
    const k = key.toLowerCase();
    if (k !== 'width' && k !== 'height') continue;
    // TerminalSize fields are uint16.
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) return undefined;
    if (k === 'width') width = v;
    else height = v;
  }
  return { width, height };
}
