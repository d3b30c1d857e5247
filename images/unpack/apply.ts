// Applies one layer tar to its own empty directory: the layer's overlay upper dir (docker overlay2
// and containerd overlay semantics). A layer never lands on top of its lower layers, so whiteouts
// are converted to overlayfs form instead of deleting anything (image-spec layer.md "Whiteouts";
// kernel Documentation/filesystems/overlayfs.rst "whiteouts and opaque directories"), and every
// layer of an image can be unpacked at the same time, each while it downloads.
//
// Safety (layer-writer.ts): a layer is untrusted input. Entries are placed by a lexically cleaned
// path, every parent is lstat'ed and a symlink there is refused (never followed), files are opened
// with O_EXCL|O_NOFOLLOW, and anything that would escape `root` fails the whole layer with
// SKIFF_LAYER_UNSAFE before writing. On any error or abort the streams are destroyed and every file
// descriptor closed, but `root` is left as it is: removing the half-written directory is the
// caller's job (the snapshotter removes its staging dir).
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import { SkiffError, errnoCode, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { linuxSyscalls, type Syscalls } from '../../native/sys.js';
import { decompressStream } from './decompress.js';
import { LayerWriter, TarStreamError, type Entry } from './layer-writer.js';
import { PaxTap } from './pax.js';

const log = logger('unpack');

export interface ApplyOptions {
  /** The layer's digest, for messages. */
  layer: string;
  signal?: AbortSignal;
  sys?: Syscalls;
}

export interface ApplyResult {
  /** Tar entries applied, whiteouts included (PAX and GNU long-name headers are not entries). */
  entries: number;
  /** Bytes of regular file content written. */
  size: number;
}

/** Applies an uncompressed layer tar to `root`, an existing empty directory. */
export async function applyLayer(tar: Readable, root: string, opts: ApplyOptions): Promise<ApplyResult> {
  return run([tar], root, opts);
}

/**
 * Decompresses a layer blob as stored, applies it to `root`, and returns the diffID: the sha256 of
 * the uncompressed tar (image-spec config.md `rootfs.diff_ids`), for the caller to check against
 * the image config.
 */
export async function unpackLayer(
  blob: Readable,
  mediaType: string,
  root: string,
  opts: ApplyOptions,
): Promise<ApplyResult & { diffID: string }> {
  let decompress: Transform;
  try {
    decompress = decompressStream(mediaType);
  } catch (err) {
    blob.destroy();
    throw err;
  }
  const hash = createHash('sha256');
  const digest = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const result = await run([blob, decompress, digest], root, opts);
  return { ...result, diffID: `sha256:${hash.digest('hex')}` };
}

type Stage = Readable | Transform;

async function run(stages: Stage[], root: string, opts: ApplyOptions): Promise<ApplyResult> {
  const { layer, signal } = opts;
  const writer = new LayerWriter(root, layer, opts.sys ?? linuxSyscalls);
  try {
    if (signal?.aborted) throw cancelledError(layer, signal);
    await writer.checkRoot();
  } catch (err) {
    for (const s of stages) s.destroy();
    throw err;
  }

  const tap = new PaxTap();
  const extract = tarExtract();
  const all = [...stages, tap];
  let cancelled: SkiffError | undefined;
  const stop = (err?: Error): void => {
    for (const s of all) s.destroy();
    extract.destroy(err);
  };
  const onAbort = (): void => {
    cancelled ??= cancelledError(layer, signal);
    stop(cancelled);
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  // The pipeline's own rejection is only a consequence of what the loop below sees (a source or
  // parse error reaches it through the extractor), so it is observed here and judged there.
  const feeding = pipeline([...all, extract] as unknown as NodeJS.ReadWriteStream[]).then(
    () => undefined,
    (err: unknown) => err,
  );
  try {
    // No await may come between starting the pipeline and this loop: tar-stream's iterator only
    // subscribes to 'entry' when it is created, and an entry emitted before that is lost (a hang).
    for await (const entry of extract as AsyncIterable<Entry>) {
      if (cancelled) throw cancelled;
      await writer.apply(entry, tap.shift());
    }
    const err = await feeding;
    if (err) throw classify(err, layer);
    await writer.finish();
    if (cancelled) throw cancelled;
  } catch (err) {
    stop();
    const fed = await feeding;
    // A stream error seen through an entry is often a generic "destroyed"; the pipeline holds the
    // cause (truncated tar, corrupt gzip, the source's own error) unless it only saw our stop().
    const cause = err instanceof SkiffError || !fed || errnoCode(fed) === 'ERR_STREAM_PREMATURE_CLOSE' ? err : fed;
    throw cancelled ?? classify(cause, layer);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  log.debug({ layer, entries: writer.entries, size: writer.size }, 'layer applied');
  return { entries: writer.entries, size: writer.size };
}

function cancelledError(layer: string, signal: AbortSignal | undefined): SkiffError {
  return new SkiffError('SKIFF_CANCELLED', `unpack of layer ${layer} cancelled`, { cause: signal?.reason });
}

/** Our own decisions stay as they are; anything else came from the blob, its decoder or the tar parser. */
function classify(err: unknown, layer: string): SkiffError {
  if (err instanceof SkiffError) return err;
  if (err instanceof TarStreamError) err = err.cause;
  return new SkiffError('SKIFF_LAYER_INVALID', `layer ${layer}: ${errorMessage(err)}`, { cause: err });
}
