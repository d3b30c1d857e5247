// The image the pull benchmark times: busybox plus layers of incompressible pseudo-random files,
// gzip level 1, about `totalMiB` of compressed blobs, pushed to a test registry.
import { createCipheriv, createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { busyboxLayer, buildLayer, type BuiltLayer, type Entry } from '../e2e/harness/layer.js';
import { pushImage, type PushedImage } from '../e2e/harness/push.js';
import type { TestRegistry } from '../e2e/harness/registry.js';

export interface BenchImageOptions {
  /** Layer count including the busybox base. */
  layers: number;
  /** Target compressed size of all layers together. */
  totalMiB: number;
  /** Same seed, same bytes, same digests. */
  seed?: string;
  /** Large files per random layer (plus SMALL_FILES small ones, so unpack also handles many entries). */
  filesPerLayer?: number;
  repo?: string;
  tag?: string;
}

export interface BenchImage {
  ref: string;
  image: PushedImage;
  /** Sum of the layer blob sizes as pushed. */
  compressedBytes: number;
  /** Sum of the layer tar sizes. */
  uncompressedBytes: number;
  buildMs: number;
  pushMs: number;
}

const MiB = 1024 * 1024;
const SMALL_FILES = 64;
const SMALL_FILE_BYTES = 4096;

/**
 * Deterministic incompressible bytes: AES-128-CTR over zeros is a keyed stream generator that
 * runs at memory speed with AES-NI, far faster than any JS PRNG and as random-looking to gzip as
 * crypto.randomBytes.
 */
function pseudoRandom(seed: string, bytes: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(bytes)), cipher.final()]);
}

function randomLayerEntries(seed: string, index: number, bytes: number, files: number): Entry[] {
  const dir = `/bench/layer${index}`;
  const data = pseudoRandom(`${seed}/${index}`, bytes);
  const entries: Entry[] = [
    { path: '/bench', type: 'dir' },
    { path: dir, type: 'dir' },
  ];
  const smallTotal = SMALL_FILES * SMALL_FILE_BYTES;
  const bigEach = Math.floor((bytes - smallTotal) / files);
  for (let i = 0; i < files; i++) {
    // Views into one buffer: no copies until tar-stream writes them out.
    entries.push({ path: `${dir}/blob${i}.bin`, type: 'file', content: data.subarray(i * bigEach, (i + 1) * bigEach) });
  }
  const small = data.subarray(files * bigEach);
  for (let i = 0; i < SMALL_FILES && (i + 1) * SMALL_FILE_BYTES <= small.length; i++) {
    entries.push({
      path: `${dir}/small${i}.bin`,
      type: 'file',
      content: small.subarray(i * SMALL_FILE_BYTES, (i + 1) * SMALL_FILE_BYTES),
    });
  }
  return entries;
}

/** Builds the benchmark image and pushes it to `reg`. */
export async function buildBenchImage(reg: TestRegistry, opts: BenchImageOptions): Promise<BenchImage> {
  if (opts.layers < 2) throw new Error('a bench image needs the busybox layer and at least one random layer');
  const seed = opts.seed ?? 'skiff-bench';
  const t0 = performance.now();
  const base = await busyboxLayer('gzip');
  const randomLayers = opts.layers - 1;
  // Random data does not shrink under gzip, so tar bytes ≈ compressed bytes.
  const perLayer = Math.max(SMALL_FILES * SMALL_FILE_BYTES + MiB, Math.floor((opts.totalMiB * MiB - base.size) / randomLayers));
  const files = opts.filesPerLayer ?? 4;
  // zlib runs on libuv's thread pool: building layers concurrently uses both cores.
  const built: BuiltLayer[] = await Promise.all(
    Array.from({ length: randomLayers }, (_, i) =>
      buildLayer(randomLayerEntries(seed, i + 1, perLayer, files), 'gzip', { level: 1 }),
    ),
  );
  const layers = [base, ...built];
  const t1 = performance.now();
  const image = await pushImage(reg, opts.repo ?? 'bench', opts.tag ?? `${opts.layers}x${opts.totalMiB}`, {
    layers,
    format: 'oci',
  });
  const t2 = performance.now();
  return {
    ref: image.ref,
    image,
    compressedBytes: layers.reduce((n, l) => n + l.size, 0),
    uncompressedBytes: uncompressedSize(layers),
    buildMs: t1 - t0,
    pushMs: t2 - t1,
  };
}

// The tar sizes are not kept by BuiltLayer; gunzip's ISIZE trailer (RFC 1952) has them mod 2^32,
// exact for layers under 4 GiB.
function uncompressedSize(layers: BuiltLayer[]): number {
  return layers.reduce((n, l) => n + (l.compression === 'gzip' ? l.blob.readUInt32LE(l.blob.length - 4) : l.size), 0);
}
