// The server side of one SPDY/3.1 session over a socket that has already answered the HTTP
// Upgrade. Accepts client-initiated streams and emits them; answers PING; handles SETTINGS,
// WINDOW_UPDATE (stream and session windows), RST_STREAM and GOAWAY; treats any malformed frame
// as a session error: GOAWAY(PROTOCOL_ERROR), then close — never an exception out of here.
//
// Flow control and kubelet: moby/spdystream, which kubelet and kubectl use, never sends
// WINDOW_UPDATE or SETTINGS and ignores both (its frame handler has no case for them). Enforcing
// the peer's 64 KiB window against it would stall every exec after 64 KiB of output. So in the
// default 'auto' mode the peer's windows are enforced once it has shown it speaks flow control
// (sent SETTINGS or WINDOW_UPDATE, as spdy-transport does first thing); until then only TCP
// backpressure (socket 'drain') limits what we send. 'always' enforces the windows from the start.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { logger } from '../../../common/log.js';
import {
  DEFAULT_WINDOW,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameReader,
  GoAwayStatus,
  MAX_WINDOW,
  RstStatus,
  SettingsId,
  SpdyProtocolError,
  encodeFrame,
  type Frame,
  type SettingsEntry,
} from './frames.js';
import { HeaderCodec } from './header-codec.js';
import { SpdyStream, type StreamHost } from './stream.js';

const log = logger('spdy');

export interface SpdySessionOptions {
  /** Streams open at once; more are refused with RST_STREAM(REFUSED_STREAM). Default 100. */
  maxConcurrentStreams?: number;
  /** Our receive window per stream, advertised with SETTINGS when above 64 KiB. Default 64 KiB. */
  initialWindowSize?: number;
  /** Our session receive window (SPDY/3.1), raised with WINDOW_UPDATE(0) at start. Default 1 MiB. */
  sessionWindowSize?: number;
  /** Largest uncompressed header block accepted. Default 64 KiB. */
  maxHeaderBlockSize?: number;
  /** Largest DATA frame accepted (spdystream writes one frame per Write; io.Copy uses 32 KiB). Default 1 MiB. */
  maxDataFrameSize?: number;
  /** Whether the peer's flow-control windows bind us: see the module comment. Default 'auto'. */
  peerFlowControl?: 'auto' | 'always';
  /** A session without any frame for this long is closed; 0 disables. Default 0. */
  idleTimeoutMs?: number;
}

export interface SpdySessionEvents {
  stream: [stream: SpdyStream];
  goaway: [lastGoodStreamId: number, status: number];
  close: [err?: Error];
}

/** Grace period for the peer to read our GOAWAY before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;
/** Stop reading the socket when this much is buffered while a header block is being inflated. */
const MAX_READER_BACKLOG = 256 * 1024;

export class SpdySession extends EventEmitter<SpdySessionEvents> implements StreamHost {
  private readonly opts: Required<SpdySessionOptions>;
  private readonly reader: FrameReader;
  private readonly codec: HeaderCodec;
  private readonly streams = new Map<number, SpdyStream>();
  private readonly waiting = new Set<SpdyStream>();
  private readonly overfullStreams = new Set<SpdyStream>();
  private readonly pings = new Map<number, { start: bigint; resolve: (ms: number) => void; reject: (e: Error) => void }>();
  private readonly tracing = log.isLevelEnabled('trace');

  private lastStreamId = 0;
  private nextPingId = 2;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerSpeaksFlowControl = false;
  private sessionSendWindow = DEFAULT_WINDOW;
  private sessionRecvWindow = DEFAULT_WINDOW;
  private sessionUnacked = 0;
  private socketFull = false;
  private pumping = false;
  private inflating = false;
  private readPaused = false;
  private goawaySent = false;
  private goawayReceived = false;
  private closing = false;
  private closedEmitted = false;
  private closeError: Error | undefined;

  constructor(
    private readonly socket: Duplex,
    options: SpdySessionOptions = {},
    head?: Buffer,
  ) {
    super();
    this.opts = {
      maxConcurrentStreams: options.maxConcurrentStreams ?? 100,
      initialWindowSize: Math.max(DEFAULT_WINDOW, Math.min(options.initialWindowSize ?? DEFAULT_WINDOW, MAX_WINDOW)),
      sessionWindowSize: Math.max(DEFAULT_WINDOW, Math.min(options.sessionWindowSize ?? 1 << 20, MAX_WINDOW)),
      maxHeaderBlockSize: options.maxHeaderBlockSize ?? 64 * 1024,
      maxDataFrameSize: options.maxDataFrameSize ?? 1 << 20,
      peerFlowControl: options.peerFlowControl ?? 'auto',
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
    };
    this.reader = new FrameReader({
      // A compressed block can be larger than its plain text; 18 bytes of SYN_STREAM fields.
      maxControlFrame: this.opts.maxHeaderBlockSize + 1024 + 18,
      maxDataFrame: this.opts.maxDataFrameSize,
    });
    this.codec = new HeaderCodec({ maxHeaderBlockSize: this.opts.maxHeaderBlockSize });

    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.pump();
    });
    socket.on('drain', () => {
      this.socketFull = false;
      this.kick();
    });
    socket.on('error', (err: Error) => this.destroy(err));
    socket.on('end', () => this.destroy());
    socket.on('close', () => {
      this.destroy();
      this.emitClose();
    });
    if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') (socket.setNoDelay as (v: boolean) => void)(true);
    if (this.opts.idleTimeoutMs > 0 && 'setTimeout' in socket && typeof socket.setTimeout === 'function') {
      (socket.setTimeout as (ms: number, cb: () => void) => void)(this.opts.idleTimeoutMs, () => this.goAway());
    }

    const entries: SettingsEntry[] = [{ id: SettingsId.MAX_CONCURRENT_STREAMS, flags: 0, value: this.opts.maxConcurrentStreams }];
    if (this.opts.initialWindowSize !== DEFAULT_WINDOW) {
      entries.push({ id: SettingsId.INITIAL_WINDOW_SIZE, flags: 0, value: this.opts.initialWindowSize });
    }
    this.write({ type: 'SETTINGS', flags: 0, entries });
    if (this.opts.sessionWindowSize > DEFAULT_WINDOW) {
      this.sessionRecvWindow = this.opts.sessionWindowSize;
      this.write({ type: 'WINDOW_UPDATE', streamId: 0, delta: this.opts.sessionWindowSize - DEFAULT_WINDOW });
    }
    if (head && head.length > 0) {
      this.reader.push(head);
      process.nextTick(() => this.pump());
    }
    // http.Server hands over the socket of an 'upgrade' paused; a 'data' listener does not resume it.
    socket.resume();
  }

  /** Streams currently open. */
  get streamCount(): number {
    return this.streams.size;
  }

  get closed(): boolean {
    return this.closing;
  }

  /** Sends a PING and resolves with the round trip in milliseconds. */
  ping(): Promise<number> {
    if (this.closing) return Promise.reject(new Error('SPDY session is closed'));
    const id = this.nextPingId;
    this.nextPingId = this.nextPingId >= 0x7ffffffe ? 2 : this.nextPingId + 2;
    return new Promise((resolve, reject) => {
      this.pings.set(id, { start: process.hrtime.bigint(), resolve, reject });
      this.write({ type: 'PING', id });
    });
  }

  /**
   * Graceful end: GOAWAY(OK), refuse new streams, close the socket once open streams finish.
   */
  goAway(): void {
    if (this.closing) return;
    this.sendGoAway(GoAwayStatus.OK);
    if (this.streams.size === 0) this.destroy();
  }

  /**
   * Immediate end: GOAWAY (PROTOCOL_ERROR when `err` is a SpdyProtocolError, INTERNAL_ERROR for
   * another error, OK without one), open streams destroyed, socket closed after a short grace.
   */
  destroy(err?: Error): void {
    if (this.closing) return;
    this.closing = true;
    this.closeError = err;
    if (err) log.debug({ err: err.message }, 'SPDY session closed on error');
    if (!this.goawaySent && this.socket.writable) {
      this.sendGoAway(err ? (err instanceof SpdyProtocolError ? err.status : GoAwayStatus.INTERNAL_ERROR) : GoAwayStatus.OK);
    }
    for (const stream of [...this.streams.values()]) stream.abort();
    this.streams.clear();
    this.waiting.clear();
    this.overfullStreams.clear();
    for (const p of this.pings.values()) p.reject(new Error('SPDY session closed before PING reply'));
    this.pings.clear();
    this.codec.close();
    if (this.socket.destroyed) {
      this.emitClose();
      return;
    }
    this.socket.end();
    this.socket.resume(); // drain whatever the peer still sends so its FIN reaches us
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private emitClose(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    this.emit('close', this.closeError);
  }

  // --- reading ---

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      // An overfull stream stops frame processing too, so unread data is bounded by what one
      // socket read left in the reader.
      while (!this.closing && !this.inflating && this.overfullStreams.size === 0) {
        const frame = this.reader.next();
        if (!frame) break;
        if (this.tracing) log.trace({ frame: describe(frame) }, 'recv');
        this.handle(frame);
      }
    } catch (err) {
      this.destroy(err instanceof SpdyProtocolError ? err : new SpdyProtocolError(String(err), GoAwayStatus.INTERNAL_ERROR));
    } finally {
      this.pumping = false;
    }
    this.updateReading();
  }

  private updateReading(): void {
    if (this.closing) return;
    const pause = this.overfullStreams.size > 0 || (this.inflating && this.reader.buffered > MAX_READER_BACKLOG);
    if (pause && !this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    } else if (!pause && this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  private handle(frame: Frame): void {
    switch (frame.type) {
      case 'DATA':
        return this.onData(frame.streamId, frame.flags, frame.data);
      case 'SYN_STREAM':
        return this.onSynStream(frame);
      case 'SYN_REPLY':
      case 'HEADERS':
        return this.withHeaders(frame.headerBlock, (headers) => {
          const stream = this.streams.get(frame.streamId);
          // We open no streams, so there is nothing for the client to reply to.
          if (frame.type === 'SYN_REPLY' || !stream) return this.rst(frame.streamId, RstStatus.INVALID_STREAM);
          stream.emit('headers', headers);
          if (frame.flags & FLAG_FIN) stream.onData(Buffer.alloc(0), true);
        });
      case 'RST_STREAM':
        this.streams.get(frame.streamId)?.onReset(frame.status);
        return;
      case 'SETTINGS':
        return this.onSettings(frame.entries);
      case 'PING':
        return this.onPing(frame.id);
      case 'GOAWAY':
        this.goawayReceived = true;
        this.emit('goaway', frame.lastGoodStreamId, frame.status);
        if (this.streams.size === 0) this.destroy();
        return;
      case 'WINDOW_UPDATE':
        return this.onWindowUpdate(frame.streamId, frame.delta);
      case 'UNKNOWN':
        return; // §2.2.1: unknown control frames are ignored
    }
  }

  private onData(streamId: number, flags: number, data: Buffer): void {
    if (streamId === 0) throw new SpdyProtocolError('DATA frame on stream 0');
    this.sessionRecvWindow -= data.length;
    if (this.sessionRecvWindow < 0 && this.enforcing()) {
      throw new SpdyProtocolError(`peer overran the session window by ${-this.sessionRecvWindow} bytes`);
    }
    const stream = this.streams.get(streamId);
    if (!stream) {
      this.consumed(data.length); // the bytes still count against the session window
      // Data racing our RST_STREAM for a stream we closed is expected; anything else is not.
      if (streamId % 2 === 0 || streamId > this.lastStreamId) this.rst(streamId, RstStatus.INVALID_STREAM);
      return;
    }
    if (stream.remoteEnded) return this.resetStream(stream, RstStatus.STREAM_ALREADY_CLOSED);
    if (stream.recvWindow - data.length < 0 && this.enforcing()) {
      this.consumed(data.length);
      return this.resetStream(stream, RstStatus.FLOW_CONTROL_ERROR);
    }
    stream.onData(data, (flags & FLAG_FIN) !== 0);
  }

  private onSynStream(frame: Extract<Frame, { type: 'SYN_STREAM' }>): void {
    const id = frame.streamId;
    if (id === 0 || id % 2 === 0) throw new SpdyProtocolError(`client opened stream ${id}; client streams are odd`);
    if (id <= this.lastStreamId) throw new SpdyProtocolError(`stream ${id} opened after stream ${this.lastStreamId}`);
    this.lastStreamId = id;
    // Inflate even a stream we refuse: the compression context must see every block.
    this.withHeaders(frame.headerBlock, (headers) => {
      if (this.goawaySent) return; // §2.6.6: streams after our GOAWAY are ignored
      if (this.streams.size >= this.opts.maxConcurrentStreams || this.listenerCount('stream') === 0) {
        return this.rst(id, RstStatus.REFUSED_STREAM);
      }
      const stream = new SpdyStream(this, {
        id,
        headers,
        priority: frame.priority,
        remoteFin: (frame.flags & FLAG_FIN) !== 0,
        unidirectional: (frame.flags & FLAG_UNIDIRECTIONAL) !== 0,
        recvWindow: this.opts.initialWindowSize,
        sendWindow: this.peerInitialWindow,
      });
      this.streams.set(id, stream);
      if (frame.flags & FLAG_FIN) stream.onData(Buffer.alloc(0), true);
      this.emit('stream', stream);
    });
  }

  /** Inflates a header block; frame processing waits so that frames stay in order. */
  private withHeaders(block: Buffer, then: (headers: Map<string, string[]>) => void): void {
    this.inflating = true;
    this.codec.decompress(block, (err, headers) => {
      this.inflating = false;
      if (this.closing) return;
      if (err) return this.destroy(err instanceof SpdyProtocolError ? err : new SpdyProtocolError(err.message));
      try {
        then(headers!);
      } catch (e) {
        return this.destroy(e instanceof SpdyProtocolError ? e : new SpdyProtocolError(String(e), GoAwayStatus.INTERNAL_ERROR));
      }
      this.pump();
    });
  }

  private onSettings(entries: { id: number; value: number }[]): void {
    this.peerSpeaksFlowControl = true;
    for (const e of entries) {
      if (e.id !== SettingsId.INITIAL_WINDOW_SIZE) continue;
      if (e.value > MAX_WINDOW) throw new SpdyProtocolError(`INITIAL_WINDOW_SIZE ${e.value} exceeds 2^31-1`);
      const delta = e.value - this.peerInitialWindow;
      this.peerInitialWindow = e.value;
      for (const s of this.streams.values()) s.sendWindow += delta; // §2.6.8: applies to open streams
    }
    this.kick();
  }

  private onPing(id: number): void {
    if (id % 2 === 1) return this.write({ type: 'PING', id }); // the client's: echo it
    const p = this.pings.get(id);
    if (!p) return; // §2.6.5: an unsolicited reply is ignored
    this.pings.delete(id);
    p.resolve(Number(process.hrtime.bigint() - p.start) / 1e6);
  }

  private onWindowUpdate(streamId: number, delta: number): void {
    this.peerSpeaksFlowControl = true;
    if (streamId === 0) {
      if (delta === 0) throw new SpdyProtocolError('session WINDOW_UPDATE with delta 0');
      this.sessionSendWindow += delta;
      if (this.sessionSendWindow > MAX_WINDOW) throw new SpdyProtocolError('session window above 2^31-1');
    } else {
      const stream = this.streams.get(streamId);
      if (!stream) return; // may race the stream's end
      if (delta === 0) return this.resetStream(stream, RstStatus.PROTOCOL_ERROR);
      stream.sendWindow += delta;
      if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, RstStatus.FLOW_CONTROL_ERROR);
    }
    this.kick();
  }

  // --- writing ---

  private write(frame: Frame): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (this.tracing) log.trace({ frame: describe(frame) }, 'send');
    if (!this.socket.write(encodeFrame(frame))) this.socketFull = true;
  }

  private rst(streamId: number, status: number): void {
    this.write({ type: 'RST_STREAM', streamId, status });
  }

  private resetStream(stream: SpdyStream, status: number): void {
    stream.reset(status);
  }

  private sendGoAway(status: number): void {
    if (this.goawaySent) return;
    this.goawaySent = true;
    this.write({ type: 'GOAWAY', lastGoodStreamId: this.lastStreamId, status });
  }

  /** Wakes streams waiting for window or socket space. */
  private kick(): void {
    if (this.waiting.size === 0) return;
    const streams = [...this.waiting];
    this.waiting.clear();
    for (const s of streams) {
      if (this.socketFull) {
        this.waiting.add(s);
        continue;
      }
      s.flushWrites();
    }
  }

  private enforcing(): boolean {
    return this.opts.peerFlowControl === 'always' || this.peerSpeaksFlowControl;
  }

  // --- StreamHost ---

  sendHeaders(stream: SpdyStream, kind: 'SYN_REPLY' | 'HEADERS', headers: Map<string, string[]>, fin: boolean, done: (err: Error | null) => void): void {
    this.codec.compress(headers, (err, block) => {
      if (err) return done(err);
      if (this.closing || stream.destroyed) return done(new Error(`SPDY stream ${stream.id} closed before its reply`));
      this.write({ type: kind, streamId: stream.id, flags: fin ? FLAG_FIN : 0, headerBlock: block! });
      done(null);
    });
  }

  sendData(stream: SpdyStream, data: Buffer, fin: boolean): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    stream.sendWindow -= data.length;
    this.sessionSendWindow -= data.length;
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32BE(stream.id & 0x7fffffff, 0);
    head.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24) | data.length, 4);
    if (this.tracing) log.trace({ frame: { type: 'DATA', streamId: stream.id, fin, length: data.length } }, 'send');
    // Two writes under cork instead of a concatenation: no copy of the payload.
    this.socket.cork();
    this.socket.write(head);
    const ok = data.length > 0 ? this.socket.write(data) : true;
    this.socket.uncork();
    if (!ok) this.socketFull = true;
  }

  sendRst(stream: SpdyStream, status: number): void {
    if (!this.closing) this.rst(stream.id, status);
  }

  sendWindowUpdate(stream: SpdyStream, delta: number): void {
    if (!this.closing) this.write({ type: 'WINDOW_UPDATE', streamId: stream.id, delta });
  }

  sendAllowance(stream: SpdyStream): number {
    if (!this.enforcing()) return Infinity;
    return Math.min(stream.sendWindow, this.sessionSendWindow);
  }

  socketWritable(): boolean {
    return !this.socketFull && !this.closing;
  }

  waitToSend(stream: SpdyStream): void {
    if (!this.closing) this.waiting.add(stream);
  }

  consumed(n: number): void {
    this.sessionUnacked += n;
    if (this.sessionUnacked >= this.opts.sessionWindowSize / 2 && !this.closing) {
      this.sessionRecvWindow += this.sessionUnacked;
      this.write({ type: 'WINDOW_UPDATE', streamId: 0, delta: this.sessionUnacked });
      this.sessionUnacked = 0;
    }
  }

  overfull(stream: SpdyStream, yes: boolean): void {
    if (yes === this.overfullStreams.has(stream)) return;
    if (yes) this.overfullStreams.add(stream);
    else this.overfullStreams.delete(stream);
    this.updateReading();
    if (!yes) process.nextTick(() => this.pump()); // frames left in the reader
  }

  release(stream: SpdyStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.waiting.delete(stream);
    if (this.overfullStreams.delete(stream)) {
      this.updateReading();
      process.nextTick(() => this.pump());
    }
    if (this.streams.size === 0 && (this.goawaySent || this.goawayReceived)) this.destroy();
  }
}

function describe(frame: Frame): Record<string, unknown> {
  switch (frame.type) {
    case 'DATA':
      return { type: frame.type, streamId: frame.streamId, flags: frame.flags, length: frame.data.length };
    case 'SYN_STREAM':
    case 'SYN_REPLY':
    case 'HEADERS':
      return { type: frame.type, streamId: frame.streamId, flags: frame.flags, headerBlock: frame.headerBlock.length };
    case 'UNKNOWN':
      return { type: frame.type, frameType: frame.frameType, length: frame.payload.length };
    default:
      return frame;
  }
}
