// Image pull: resolve a reference to a platform manifest, fetch its config, then download every
// missing layer concurrently, unpacking each into its own snapshot while it streams in (a layer's
// overlay upper dir does not depend on the layers below it). The image record is written last, so
// an image is either complete on disk or absent. Concurrent pulls of one image, and of one layer
// shared by two images, coalesce into a single download (SharedTasks).
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, pipeline } from 'node:stream';
import { SkiffError, isSkiffError } from '../common/errors.js';
import { logger } from '../common/log.js';
import type { BlobWriter, ContentStore } from './content/store.js';
import { sha256Digest } from './content/store.js';
import type { ImageRecord, ImageStore, LayerRecord } from './image-store.js';
import { MediaType, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from './oci.js';
import { selectManifest } from './platform.js';
import { formatReference, repository, type Reference } from './reference.js';
import type { Credentials } from './registry/auth.js';
import type { RegistryClient } from './registry/client.js';
import { SharedTasks, abortReason, throwIfAborted } from './shared-task.js';
import type { SnapshotStore } from './snapshots/store.js';
import { unpackLayer } from './unpack/apply.js';
import type { Lease, Leases } from './gc.js';

const log = logger('pull');

const LAYER_TYPES = new Set<string>([
  MediaType.OCI_LAYER,
  MediaType.OCI_LAYER_GZIP,
  MediaType.OCI_LAYER_ZSTD,
  MediaType.OCI_LAYER_NONDIST,
  MediaType.OCI_LAYER_NONDIST_GZIP,
  MediaType.OCI_LAYER_NONDIST_ZSTD,
  MediaType.DOCKER_LAYER,
  MediaType.DOCKER_LAYER_GZIP,
  MediaType.DOCKER_LAYER_FOREIGN_GZIP,
]);
const CONFIG_MAX = 8 << 20;

export interface PullerDeps {
  registry: RegistryClient;
  content: ContentStore;
  snapshots: SnapshotStore;
  images: ImageStore;
  leases: Leases;
  platform: Platform;
  /** A pull that receives no byte for this long fails with SKIFF_PULL_STALLED. */
  progressTimeoutMs: number;
  maxConcurrentDownloads: number;
  /** Called after a failed pull with what it touched, to drop what no image uses. */
  collect: (touched: Touched) => Promise<void>;
}

export interface Touched {
  blobs: Set<string>;
  snapshots: Set<string>;
}

export interface PullResult {
  image: ImageRecord;
  /** Compressed bytes fetched from the registry by this pull. */
  bytesFetched: number;
}

/** Errors after which the bytes already received are worth keeping for the next attempt. */
function resumable(err: unknown): boolean {
  return isSkiffError(err, 'SKIFF_REGISTRY_UNAVAILABLE') || isSkiffError(err, 'SKIFF_PULL_STALLED');
}

export class Puller {
  private readonly pulls = new SharedTasks<PullResult>();
  private readonly layers = new SharedTasks<number>();
  private readonly slots: Semaphore;

  constructor(private readonly deps: PullerDeps) {
    this.slots = new Semaphore(deps.maxConcurrentDownloads);
  }

  /** Pulls `ref` (already normalized, with a tag or digest). */
  pull(ref: Reference, creds: Credentials | undefined, signal: AbortSignal): Promise<PullResult> {
    const key = formatReference(ref) + '|' + credsKey(creds);
    return this.pulls.run(key, signal, (jobSignal) => this.run(ref, creds, jobSignal));
  }

  private async run(ref: Reference, creds: Credentials | undefined, callerSignal: AbortSignal): Promise<PullResult> {
    const name = formatReference(ref);
    const started = Date.now();
    const watchdog = new Watchdog(this.deps.progressTimeoutMs, name);
    const signal = AbortSignal.any([callerSignal, watchdog.signal]);
    const touched: Touched = { blobs: new Set(), snapshots: new Set() };
    const lease = this.deps.leases.acquire(touched);
    try {
      const result = await this.fetchImage(ref, creds, signal, watchdog, lease);
      log.info(
        { image: name, id: result.image.id, bytes: result.bytesFetched, ms: Date.now() - started },
        'pulled image',
      );
      return result;
    } catch (err) {
      const error = signal.aborted ? abortReason(signal) : err;
      log.warn({ image: name, err: error }, 'pull failed');
      lease.release();
      if (!resumable(error)) await this.deps.collect(touched).catch((e: unknown) => log.error({ err: e }, 'cleanup after failed pull'));
      throw error;
    } finally {
      lease.release();
      watchdog.stop();
    }
  }

  private async fetchImage(
    ref: Reference,
    creds: Credentials | undefined,
    signal: AbortSignal,
    watchdog: Watchdog,
    lease: Lease,
  ): Promise<PullResult> {
    const { registry, content } = this.deps;
    const name = formatReference(ref);
    const top = await registry.getManifest(ref, creds, signal);
    watchdog.progress();
    let manifestDesc = { digest: top.digest, mediaType: top.mediaType, bytes: top.bytes };
    let indexBytes: Buffer | undefined;
    const topJSON = parseJSON(top.bytes, `manifest of ${name}`) as Partial<Manifest & Index>;
    const topType = top.mediaType || topJSON.mediaType || '';
    if (topType === MediaType.OCI_INDEX || topType === MediaType.DOCKER_MANIFEST_LIST || (!topType && Array.isArray(topJSON.manifests))) {
      indexBytes = top.bytes;
      const index = validateIndex(topJSON, name);
      const chosen = selectManifest(index, this.deps.platform);
      const m = await registry.getManifest(ref, creds, signal, chosen.digest);
      watchdog.progress();
      manifestDesc = { digest: m.digest, mediaType: m.mediaType || chosen.mediaType, bytes: m.bytes };
    }
    const manifest = validateManifest(parseJSON(manifestDesc.bytes, `manifest ${manifestDesc.digest} of ${name}`), manifestDesc.mediaType, name);

    // Config: small, verified against its descriptor before anything is trusted from it.
    await lease.add({ blobs: [manifest.config.digest] });
    let configBytes: Buffer;
    if ((await content.size(manifest.config.digest)) !== undefined) {
      configBytes = await content.readBytes(manifest.config.digest);
    } else {
      configBytes = await this.fetchSmallBlob(ref, creds, manifest.config, signal, name);
      await content.writeBytes(manifest.config.digest, configBytes);
    }
    watchdog.progress();
    const config = validateConfig(parseJSON(configBytes, `config ${manifest.config.digest} of ${name}`), manifest, name);

    const chainIDs = computeChainIDs(config.rootfs.diff_ids);
    const layers: LayerRecord[] = manifest.layers.map((d, i) => ({
      digest: d.digest,
      mediaType: d.mediaType,
      size: d.size,
      diffID: config.rootfs.diff_ids[i],
      chainID: chainIDs[i],
    }));
    await lease.add({ blobs: layers.map((l) => l.digest), snapshots: layers.map((l) => l.chainID) });

    // One failed layer fails the pull: stop the others too, or they would go on to commit a blob
    // and a snapshot after the failed pull's GC has run, and nothing would ever remove them.
    const siblings = new AbortController();
    const layersSignal = AbortSignal.any([signal, siblings.signal]);
    const fetched = await Promise.all(
      layers.map((layer, i) =>
        this.layers
          .run(layer.chainID, layersSignal, (layerSignal) =>
            this.slots.use(layerSignal, () =>
              this.fetchLayer(ref, creds, layer, i === 0 ? undefined : chainIDs[i - 1], layerSignal, watchdog),
            ),
          )
          .catch((err: unknown) => {
            siblings.abort(err);
            throw err;
          }),
      ),
    );
    throwIfAborted(signal);

    // Manifests last among the blobs: their presence says nothing until the record is written.
    await lease.add({ blobs: [manifestDesc.digest] });
    await content.writeBytes(manifestDesc.digest, manifestDesc.bytes);
    if (indexBytes) {
      await lease.add({ blobs: [top.digest] });
      await content.writeBytes(top.digest, indexBytes);
    }
    const image = await this.record(ref, top.digest, indexBytes ? top.digest : undefined, manifestDesc.digest, manifest, config, layers);
    return { image, bytesFetched: fetched.reduce((a, b) => a + b, 0) };
  }

  private async fetchSmallBlob(ref: Reference, creds: Credentials | undefined, desc: Descriptor, signal: AbortSignal, name: string): Promise<Buffer> {
    if (desc.size > CONFIG_MAX) {
      throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: config ${desc.digest} is ${desc.size} bytes, over the ${CONFIG_MAX} limit`);
    }
    const { stream } = await this.deps.registry.getBlob(ref, desc.digest, creds, signal);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of stream) {
      n += (chunk as Buffer).length;
      if (n > CONFIG_MAX) {
        stream.destroy();
        throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: config ${desc.digest} is larger than its descriptor says`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  /** Makes sure one layer's snapshot exists; returns the compressed bytes fetched for it. */
  private async fetchLayer(
    ref: Reference,
    creds: Credentials | undefined,
    layer: LayerRecord,
    parent: string | undefined,
    signal: AbortSignal,
    watchdog: Watchdog,
  ): Promise<number> {
    const { content, snapshots, registry } = this.deps;
    if (await snapshots.has(layer.chainID)) return 0;
    const prepared = await snapshots.prepare();
    let writer: BlobWriter | undefined;
    let fetched = 0;
    try {
      let source: Readable;
      if ((await content.size(layer.digest)) === layer.size) {
        source = content.createReadStream(layer.digest);
      } else {
        writer = await content.openWriter(layer.digest, layer.size);
        let remote = await registry.getBlob(ref, layer.digest, creds, signal, { offset: writer.offset });
        if (remote.offset !== writer.offset) {
          // The registry ignored our Range: start the blob over.
          await writer.abort();
          writer = await content.openWriter(layer.digest, layer.size, { resume: false });
          if (remote.offset !== 0) {
            remote.stream.destroy();
            remote = await registry.getBlob(ref, layer.digest, creds, signal);
          }
        }
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            fetched += chunk.length;
            watchdog.progress();
            cb(null, chunk);
          },
        });
        const tap = writer.tap();
        const net = new PassThrough();
        pipeline(remote.stream, counter, tap, net, () => undefined);
        source = writer.offset > 0 ? concat(writer.existing(), net) : net;
        if (writer.offset > 0) log.info({ layer: layer.digest, offset: writer.offset }, 'resuming layer download');
      }
      const result = await unpackLayer(source, layer.mediaType, prepared.fs, { layer: layer.digest, signal });
      // The tar may end before the compressed stream does (padding, gzip trailer): drain the rest
      // so that the blob written is the whole blob.
      await drain(source);
      throwIfAborted(signal);
      if (writer) {
        const w = writer;
        writer = undefined;
        await w.commit();
      }
      if (result.diffID !== layer.diffID) {
        throw new SkiffError(
          'SKIFF_DIGEST_MISMATCH',
          `layer ${layer.digest}: uncompressed content has digest ${result.diffID}, config says ${layer.diffID}`,
        );
      }
      await snapshots.commit(prepared, {
        chainID: layer.chainID,
        diffID: layer.diffID,
        ...(parent ? { parent } : {}),
        size: result.size,
        createdAt: new Date().toISOString(),
      });
      return fetched;
    } catch (err) {
      let error = signal.aborted ? abortReason(signal) : err;
      await snapshots.abort(prepared);
      const streamed = writer !== undefined;
      if (writer) await (resumable(error) ? writer.close() : writer.abort());
      // Content that does not decompress or untar may simply not be the blob the manifest names:
      // fetch it whole and say so, rather than blaming the layer's format (containerd checks the
      // digest before unpacking, for the same reason).
      if (streamed && isSkiffError(error, 'SKIFF_LAYER_INVALID')) {
        const mismatch = await this.digestMismatch(ref, creds, layer, signal);
        if (mismatch) error = mismatch;
      }
      throw error;
    }
  }

  /** Downloads a blob without unpacking it; returns the digest error if its bytes are not the blob. */
  private async digestMismatch(ref: Reference, creds: Credentials | undefined, layer: LayerRecord, signal: AbortSignal): Promise<SkiffError | undefined> {
    const writer = await this.deps.content.openWriter(layer.digest, layer.size, { resume: false });
    try {
      const { stream } = await this.deps.registry.getBlob(ref, layer.digest, creds, signal);
      for await (const chunk of stream) await writer.append(chunk as Buffer);
      await writer.commit();
      return undefined;
    } catch (err) {
      await writer.abort();
      return isSkiffError(err, 'SKIFF_DIGEST_MISMATCH') ? err : undefined;
    }
  }

  private async record(
    ref: Reference,
    topDigest: string,
    indexDigest: string | undefined,
    manifestDigest: string,
    manifest: Manifest,
    config: ImageConfig,
    layers: LayerRecord[],
  ): Promise<ImageRecord> {
    const { images } = this.deps;
    const id = manifest.config.digest;
    const repo = repository(ref);
    const tag = ref.tag ? `${repo}:${ref.tag}` : undefined;
    const repoDigest = `${repo}@${topDigest}`;
    const existing = images.get(id);
    const rec: ImageRecord = existing ?? {
      version: 1,
      id,
      repoTags: [],
      repoDigests: [],
      manifestDigest,
      configDigest: id,
      size: manifest.config.size + layers.reduce((a, l) => a + l.size, 0),
      layers,
      os: config.os,
      architecture: config.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
      config: config.config ?? {},
      pinned: false,
      createdAt: new Date().toISOString(),
    };
    if (indexDigest) rec.indexDigest = indexDigest;
    if (tag && !rec.repoTags.includes(tag)) rec.repoTags.push(tag);
    if (!rec.repoDigests.includes(repoDigest)) rec.repoDigests.push(repoDigest);
    // A tag names one image: take it away from the image that had it.
    if (tag) {
      const previous = images.byTag(tag);
      if (previous && previous.id !== id) {
        previous.repoTags = previous.repoTags.filter((t) => t !== tag);
        await images.put(previous);
      }
    }
    await images.put(rec);
    return rec;
  }
}

function credsKey(creds: Credentials | undefined): string {
  if (!creds) return '';
  return createHash('sha256').update(JSON.stringify(creds)).digest('hex').slice(0, 16);
}

/** image-spec config.md: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function computeChainIDs(diffIDs: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : sha256Digest(`${out[out.length - 1]} ${d}`));
  return out;
}

function parseJSON(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `${what} is not valid JSON`, { cause: err });
  }
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function validDescriptor(d: unknown): d is Descriptor {
  if (typeof d !== 'object' || d === null) return false;
  const x = d as Partial<Descriptor>;
  return typeof x.mediaType === 'string' && typeof x.digest === 'string' && DIGEST.test(x.digest) &&
    typeof x.size === 'number' && Number.isSafeInteger(x.size) && x.size >= 0;
}

function validateIndex(j: Partial<Index>, name: string): Index {
  if (j.schemaVersion !== 2 || !Array.isArray(j.manifests) || !j.manifests.every(validDescriptor)) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: malformed image index`);
  }
  return j as Index;
}

function validateManifest(j: unknown, mediaType: string, name: string): Manifest {
  const m = j as Omit<Partial<Manifest>, 'schemaVersion'> & { schemaVersion?: number };
  if (m.schemaVersion === 1 || /v1\+(prettyj|j)ws/.test(mediaType)) {
    throw new SkiffError('SKIFF_MANIFEST_UNSUPPORTED', `pull ${name}: Docker schema 1 manifests are not supported`);
  }
  const type = mediaType || m.mediaType || '';
  if (type !== MediaType.OCI_MANIFEST && type !== MediaType.DOCKER_MANIFEST && type !== '') {
    throw new SkiffError('SKIFF_MANIFEST_UNSUPPORTED', `pull ${name}: unsupported manifest media type "${type}"`);
  }
  if (m.schemaVersion !== 2 || !validDescriptor(m.config) || !Array.isArray(m.layers) || !m.layers.every(validDescriptor)) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: malformed image manifest`);
  }
  for (const l of m.layers) {
    if (!LAYER_TYPES.has(l.mediaType)) {
      throw new SkiffError('SKIFF_MANIFEST_UNSUPPORTED', `pull ${name}: layer ${l.digest} has unsupported media type "${l.mediaType}"`);
    }
  }
  return m as unknown as Manifest;
}

function validateConfig(j: unknown, manifest: Manifest, name: string): ImageConfig {
  const c = j as Partial<ImageConfig>;
  const diffIDs = c.rootfs?.diff_ids;
  if (!Array.isArray(diffIDs) || !diffIDs.every((d) => typeof d === 'string' && DIGEST.test(d))) {
    throw new SkiffError('SKIFF_MANIFEST_INVALID', `pull ${name}: image config has no valid rootfs.diff_ids`);
  }
  if (diffIDs.length !== manifest.layers.length) {
    throw new SkiffError(
      'SKIFF_MANIFEST_INVALID',
      `pull ${name}: manifest has ${manifest.layers.length} layers but config lists ${diffIDs.length} diff_ids`,
    );
  }
  return { ...c, os: c.os ?? 'linux', architecture: c.architecture ?? '' } as ImageConfig;
}

function concat(a: Readable, b: Readable): Readable {
  const out = Readable.from(
    (async function* () {
      yield* a;
      yield* b;
    })(),
    { objectMode: false },
  );
  out.on('close', () => {
    a.destroy();
    b.destroy();
  });
  return out;
}

async function drain(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return;
  stream.resume();
  await new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
    stream.once('close', resolve);
  });
}

/** Fails the pull when no byte arrives for `timeoutMs` (containerd's image_pull_progress_timeout). */
class Watchdog {
  private readonly controller = new AbortController();
  private last = Date.now();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, name: string) {
    if (timeoutMs > 0) {
      this.timer = setInterval(() => {
        if (Date.now() - this.last > timeoutMs) {
          this.controller.abort(
            new SkiffError('SKIFF_PULL_STALLED', `pull ${name}: no progress for ${Math.round(timeoutMs / 1000)}s, cancelled`),
          );
          this.stop();
        }
      }, Math.min(1000, Math.max(50, timeoutMs / 4)));
      this.timer.unref();
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  progress(): void {
    this.last = Date.now();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Bounds concurrent layer downloads (containerd max_concurrent_downloads). */
class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async use<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const go = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.queue.indexOf(go);
          if (i >= 0) this.queue.splice(i, 1);
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.queue.push(go);
      });
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}
