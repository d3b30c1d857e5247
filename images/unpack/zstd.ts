// zstd decompression as a Node Transform: zlib's own when Node has it (≥ 22.15, 23.8), else a
// streaming wrapper around the pure-JS fzstd decoder, which Node 20 needs (no native binding to
// build, nothing downloaded at install time).
import * as zlib from 'node:zlib';
import { Transform, type TransformCallback } from 'node:stream';
import { Decompress } from 'fzstd';

type NativeZstd = (opts?: { chunkSize?: number }) => Transform;

/** zlib.createZstdDecompress when this Node has it; @types/node 20 does not know it yet. */
function nativeZstd(): NativeZstd | undefined {
  const fn = (zlib as unknown as { createZstdDecompress?: NativeZstd }).createZstdDecompress;
  return typeof fn === 'function' ? fn : undefined;
}

/** A zstd decompressing Transform, the best one this Node offers. */
export function createZstdDecompress(chunkSize?: number): Transform {
  return nativeZstd()?.(chunkSize ? { chunkSize } : undefined) ?? new FzstdDecompress();
}

// fzstd decodes synchronously, and one push yields every block the pushed bytes complete: an RLE
// block is 4 bytes and expands to 128 KiB, so 2 KiB of a crafted (or just very compressible) layer
// can be 64 MiB of output from one push. So the input is cut at block boundaries (RFC 8878 §3.1:
// frame header, then blocks of at most 128 KiB of output), one block per push, and feeding stops
// while the readable side is full, resuming from _read: buffered output stays within a block of the
// high-water mark whatever the compression ratio.

/** Finds where each zstd block ends in a byte stream, without decoding anything. */
class BlockBoundaries {
  private state: 'magic' | 'skippable-size' | 'frame-header' | 'block-header' = 'magic';
  private readonly bytes = Buffer.alloc(4);
  private have = 0;
  private skip = 0;
  private blockEnds = false;
  private checksum = false;

  /** Bytes from `offset` up to the end of the next block, or to the end of `data` if none ends in it. */
  next(data: Uint8Array, offset: number): number {
    let pos = offset;
    while (pos < data.length) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, data.length - pos);
        this.skip -= take;
        pos += take;
      } else {
        this.bytes[this.have++] = data[pos++]!;
        if (this.have < this.need()) continue;
        this.have = 0;
        this.header();
      }
      if (this.skip === 0 && this.blockEnds) {
        this.blockEnds = false;
        return pos - offset;
      }
    }
    return pos - offset;
  }

  private need(): number {
    return this.state === 'frame-header' ? 1 : this.state === 'block-header' ? 3 : 4;
  }

  private header(): void {
    const b = this.bytes;
    switch (this.state) {
      case 'magic': {
        const magic = b.readUInt32LE(0);
        if (magic === 0xfd2fb528) this.state = 'frame-header';
        else if (magic >>> 4 === 0x184d2a5) this.state = 'skippable-size';
        else throw new Error('not a zstd frame');
        return;
      }
      case 'skippable-size':
        this.skip = b.readUInt32LE(0);
        this.state = 'magic';
        return;
      case 'frame-header': {
        // Frame_Header_Descriptor: FCS flag (2 bits), single segment, unused, reserved, checksum, dictionary ID flag (2).
        const d = b[0];
        const single = (d >> 5) & 1;
        this.checksum = ((d >> 2) & 1) === 1;
        this.skip = (single ? 0 : 1) + [0, 1, 2, 4][d & 3] + [single, 2, 4, 8][d >> 6];
        this.state = 'block-header';
        return;
      }
      case 'block-header': {
        const h = b[0] | (b[1] << 8) | (b[2] << 16);
        const type = (h >> 1) & 3;
        if (type === 3) throw new Error('reserved block type');
        this.skip = type === 1 ? 1 : h >>> 3; // an RLE block stores its one byte
        this.blockEnds = true;
        if (h & 1) {
          // last block: then the optional 4-byte content checksum, then the next frame
          this.skip += this.checksum ? 4 : 0;
          this.state = 'magic';
        }
        return;
      }
    }
  }
}

/** Streaming zstd decoder on fzstd. Exported for tests; use createZstdDecompress. */
export class FzstdDecompress extends Transform {
  private readonly decoder: Decompress;
  private readonly blocks = new BlockBoundaries();
  private full = false;
  private pending: (() => void) | undefined;

  constructor() {
    super();
    this.decoder = new Decompress((data) => {
      if (data.length === 0) return;
      // fzstd hands out a fresh array per block, so wrapping it without a copy is safe.
      if (!this.push(Buffer.from(data.buffer, data.byteOffset, data.length))) this.full = true;
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.feed(chunk, 0, cb);
  }

  private feed(chunk: Buffer, offset: number, cb: TransformCallback): void {
    try {
      while (offset < chunk.length) {
        const end = offset + this.blocks.next(chunk, offset);
        this.decoder.push(chunk.subarray(offset, end));
        offset = end;
        if (this.full && offset < chunk.length) {
          this.full = false;
          this.pending = () => this.feed(chunk, offset, cb);
          return;
        }
      }
    } catch (err) {
      cb(zstdError(err));
      return;
    }
    this.full = false;
    cb();
  }
  override _read(size: number): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.();
    super._read(size);
  }

  override _flush(cb: TransformCallback): void {
    try {
      // final=true makes fzstd throw on a truncated frame instead of waiting for more bytes.
      this.decoder.push(new Uint8Array(0), true);
      cb();
    } catch (err) {
      cb(zstdError(err));
    }
  }
}

function zstdError(err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  return new Error(`zstd: ${msg}`, { cause: err });
}
