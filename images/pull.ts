// Image pull: resolve a reference to a platform manifest, fetch its config, then download every
// missing layer concurrently, unpacking each into its own snapshot while it streams in (a layer's
// overlay upper dir does not depend on the layers below it). The image record is written last,
// after a syncfs, under the store lock, so an image is either complete on disk or absent.
// Concurrent pulls of one reference share one job, and jobs share the download of a layer
// (SharedTasks keyed by chainID); a blob that two layers name is written once (ContentStore).
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SkiffError, errorMessage, isSkiffError } from '../common/errors.js';
import { logger } from '../common/log.js';
import { syncFilesystem } from '../native/sys.js';
import type { BlobWriter, ContentStore } from './content/store.js';
import type { Lease, Leases } from './gc.js';
import type { ImageRecord, ImageStore, LayerRecord } from './image-store.js';
import { computeChainIDs, isIndex, parseJSON, validateConfig, validateIndex, validateManifest } from './manifest.js';
import type { Descriptor, ImageConfig, Manifest, Platform } from './oci.js';
import { formatPlatform, platformMatches, selectManifest } from './platform.js';
import { Semaphore, Watchdog } from './pull-control.js';
import { formatReference, repository, type Reference } from './reference.js';
import type { Credentials } from './registry/auth.js';
import type { RegistryClient } from './registry/client.js';
import { SharedTasks, abortReason, throwIfAborted } from './shared-task.js';
import type { SnapshotStore } from './snapshots/store.js';
import { unpackLayer } from './unpack/apply.js';

const log = logger('pull');

const CONFIG_MAX = 8 << 20;

export interface PullerDeps {
  registry: RegistryClient;
  content: ContentStore;
  snapshots: SnapshotStore;
  images: ImageStore;
  leases: Leases;
  platform: Platform;
  /** A pull that receives no byte for this long fails with SKIFF_PULL_STALLED (0: never). */
  progressTimeoutMs: number;
  /** Layers downloaded at once by one pull. */
  maxConcurrentDownloads: number;
  /** How often an interrupted layer download is resumed before the pull fails. */
  retries: number;
  /** Called after a failed pull with what it touched, to drop what no image uses. */
  collect: (touched: Touched) => Promise<void>;
  /** Told of the end of each pull (once per download, however many callers shared it): metrics. */
  onPullEnd?: (end: PullEnd) => void;
}

export interface PullEnd {
  ok: boolean;
  seconds: number;
  /** Compressed bytes fetched from the registry (what a failed pull got is not counted). */
  bytes: number;
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

/** What a pull resolved and fetched, before it is recorded. */
interface Fetched {
  topDigest: string;
  indexDigest?: string;
  manifestDigest: string;
  manifest: Manifest;
  config: ImageConfig;
  layers: LayerRecord[];
  bytesFetched: number;
}

/** Errors after which the bytes already received are worth keeping for the next attempt. */
function resumable(err: unknown): boolean {
  return (
    isSkiffError(err, 'SKIFF_REGISTRY_UNAVAILABLE') || isSkiffError(err, 'SKIFF_PULL_STALLED') || isSkiffError(err, 'SKIFF_DOWNLOAD_INTERRUPTED')
  );
}

export class Puller {
  private readonly pulls = new SharedTasks<PullResult>();
  private readonly layers = new SharedTasks<number>();
  /** Watchdogs of every pull waiting on a layer: the bytes of a shared download are progress for each. */
  private readonly watchers = new Map<string, Set<Watchdog>>();

  constructor(private readonly deps: PullerDeps) {}

  /** Pulls `ref` (normalized, with a tag or a digest). */
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
      const fetched = await this.fetchImage(ref, creds, signal, watchdog, lease);
      // The snapshots' files reach the disk before a record names them.
      await syncFilesystem(this.deps.snapshots.root);
      throwIfAborted(signal);
      const image = await this.deps.leases.exclusive(async () => {
        const rec = await this.record(ref, fetched);
        lease.release();
        return rec;
      });
      log.info({ image: name, id: image.id, bytes: fetched.bytesFetched, ms: Date.now() - started }, 'pulled image');
      this.deps.onPullEnd?.({ ok: true, seconds: (Date.now() - started) / 1000, bytes: fetched.bytesFetched });
      return { image, bytesFetched: fetched.bytesFetched };
    } catch (err) {
      const error = signal.aborted ? abortReason(signal) : err;
      log.warn({ image: name, err: error }, 'pull failed');
      this.deps.onPullEnd?.({ ok: false, seconds: (Date.now() - started) / 1000, bytes: 0 });
      lease.release();
      if (!resumable(error)) await this.deps.collect(touched).catch((e: unknown) => log.error({ err: e }, 'cleanup after failed pull'));
      throw error;
    } finally {
      watchdog.stop();
    }
  }

  private async fetchImage(ref: Reference, creds: Credentials | undefined, signal: AbortSignal, watchdog: Watchdog, lease: Lease): Promise<Fetched> {
    const { registry, content } = this.deps;
    const name = formatReference(ref);
    const top = await registry.getManifest(ref, creds, signal);
    watchdog.progress();
    let manifestDesc = { digest: top.digest, mediaType: top.mediaType, bytes: top.bytes };
    let indexDigest: string | undefined;
    let unplatformed = false;
    const topDoc = parseJSON(top.bytes, `manifest of ${name}`) as { mediaType?: unknown; manifests?: unknown };
    if (isIndex(top.mediaType, topDoc)) {
      indexDigest = top.digest;
      const chosen = selectManifest(validateIndex(topDoc, name), this.deps.platform);
      unplatformed = chosen.platform === undefined;
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
    // An index entry without a platform was taken only because nothing else matched: the config
    // says what it really is (containerd checks the same way).
    const have = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
    if (unplatformed && !platformMatches(have, this.deps.platform)) {
      throw new SkiffError(
        'SKIFF_PLATFORM_NOT_FOUND',
        `pull ${name}: no manifest for ${formatPlatform(this.deps.platform)}; the index offers ${formatPlatform(have)}`,
      );
    }

    const chainIDs = computeChainIDs(config.rootfs.diff_ids);
    const layers: LayerRecord[] = manifest.layers.map((d, i) => ({
      digest: d.digest,
      mediaType: d.mediaType,
      size: d.size,
      diffID: config.rootfs.diff_ids[i],
      chainID: chainIDs[i],
    }));
    await lease.add({ blobs: layers.map((l) => l.digest), snapshots: chainIDs });
    const bytesFetched = await this.fetchLayers(ref, creds, layers, signal, watchdog);

    // Manifests last among the blobs: their presence says nothing until the record is written.
    await lease.add({ blobs: [manifestDesc.digest, top.digest] });
    await content.writeBytes(manifestDesc.digest, manifestDesc.bytes);
    if (indexDigest) await content.writeBytes(top.digest, top.bytes);
    return { topDigest: top.digest, ...(indexDigest ? { indexDigest } : {}), manifestDigest: manifestDesc.digest, manifest, config, layers, bytesFetched };
  }

  /** Every layer at once (up to the pull's download slots); returns the bytes fetched. */
  private async fetchLayers(ref: Reference, creds: Credentials | undefined, layers: LayerRecord[], signal: AbortSignal, watchdog: Watchdog): Promise<number> {
    const slots = new Semaphore(this.deps.maxConcurrentDownloads);
    // One failed layer fails the pull: stop the others too, and wait until they have cleaned up,
    // or they would commit a blob and a snapshot after the failed pull's GC ran.
    const siblings = new AbortController();
    const layersSignal = AbortSignal.any([signal, siblings.signal]);
    const results = await Promise.allSettled(
      layers.map(async (layer, i) => {
        const parent = i === 0 ? undefined : layers[i - 1].chainID;
        const unwatch = this.watch(layer.chainID, watchdog);
        try {
          return await this.layers.run(layer.chainID, layersSignal, (layerSignal) =>
            slots.use(layerSignal, () => this.fetchLayerWithRetries(ref, creds, layer, parent, layerSignal)),
          );
        } catch (err) {
          siblings.abort(err);
          throw err;
        } finally {
          unwatch();
        }
      }),
    );
    throwIfAborted(signal);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return results.reduce((a, r) => a + (r.status === 'fulfilled' ? r.value : 0), 0);
  }

  private watch(chainID: string, watchdog: Watchdog): () => void {
    let set = this.watchers.get(chainID);
    if (!set) this.watchers.set(chainID, (set = new Set()));
    set.add(watchdog);
    return () => {
      set.delete(watchdog);
      if (set.size === 0 && this.watchers.get(chainID) === set) this.watchers.delete(chainID);
    };
  }

  private progress(chainID: string): void {
    for (const w of this.watchers.get(chainID) ?? []) w.progress();
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

  /** A download cut mid-body resumes from the bytes already kept, with backoff, a few times. */
  private async fetchLayerWithRetries(
    ref: Reference,
    creds: Credentials | undefined,
    layer: LayerRecord,
    parent: string | undefined,
    signal: AbortSignal,
  ): Promise<number> {
    let fetched = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return fetched + (await this.fetchLayer(ref, creds, layer, parent, signal, (n) => (fetched += n)));
      } catch (err) {
        if (!isSkiffError(err, 'SKIFF_DOWNLOAD_INTERRUPTED') || attempt >= this.deps.retries || signal.aborted) throw err;
        const delay = 250 * 2 ** attempt;
        log.info({ layer: layer.digest, attempt: attempt + 1, delayMs: delay, err: err.message }, 'layer download interrupted; resuming');
        await sleep(delay, undefined, { signal }).catch(() => throwIfAborted(signal));
      }
    }
  }

  /** Makes sure one layer's snapshot exists; returns the compressed bytes fetched for it. */
  private async fetchLayer(
    ref: Reference,
    creds: Credentials | undefined,
    layer: LayerRecord,
    parent: string | undefined,
    signal: AbortSignal,
    onPartial: (bytes: number) => void,
  ): Promise<number> {
    const { content, snapshots, registry } = this.deps;
    if (await snapshots.has(layer.chainID)) return 0;
    const prepared = await snapshots.prepare();
    let writer: BlobWriter | undefined;
    let remoteError: Error | undefined;
    let fetched = 0;
    try {
      writer = await content.openWriter(layer.digest, layer.size);
      let source: Readable;
      if (!writer) {
        source = content.createReadStream(layer.digest); // already here (or another layer just wrote it)
      } else {
        let remote = await registry.getBlob(ref, layer.digest, creds, signal, { offset: writer.offset });
        if (remote.offset !== writer.offset) {
          // The registry ignored our Range: start the blob over.
          await writer.abort();
          writer = await content.openWriter(layer.digest, layer.size, { resume: false });
          if (!writer) throw new SkiffError('SKIFF_INTERNAL', `layer ${layer.digest}: blob appeared while restarting its download`);
          if (remote.offset !== 0) {
            remote.stream.destroy();
            remote = await registry.getBlob(ref, layer.digest, creds, signal);
          }
        }
        if (writer.offset > 0) log.info({ layer: layer.digest, offset: writer.offset }, 'resuming layer download');
        remote.stream.once('error', (e: Error) => (remoteError ??= e));
        const counter = new Transform({
          transform: (chunk: Buffer, _enc, cb) => {
            fetched += chunk.length;
            this.progress(layer.chainID);
            cb(null, chunk);
          },
        });
        const net = new PassThrough();
        pipeline(remote.stream, counter, writer.tap(), net, () => undefined);
        source = writer.offset > 0 ? concat(writer.existing(), net) : net;
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
        throw new SkiffError('SKIFF_DIGEST_MISMATCH', `layer ${layer.digest}: uncompressed content has digest ${result.diffID}, config says ${layer.diffID}`);
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
      if (!signal.aborted && remoteError && !isSkiffError(remoteError, 'SKIFF_CANCELLED')) {
        // The registry's stream broke (reset, truncated body): not the layer's fault, and the
        // bytes received so far are good to resume from.
        error = new SkiffError(
          'SKIFF_DOWNLOAD_INTERRUPTED',
          `layer ${layer.digest}: download interrupted after ${fetched} bytes: ${errorMessage(remoteError)}`,
          { cause: remoteError },
        );
        onPartial(fetched);
      }
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
    if (!writer) return undefined;
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

  /** Writes the image record; runs under the store lock, so no GC pass or removal interleaves. */
  private async record(ref: Reference, f: Fetched): Promise<ImageRecord> {
    const { images } = this.deps;
    const id = f.manifest.config.digest;
    const repo = repository(ref);
    const tag = ref.tag ? `${repo}:${ref.tag}` : undefined;
    const repoDigest = `${repo}@${f.topDigest}`;
    const rec: ImageRecord = images.get(id) ?? {
      version: 1,
      id,
      repoTags: [],
      repoDigests: [],
      manifestDigest: f.manifestDigest,
      configDigest: id,
      size: f.manifest.config.size + f.layers.reduce((a, l) => a + l.size, 0),
      layers: f.layers,
      os: f.config.os,
      architecture: f.config.architecture,
      ...(f.config.variant ? { variant: f.config.variant } : {}),
      config: f.config.config ?? {},
      pinned: false,
      createdAt: new Date().toISOString(),
    };
    if (f.indexDigest) rec.indexDigest = f.indexDigest;
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
