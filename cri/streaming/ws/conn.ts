// One WebSocket carrying numbered channels, seen from the server as Node streams (the role of
// wsstream.Conn in apimachinery). Flow control is end to end: a writer's callback waits while the
// socket holds more than `sendHighWater` unsent bytes, and the socket stops reading while any
// inbound stream holds more than its high-water mark — one slow reader stalls the whole connection,
// as an unread io.Pipe stalls kubelet's receive loop. Garbage from the client closes the socket
// with 1002 (protocol error); it never throws.
import { Duplex, Readable, Writable } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import { logger } from '../../../common/log.js';
import { decodeFrame, encodeFrame, type ChannelProtocol } from './channel.js';

const log = logger('stream-ws');

/** RFC 6455 close codes this package sends. */
export const CloseCode = { NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL_ERROR: 1002 } as const;

// Large writes go out as several messages so one stdout burst cannot monopolise the socket, and
// each stays far below any client's message limit.
const MAX_FRAME_PAYLOAD = 32 << 10;

export interface ChannelConnOptions {
  /** Channels 0..channelCount-1 exist; a message for any other closes the socket. */
  readonly channelCount: number;
  /** Unsent bytes queued on the socket past which writers wait. Default 256 KiB. */
  readonly sendHighWater?: number;
  /** Bytes an inbound stream buffers before the socket stops reading. Default 64 KiB. */
  readonly receiveHighWater?: number;
}

/** How a channel consumed inside this package (resize) hears its messages. */
export interface MessageHandler {
  data(payload: Buffer): void;
  end(): void;
}

export class ChannelConn {
  readonly protocol: ChannelProtocol;
  /** Resolves once the WebSocket is closed, with the close code it closed with. */
  readonly closed: Promise<number>;
  private readonly ws: WebSocket;
  private readonly channelCount: number;
  private readonly sendHighWater: number;
  private readonly receiveHighWater: number;
  private readonly readers = new Map<number, Readable>();
  private readonly handlers = new Map<number, MessageHandler>();
  private readonly writers = new Set<Writable>();
  private readonly ended = new Set<number>();
  private readonly blocked = new Set<number>();
  private readonly waitingWrites = new Set<() => void>();
  private failed = false;
  private isClosed = false;

  constructor(ws: WebSocket, protocol: ChannelProtocol, options: ChannelConnOptions) {
    this.ws = ws;
    this.protocol = protocol;
    this.channelCount = options.channelCount;
    this.sendHighWater = options.sendHighWater ?? 256 << 10;
    this.receiveHighWater = options.receiveHighWater ?? 64 << 10;
    this.closed = new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) {
        queueMicrotask(() => this.onClose());
        resolve(CloseCode.GOING_AWAY);
        return;
      }
      ws.once('close', (code: number) => {
        this.onClose();
        resolve(code);
      });
    });
    ws.on('message', (data: RawData) => this.onMessage(toBuffer(data)));
  }

  /** True until the WebSocket starts closing. */
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Client → server bytes of `channel`; ends at the v5 close signal or when the socket closes. */
  readable(channel: number): Readable {
    const reader = new Readable({
      highWaterMark: this.receiveHighWater,
      read: () => this.unblock(channel),
      destroy: (err, cb) => {
        this.readers.delete(channel);
        this.unblock(channel);
        cb(err);
      },
    });
    this.addReader(channel, reader);
    return reader;
  }

  /** Server → client bytes of `channel`. Destroyed (without an error) when the socket closes. */
  writable(channel: number): Writable {
    const writer = new Writable({
      highWaterMark: this.sendHighWater,
      write: (chunk: Buffer, _enc, cb) => this.write(channel, chunk, cb),
    });
    this.writers.add(writer);
    writer.once('close', () => this.writers.delete(writer));
    if (this.isClosed) writer.destroy();
    return writer;
  }

  /**
   * Both directions of `channel` (a port-forward data channel). When the socket closes the readable
   * side ends, writes are dropped, and the stream is destroyed once its reader has seen the end.
   */
  duplex(channel: number): Duplex {
    const stream = new Duplex({
      readableHighWaterMark: this.receiveHighWater,
      writableHighWaterMark: this.sendHighWater,
      read: () => this.unblock(channel),
      write: (chunk: Buffer, _enc, cb) => this.write(channel, chunk, cb),
      destroy: (err, cb) => {
        this.readers.delete(channel);
        this.unblock(channel);
        cb(err);
      },
    });
    stream.once('end', () => {
      if (this.isClosed) stream.destroy();
    });
    this.addReader(channel, stream);
    return stream;
  }

  /** Routes `channel`'s messages to `handler` instead of a stream. */
  handle(channel: number, handler: MessageHandler): void {
    this.handlers.set(channel, handler);
    if (this.isClosed) handler.end();
  }

  /** Sends one message now, outside flow control: connection preambles, statuses, error text. */
  send(channel: number, payload: Uint8Array): void {
    if (!this.isOpen) return;
    this.ws.send(encodeFrame(this.protocol, channel, payload), { binary: !this.protocol.base64 });
  }

  /** Closes the WebSocket after everything already sent; resolves when it is closed. */
  close(code: number = CloseCode.NORMAL, reason = ''): Promise<number> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
    return this.closed;
  }

  private addReader(channel: number, reader: Readable): void {
    this.readers.set(channel, reader);
    if (this.isClosed || this.ended.has(channel)) reader.push(null);
  }

  private write(channel: number, chunk: Buffer, cb: (err?: Error | null) => void): void {
    // A peer that has gone cannot be told anything; its streams end or are destroyed on 'close'.
    if (!this.isOpen || chunk.length === 0) {
      cb();
      return;
    }
    let waiting = false;
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      this.waitingWrites.delete(release);
      cb();
    };
    const binary = !this.protocol.base64;
    for (let offset = 0; offset < chunk.length; offset += MAX_FRAME_PAYLOAD) {
      const part = chunk.subarray(offset, offset + MAX_FRAME_PAYLOAD);
      const last = offset + MAX_FRAME_PAYLOAD >= chunk.length;
      // ws calls back once the message has been handed to the kernel (or the socket failed).
      this.ws.send(encodeFrame(this.protocol, channel, part), { binary }, last ? () => waiting && release() : undefined);
    }
    if (this.ws.bufferedAmount > this.sendHighWater) {
      waiting = true;
      this.waitingWrites.add(release);
    } else {
      release();
    }
  }

  private onMessage(message: Buffer): void {
    if (this.failed) return;
    const frame = decodeFrame(this.protocol, message, this.channelCount);
    if (frame.kind === 'invalid') {
      this.fail(frame.reason);
      return;
    }
    if (frame.kind === 'close') {
      this.endChannel(frame.channel);
      return;
    }
    if (this.ended.has(frame.channel)) {
      log.debug({ channel: frame.channel }, 'message after the close signal dropped');
      return;
    }
    const reader = this.readers.get(frame.channel);
    if (reader) {
      if (!reader.destroyed && !reader.push(frame.payload)) this.block(frame.channel);
      return;
    }
    // A channel nobody reads here (stdin not requested, or a server → client channel): kubelet
    // ignores these too.
    this.handlers.get(frame.channel)?.data(frame.payload);
  }

  private endChannel(channel: number): void {
    if (this.ended.has(channel)) return;
    this.ended.add(channel);
    const reader = this.readers.get(channel);
    if (reader && !reader.destroyed) reader.push(null);
    this.handlers.get(channel)?.end();
  }

  private fail(reason: string): void {
    this.failed = true;
    log.warn({ reason, protocol: this.protocol.name }, 'closing websocket on a protocol violation');
    // A close reason must fit in 123 bytes.
    this.ws.close(CloseCode.PROTOCOL_ERROR, Buffer.from(reason).subarray(0, 123).toString());
  }

  private block(channel: number): void {
    this.blocked.add(channel);
    this.ws.pause();
  }

  private unblock(channel: number): void {
    if (!this.blocked.delete(channel) || this.blocked.size > 0) return;
    this.ws.resume();
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (let channel = 0; channel < this.channelCount; channel++) this.endChannel(channel);
    for (const release of [...this.waitingWrites]) release();
    for (const writer of [...this.writers]) writer.destroy();
    for (const reader of this.readers.values()) {
      if (reader instanceof Duplex && reader.readableEnded) reader.destroy();
    }
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
