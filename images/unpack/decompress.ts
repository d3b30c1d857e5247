// Layer blob → uncompressed tar. The media type says what a layer should be, but registries and
// old tools mislabel layers (gzip served as plain tar, or the reverse), so the first bytes decide,
// as containerd's archive/compression DecompressStream does. The media type still has to be one
// we know: an unknown one is refused before any byte is read.
import { Transform, PassThrough, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { SkiffError } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { LAYER_MEDIA_TYPES } from '../oci.js';
import { createZstdDecompress } from './zstd.js';

const log = logger('unpack');

export type Compression = 'gzip' | 'zstd' | 'none';

/** The compression a layer media type declares; SKIFF_LAYER_INVALID for one that is not a layer. */
export function layerCompression(mediaType: string): Compression {
  // Parameters (`; charset=…`) never change the encoding of a layer.
  const base = mediaType.split(';', 1)[0].trim().toLowerCase();
  if (!LAYER_MEDIA_TYPES.has(base)) throw new SkiffError('SKIFF_LAYER_INVALID', `unsupported layer media type "${mediaType}"`);
  // image-spec media-types.md spells the encoding as a "+gzip"/"+zstd" suffix, Docker as ".tar.gzip".
  if (base.endsWith('+gzip') || base.endsWith('.tar.gzip')) return 'gzip';
  if (base.endsWith('+zstd')) return 'zstd';
  return 'none';
}

/** What the first bytes are: gzip (RFC 1952 ID1 ID2) or a zstd frame (RFC 8878 magic 0xFD2FB528 LE). */
export function sniffCompression(head: Uint8Array): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 4) return 'none';
  return undefined; // too few bytes to tell yet
}

/**
 * Output chunk of the zlib decoders. zlib's default (16 KiB) means one callback, one tar-parser
 * step and one write(2) per 16 KiB of layer; 256 KiB cuts that per-chunk cost sixteenfold.
 */
const DECODE_CHUNK = 256 * 1024;

function decoderFor(c: Compression): Transform {
  switch (c) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: DECODE_CHUNK });
    case 'zstd':
      return createZstdDecompress(DECODE_CHUNK);
    case 'none':
      return new PassThrough();
  }
}

/**
 * A Transform from the layer blob as stored to its uncompressed tar. Throws SKIFF_LAYER_INVALID for
 * a media type that is not a layer; corrupt or truncated data makes the stream error.
 */
export function decompressStream(mediaType: string): Transform {
  return new SniffingDecompress(layerCompression(mediaType), mediaType);
}

/** Holds the first bytes until the format is known, then hands everything to that decoder. */
class SniffingDecompress extends Transform {
  private head: Buffer[] = [];
  private inner: Transform | undefined;

  constructor(
    private readonly declared: Compression,
    private readonly mediaType: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.inner) {
      this.forward(this.inner, chunk, cb);
      return;
    }
    this.head.push(chunk);
    const head = Buffer.concat(this.head);
    const found = sniffCompression(head);
    if (found === undefined) {
      cb();
      return;
    }
    this.forward(this.start(found), head, cb);
  }

  override _flush(cb: TransformCallback): void {
    // A blob shorter than 4 bytes is not gzip or zstd; let the tar reader judge what is there.
    const inner = this.inner ?? this.start(sniffCompression(Buffer.concat(this.head)) ?? 'none', Buffer.concat(this.head));
    inner.once('end', () => cb());
    inner.end();
  }

  override _read(size: number): void {
    // Our reader wants more: let the decoder flow again (it pauses when push() says we are full).
    this.inner?.resume();
    super._read(size);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.inner?.destroy();
    cb(err);
  }

  private start(found: Compression, pending?: Buffer): Transform {
    if (found !== this.declared) {
      log.debug({ mediaType: this.mediaType, declared: this.declared, found }, 'layer compression differs from its media type; using what the bytes say');
    }
    this.head = [];
    const inner = decoderFor(found);
    this.inner = inner;
    inner.on('data', (data: Buffer) => {
      if (!this.push(data)) inner.pause();
    });
    inner.on('error', (err) => this.destroy(err));
    if (pending && pending.length > 0) inner.write(pending);
    return inner;
  }

  private forward(inner: Transform, chunk: Buffer, cb: TransformCallback): void {
    if (inner.write(chunk)) cb();
    else inner.once('drain', () => cb());
  }
}
