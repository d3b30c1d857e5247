// What the streaming server needs from the runtime below it, and the requests it serves. The
// server owns the wire protocols (SPDY, WebSocket) and hands the backend plain Node streams; the
// backend owns processes and pod network namespaces. Wiring to pod/ happens in the daemon.
import { EventEmitter } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { TerminalSize } from './ws/remotecommand.js';

export type { TerminalSize };

/** An ExecRequest as the streaming server keeps it behind a token. */
export interface ExecRequest {
  readonly containerId: string;
  readonly cmd: readonly string[];
  readonly stdin: boolean;
  readonly stdout: boolean;
  /** Never set together with tty: a terminal merges stderr into stdout. */
  readonly stderr: boolean;
  readonly tty: boolean;
}

export type AttachRequest = Omit<ExecRequest, 'cmd'>;

/** A PortForwardRequest. Ports come from the connection, not from here (as in kubelet). */
export interface PortForwardRequest {
  readonly podSandboxId: string;
}

/**
 * The client's side of one exec or attach. Streams are present when the request asked for them.
 * When the client goes away, `stdin` ends or is destroyed, `stdout`/`stderr` are destroyed and
 * `signal` aborts: the backend must then stop the command's I/O and settle its promise.
 */
export interface ExecIO {
  readonly stdin?: Readable;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
  readonly tty: boolean;
  /** Emits 'resize' with the terminal size (tty only). */
  readonly resize: EventEmitter<{ resize: [TerminalSize] }>;
  readonly signal: AbortSignal;
}

export interface StreamingBackend {
  /**
   * Runs `req.cmd` in the container; resolves with its exit code once it has exited and its output
   * has been written. A rejection is reported to the client as an internal error.
   */
  exec(req: ExecRequest, io: ExecIO): Promise<{ exitCode: number }>;
  /** Attaches to the container's main process until it exits or the client leaves. */
  attach(req: AttachRequest, io: ExecIO): Promise<void>;
  /** A connection to `port` inside the sandbox's network namespace. Ending it half-closes. */
  portForward(req: { podSandboxId: string; port: number }): Promise<Duplex>;
}

/**
 * The resize events of one session. The client sends its terminal size as soon as it connects
 * (client-node, kubectl), usually before the backend has its process and listens: kubelet's
 * resize stream keeps unread sizes in the stream, and this keeps the latest one, handed to each
 * listener as it is added.
 */
export class TerminalResizes extends EventEmitter<{ resize: [TerminalSize] }> {
  private latest: TerminalSize | undefined;

  constructor() {
    super();
    (this as EventEmitter).on('newListener', (event: string, listener: (size: TerminalSize) => void) => {
      const size = this.latest;
      if (event === 'resize' && size) queueMicrotask(() => listener(size));
    });
  }

  /** A size from the client: kept, and emitted to the listeners there are. */
  push(size: TerminalSize): void {
    this.latest = size;
    this.emit('resize', size);
  }
}
