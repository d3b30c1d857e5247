// The client side of exec and attach over WebSocket (client-go tools/remotecommand websocket.go):
// channel 0 carries our stdin, 1 and 2 the command's stdout and stderr, 3 its status (a
// metav1.Status in v4 and v5) and 4 our terminal sizes. v5.channel.k8s.io is preferred because
// its close signal tells the server that stdin has ended; over v4 the command never sees EOF.
// Flow control both ways: our stdin waits while the socket holds too much unsent, and the socket
// stops reading while stdout or stderr is backed up.
import type { Readable, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { logger } from '../../common/log.js';
import { CLOSE_SIGNAL, V4_CHANNEL, V5_CHANNEL, decodeFrame, encodeFrame, type ChannelProtocol } from '../streaming/ws/channel.js';
import { dialChannels, type ChannelSocket, type DialOptions } from './stream-dial.js';

const log = logger('stream-client');

// remotecommand channel numbers (kubelet cri/streaming/remotecommand/websocket.go).
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;

/** What we offer, most preferred first (kubectl 1.31's order). */
export const CLIENT_REMOTECOMMAND_PROTOCOLS: readonly ChannelProtocol[] = [V5_CHANNEL, V4_CHANNEL];

// One message per 32 KiB of stdin, and stdin pauses past this many unsent bytes.
const MAX_FRAME_PAYLOAD = 32 << 10;
const SEND_HIGH_WATER = 256 << 10;

/** The streams of one session; leave out what the request did not ask for. */
export interface RemoteCommandStreams {
  /** Sent on channel 0 until it ends. Not ended or destroyed by the session. */
  readonly stdin?: Readable;
  /** Channel 1 is written here (never ended by the session). */
  readonly stdout?: Writable;
  /** Channel 2, when the request had stderr and no tty. */
  readonly stderr?: Writable;
}

/** remotecommand.TerminalSize, in columns and rows. */
export interface TerminalSize {
  readonly width: number;
  readonly height: number;
}

export interface RemoteCommandResult {
  /** The command's exit code: 0 on Success, N for a NonZeroExitCode status. */
  readonly exitCode: number;
  /** The session ended because detach() was called. */
  readonly detached: boolean;
}

/** A command's failure as the server reported it on the error channel (not an exit code). */
export class RemoteCommandError extends Error {
  override name = 'RemoteCommandError';
}

export interface RemoteCommandSession {
  /** The subprotocol the server agreed to. */
  readonly protocol: string;
  /** Sends a terminal size on the resize channel. */
  resize(size: TerminalSize): void;
  /** Leaves the session: closes the connection; `done` then resolves as detached. */
  detach(): void;
  /**
   * Settles when the server has closed the connection: with the exit code, or rejects with a
   * RemoteCommandError (a failure status) or an Error (the connection broke, a stream failed).
   */
  readonly done: Promise<RemoteCommandResult>;
}

/** Dials an exec or attach URL and starts relaying `streams`. */
export async function openRemoteCommand(url: string, streams: RemoteCommandStreams, options: DialOptions = {}): Promise<RemoteCommandSession> {
  const socket = await dialChannels(url, CLIENT_REMOTECOMMAND_PROTOCOLS, options);
  log.debug({ protocol: socket.protocol.name }, 'remote command connected');
  return new Session(socket, streams);
}

class Session implements RemoteCommandSession {
  readonly protocol: string;
  readonly done: Promise<RemoteCommandResult>;
  private readonly status: Buffer[] = [];
  private readonly cleanups: (() => void)[] = [];
  private blocked = 0;
  /** Output writes not yet called back, and who waits for them. */
  private unwritten = 0;
  private written: (() => void) | undefined;
  private detached = false;
  private failure: Error | undefined;

  private readonly ws: WebSocket;
  private readonly channels: ChannelProtocol;

  constructor(
    socket: ChannelSocket,
    private readonly streams: RemoteCommandStreams,
  ) {
    this.ws = socket.ws;
    this.channels = socket.protocol;
    this.protocol = socket.protocol.name;
    this.ws.on('error', (err) => this.fail(new Error(`streaming connection: ${err.message}`, { cause: err })));
    this.done = new Promise((resolve, reject) => {
      socket.listen({
        message: (data) => this.onMessage(data),
        close: (code, reason) => {
          // Settle once the output is written, so that it is all there when the caller goes on.
          void this.outputWritten().then(() => {
            for (const cleanup of this.cleanups.splice(0)) cleanup();
            const outcome = this.outcome(code, reason);
            if (outcome instanceof Error) reject(outcome);
            else resolve(outcome);
          });
        },
      });
    });
    for (const out of [streams.stdout, streams.stderr]) {
      if (!out) continue;
      const onError = (err: Error): void => this.fail(new Error(`write ${out === streams.stdout ? 'stdout' : 'stderr'}: ${err.message}`, { cause: err }));
      out.on('error', onError);
      this.cleanups.push(() => out.off('error', onError));
    }
    if (streams.stdin) this.pumpStdin(streams.stdin);
  }

  resize(size: TerminalSize): void {
    // client-go marshals remotecommand.TerminalSize: {"Width":80,"Height":24}.
    this.send(RESIZE, Buffer.from(JSON.stringify({ Width: size.width, Height: size.height })));
  }

  detach(): void {
    this.detached = true;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
  }

  private send(channel: number, payload: Uint8Array, cb?: (err?: Error) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) return cb?.();
    this.ws.send(encodeFrame(this.channels, channel, payload), { binary: !this.channels.base64 }, cb);
  }

  private onMessage(message: Buffer): void {
    const frame = decodeFrame(this.channels, message, RESIZE + 1);
    if (frame.kind === 'invalid') return this.fail(new Error(`streaming protocol error: ${frame.reason}`));
    if (frame.kind === 'close') return; // the server says it is done writing a channel; 'close' follows
    if (frame.channel === STDOUT) this.deliver(this.streams.stdout, frame.payload);
    else if (frame.channel === STDERR) this.deliver(this.streams.stderr, frame.payload);
    else if (frame.channel === ERROR) this.status.push(frame.payload);
  }

  /** Writes output; while a writer is backed up the socket is not read. */
  private deliver(out: Writable | undefined, payload: Buffer): void {
    if (!out || payload.length === 0 || out.destroyed) return;
    this.unwritten++;
    const more = out.write(payload, () => {
      if (--this.unwritten === 0) this.written?.();
    });
    if (more) return;
    if (this.blocked++ === 0) this.ws.pause();
    out.once('drain', () => {
      if (--this.blocked === 0) this.ws.resume();
    });
  }

  private outputWritten(): Promise<void> {
    if (this.unwritten === 0) return Promise.resolve();
    return new Promise((resolve) => (this.written = resolve));
  }

  private pumpStdin(stdin: Readable): void {
    const resume = (): void => {
      if (stdin.isPaused() && this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount <= SEND_HIGH_WATER) stdin.resume();
    };
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let offset = 0; offset < bytes.length; offset += MAX_FRAME_PAYLOAD) {
        const last = offset + MAX_FRAME_PAYLOAD >= bytes.length;
        this.send(STDIN, bytes.subarray(offset, offset + MAX_FRAME_PAYLOAD), last ? resume : undefined);
      }
      // ws calls back once a message is handed to the kernel: the last one resumes stdin.
      if (this.ws.bufferedAmount > SEND_HIGH_WATER) stdin.pause();
    };
    const onEnd = (): void => {
      // v5 only: KEP-4006's close signal. v4 has no way to say it.
      if (this.channels.version >= 5) this.send(CLOSE_SIGNAL, Buffer.from([STDIN]));
    };
    const onError = (err: Error): void => this.fail(new Error(`read stdin: ${err.message}`, { cause: err }));
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.once('error', onError);
    this.cleanups.push(() => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onError);
      stdin.pause();
    });
    if (stdin.readableEnded) onEnd();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.ws.terminate();
  }

  private outcome(code: number, reason: string): RemoteCommandResult | Error {
    if (this.detached) return { exitCode: 0, detached: true };
    if (this.failure) return this.failure;
    const text = Buffer.concat(this.status).toString('utf8');
    if (text === '') {
      // kubelet always sends a status over v4 and v5; without one the session was cut short.
      if (code === 1000 || code === 1005) return { exitCode: 0, detached: false };
      return new Error(`streaming connection closed without a status (code ${code}${reason ? `: ${reason}` : ''})`);
    }
    try {
      return { exitCode: exitCodeOf(text), detached: false };
    } catch (err) {
      return err as RemoteCommandError;
    }
  }
}

interface Status {
  status?: string;
  message?: string;
  reason?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}

/**
 * The exit code a v4/v5 error-channel status stands for (client-go errorDecoderV4): Success is 0,
 * a NonZeroExitCode failure carries its code in the ExitCode cause; any other failure throws.
 */
export function exitCodeOf(text: string): number {
  let status: Status;
  try {
    status = JSON.parse(text) as Status;
  } catch (err) {
    throw new RemoteCommandError(`error stream protocol error: ${(err as Error).message} in ${JSON.stringify(text)}`);
  }
  if (status.status === 'Success') return 0;
  if (status.status !== 'Failure') throw new RemoteCommandError('error stream protocol error: unknown error');
  if (status.reason !== 'NonZeroExitCode') throw new RemoteCommandError(status.message ?? text);
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (!cause) throw new RemoteCommandError('error stream protocol error: no ExitCode cause given');
  const exitCode = /^\d{1,3}$/.test(cause.message ?? '') ? Number(cause.message) : NaN;
  if (!(exitCode <= 255)) throw new RemoteCommandError(`error stream protocol error: invalid exit code value ${JSON.stringify(cause.message)}`);
  return exitCode;
}
