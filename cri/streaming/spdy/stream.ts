// One SPDY stream opened by the client, as a Node Duplex: readable = the client's DATA, writable =
// DATA to the client. Flow control lives here per stream (§2.6.8): incoming DATA waits in a queue
// and is handed to the Duplex only when the consumer reads, and WINDOW_UPDATE is sent for what was
// handed over, so an idle consumer stops a well-behaved peer after one window; outgoing DATA is cut
// to the peer's window and the _write callback waits for the window and the socket, which is the
// backpressure a writer sees.
import { Duplex } from 'node:stream';
import { RstStatus, type SpdyHeaders } from './frames.js';

/** The session's side of a stream: everything a stream needs to put frames on the wire. */
export interface StreamHost {
  /** Sends SYN_REPLY (or HEADERS) once the header block is compressed; `done` runs after it is written. */
  sendHeaders(stream: SpdyStream, kind: 'SYN_REPLY' | 'HEADERS', headers: Map<string, string[]>, fin: boolean, done: (err: Error | null) => void): void;
  /** Writes one DATA frame and charges it to the send windows. */
  sendData(stream: SpdyStream, data: Buffer, fin: boolean): void;
  sendRst(stream: SpdyStream, status: number): void;
  sendWindowUpdate(stream: SpdyStream, delta: number): void;
  /** Bytes the stream may send now: the smaller window, or Infinity when the peer's windows are not enforced. */
  sendAllowance(stream: SpdyStream): number;
  /** False while the socket's buffer is full; the stream is kicked on 'drain'. */
  socketWritable(): boolean;
  /** Asks to be kicked (flushWrites) on the next WINDOW_UPDATE, SETTINGS or socket drain. */
  waitToSend(stream: SpdyStream): void;
  /** The consumer took `n` bytes (session window accounting). */
  consumed(n: number): void;
  /** The stream holds too much unread data (a peer ignoring our window): stop reading the socket. */
  overfull(stream: SpdyStream, yes: boolean): void;
  /** Both directions are finished or the stream was reset: forget it. */
  release(stream: SpdyStream): void;
}

/** Largest DATA payload we send in one frame. */
const MAX_DATA_CHUNK = 65536;

export interface StreamInit {
  id: number;
  headers: SpdyHeaders;
  priority: number;
  /** The client sent FIN with SYN_STREAM. */
  remoteFin: boolean;
  /** The client set FLAG_UNIDIRECTIONAL: we may not send. */
  unidirectional: boolean;
  /** Our receive window for this stream. */
  recvWindow: number;
  /** The peer's initial window, our send window for this stream. */
  sendWindow: number;
}

export class SpdyStream extends Duplex {
  readonly id: number;
  /** The SYN_STREAM's headers (lower-case names). */
  readonly headers: SpdyHeaders;
  readonly priority: number;
  readonly unidirectional: boolean;
  /** The RST_STREAM status that ended this stream, sent or received. */
  rstStatus: number | null = null;

  /** Our send window (peer's credit); adjusted by the session on WINDOW_UPDATE and SETTINGS. */
  sendWindow: number;
  /** How much the peer may still send before we grant more. */
  recvWindow: number;
  private readonly initialRecvWindow: number;

  private replyState: 'none' | 'sending' | 'sent' = 'none';
  private pendingWrite: { data: Buffer; offset: number; cb: (err?: Error | null) => void } | null = null;
  private pendingFinal: ((err?: Error | null) => void) | null = null;
  private localClosed = false;
  private remoteClosed: boolean;
  private released = false;

  private readonly incoming: Buffer[] = [];
  private incomingBytes = 0;
  private unacked = 0;
  private wantRead = false;
  private endPushed = false;

  constructor(
    private readonly host: StreamHost,
    init: StreamInit,
  ) {
    super({ allowHalfOpen: true });
    this.id = init.id;
    this.headers = init.headers;
    this.priority = init.priority;
    this.unidirectional = init.unidirectional;
    this.remoteClosed = init.remoteFin;
    this.recvWindow = init.recvWindow;
    this.initialRecvWindow = init.recvWindow;
    this.sendWindow = init.sendWindow;
    if (this.unidirectional) {
      this.localClosed = true;
      this.replyState = 'sent';
    }
  }

  /** The first value of a header, e.g. `stream.header('streamtype')`. */
  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase())?.[0];
  }

  /** Bytes received from the peer that the consumer has not read yet (bounded by flow control). */
  get bufferedBytes(): number {
    return this.incomingBytes;
  }

  /**
   * Accepts the stream with SYN_REPLY. Optional: the first write or end() replies with no headers,
   * which is what apimachinery's server does for every stream it accepts.
   */
  respond(headers: Record<string, string | readonly string[]> = {}): void {
    if (this.replyState !== 'none' || this.destroyed) return;
    this.replyState = 'sending';
    const map = new Map<string, string[]>();
    for (const [k, v] of Object.entries(headers)) map.set(k.toLowerCase(), typeof v === 'string' ? [v] : [...v]);
    // end() before any write: reply and half-close in one frame.
    const fin = this.pendingFinal !== null && this.pendingWrite === null;
    this.host.sendHeaders(this, 'SYN_REPLY', map, fin, (err) => {
      if (err) return void this.destroy(); // the session is closing; it reports why
      this.replyState = 'sent';
      if (fin) this.finishLocal(null);
      else this.flushWrites();
    });
  }

  /** Aborts both directions with RST_STREAM (CANCEL by default). */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.released) return;
    this.rstStatus = status;
    this.host.sendRst(this, status);
    this.release();
    this.destroy();
  }

  // --- writable side: DATA to the client ---

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.localClosed) return cb(new Error(`SPDY stream ${this.id} is closed for sending`));
    this.pendingWrite = { data: chunk, offset: 0, cb };
    if (this.replyState === 'none') this.respond();
    else this.flushWrites();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localClosed) return cb();
    this.pendingFinal = cb;
    if (this.replyState === 'none') this.respond();
    else this.flushWrites();
  }

  /** Sends what the windows and the socket allow; called again by the session when either opens. */
  flushWrites(): void {
    if (this.replyState !== 'sent' || this.destroyed) return;
    const w = this.pendingWrite;
    if (w) {
      while (w.offset < w.data.length) {
        if (!this.host.socketWritable()) return this.host.waitToSend(this);
        const allowed = this.host.sendAllowance(this);
        if (allowed <= 0) return this.host.waitToSend(this);
        const n = Math.min(allowed, MAX_DATA_CHUNK, w.data.length - w.offset);
        this.host.sendData(this, w.data.subarray(w.offset, w.offset + n), false);
        w.offset += n;
      }
      this.pendingWrite = null;
      w.cb();
    }
    if (this.pendingFinal && !this.pendingWrite) {
      this.host.sendData(this, Buffer.alloc(0), true);
      this.finishLocal(null);
    }
  }

  private finishLocal(err: Error | null): void {
    this.localClosed = true;
    const cb = this.pendingFinal;
    this.pendingFinal = null;
    cb?.(err);
    this.maybeRelease();
  }

  // --- readable side: DATA from the client ---

  /** Called by the session for each DATA frame (and for FIN carried by HEADERS). */
  onData(data: Buffer, fin: boolean): void {
    if (data.length > 0) {
      this.recvWindow -= data.length;
      this.incoming.push(data);
      this.incomingBytes += data.length;
    }
    if (fin) this.remoteClosed = true;
    this.drainIncoming();
    // A peer that honours our window cannot get here; spdystream (kubelet's client) ignores
    // windows, so TCP backpressure must do: stop reading the socket until the consumer catches up.
    if (this.incomingBytes > 2 * this.initialRecvWindow) this.host.overfull(this, true);
  }

  /** Whether the peer has half-closed its side (FIN seen). */
  get remoteEnded(): boolean {
    return this.remoteClosed;
  }

  override _read(): void {
    this.wantRead = true;
    this.drainIncoming();
  }

  private drainIncoming(): void {
    let handed = 0;
    while (this.wantRead && this.incoming.length > 0) {
      const chunk = this.incoming.shift()!;
      this.incomingBytes -= chunk.length;
      handed += chunk.length;
      this.wantRead = this.push(chunk);
    }
    if (handed > 0) {
      this.host.consumed(handed);
      this.unacked += handed;
      if (!this.remoteClosed && this.unacked >= this.initialRecvWindow / 2) {
        this.recvWindow += this.unacked;
        this.host.sendWindowUpdate(this, this.unacked);
        this.unacked = 0;
      }
    }
    if (this.incomingBytes <= this.initialRecvWindow) this.host.overfull(this, false);
    if (this.remoteClosed && this.incoming.length === 0 && !this.endPushed) {
      this.endPushed = true;
      this.push(null);
      this.maybeRelease();
    }
  }

  // --- ends ---

  // Ends caused by the peer destroy the stream without an error: a client must not be able to
  // crash the daemon through a consumer that forgot an 'error' listener. The consumer sees 'close'
  // without 'end' (pipeline reports a premature close); rstStatus and the session's 'close'
  // event say why.

  /** The peer reset the stream. */
  onReset(status: number): void {
    this.rstStatus = status;
    this.release();
    this.destroy();
  }

  /** The session is going away: end the stream without sending anything. */
  abort(): void {
    this.release();
    this.destroy();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Destroyed by its user before both halves closed: tell the peer.
    if (!this.released && !(this.localClosed && this.remoteClosed)) {
      this.rstStatus = err ? RstStatus.INTERNAL_ERROR : RstStatus.CANCEL;
      this.host.sendRst(this, this.rstStatus);
    }
    this.release();
    cb(err);
  }

  private maybeRelease(): void {
    if (this.localClosed && this.remoteClosed) this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.localClosed = true;
    this.remoteClosed = true;
    this.host.release(this);
  }
}
