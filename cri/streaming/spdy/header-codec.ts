// Compression of SPDY/3 name/value header blocks (§2.6.10.1): one zlib stream per direction of a
// session, primed with the SPDY/3 dictionary and kept across frames, each block ending on a
// Z_SYNC_FLUSH boundary. Operations run one at a time so that output is never attributed to the
// wrong block, the way ws drives permessage-deflate.
import * as zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { SpdyProtocolError, decodeHeaderBlock, encodeHeaderBlock } from './frames.js';

type Done<T> = (err: Error | null, value?: T) => void;

interface Op {
  input: Buffer;
  done: Done<Buffer>;
}

/** Runs buffers through one zlib stream, one flush at a time, collecting each flush's output. */
class SerialZlib {
  private readonly queue: Op[] = [];
  private current: Op | null = null;
  private out: Buffer[] = [];
  private outLength = 0;
  private failed: Error | null = null;

  constructor(
    private readonly stream: zlib.Deflate | zlib.Inflate,
    private readonly maxOutput: number,
    private readonly what: string,
  ) {
    stream.on('data', (chunk: Buffer) => {
      this.outLength += chunk.length;
      if (this.outLength > this.maxOutput) {
        this.fail(new SpdyProtocolError(`${this.what} exceeds ${this.maxOutput} bytes`));
        return;
      }
      this.out.push(chunk);
    });
    stream.on('error', (err: Error) => this.fail(new SpdyProtocolError(`${this.what}: ${err.message}`)));
  }

  run(input: Buffer, done: Done<Buffer>): void {
    if (this.failed) {
      const err = this.failed;
      process.nextTick(() => done(err));
      return;
    }
    this.queue.push({ input, done });
    this.step();
  }

  close(): void {
    this.fail(new Error(`${this.what}: closed`));
  }

  private step(): void {
    if (this.current) return;
    const op = this.queue.shift();
    if (!op) return;
    this.current = op;
    this.out = [];
    this.outLength = 0;
    this.stream.write(op.input);
    this.stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      if (this.current !== op) return; // failed meanwhile
      this.current = null;
      const out = Buffer.concat(this.out, this.outLength);
      this.out = [];
      op.done(null, out);
      this.step();
    });
  }

  // The stream's state is lost once an operation fails, so every later block would be garbage:
  // fail them all (the session answers with GOAWAY).
  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    const pending = this.current ? [this.current, ...this.queue] : [...this.queue];
    this.current = null;
    this.queue.length = 0;
    this.out = [];
    this.stream.destroy();
    for (const op of pending) op.done(err);
  }
}

export interface HeaderCodecOptions {
  /** The largest uncompressed header block accepted from the peer. */
  maxHeaderBlockSize: number;
}

/** The two compression contexts of one session: deflate for what we send, inflate for what we receive. */
export class HeaderCodec {
  private readonly deflate: SerialZlib;
  private readonly inflate: SerialZlib;

  constructor(options: HeaderCodecOptions) {
    this.deflate = new SerialZlib(
      zlib.createDeflate({ dictionary: SPDY3_DICTIONARY }),
      Number.MAX_SAFE_INTEGER,
      'header compression',
    );
    this.inflate = new SerialZlib(
      zlib.createInflate({ dictionary: SPDY3_DICTIONARY }),
      options.maxHeaderBlockSize,
      'header block',
    );
  }

  /** Compresses headers; callbacks run in call order, so frames can be written from them in order. */
  compress(headers: Iterable<readonly [string, readonly string[]]>, done: Done<Buffer>): void {
    this.deflate.run(encodeHeaderBlock(headers), done);
  }

  /** Decompresses and decodes a header block; errors are SpdyProtocolErrors. */
  decompress(block: Buffer, done: Done<Map<string, string[]>>): void {
    this.inflate.run(block, (err, raw) => {
      if (err) return done(err);
      let headers: Map<string, string[]>;
      try {
        headers = decodeHeaderBlock(raw!);
      } catch (e) {
        return done(e as Error);
      }
      done(null, headers);
    });
  }

  close(): void {
    this.deflate.close();
    this.inflate.close();
  }
}
