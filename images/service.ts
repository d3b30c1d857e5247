// The image service: what skiff's CRI ImageService (and, later, container creation) asks of
// images/. It owns the stores under <root> and knows nothing of gRPC or CRI messages.
//
//   <root>/content/    blobs by digest, ingests
//   <root>/snapshots/  unpacked layers by chainID
//   <root>/images/     one record per image
import { join } from 'node:path';
import { SkiffError, isSkiffError } from '../common/errors.js';
import { logger } from '../common/log.js';
import { ContentStore } from './content/store.js';
import { diskUsage, type Usage } from './fs-usage.js';
import { Leases, collect, type GcResult } from './gc.js';
import { ImageStore, type ImageRecord } from './image-store.js';
import type { Platform } from './oci.js';
import { defaultPlatform } from './platform.js';
import { Puller, type PullEnd, type PullResult } from './pull.js';
import { formatReference, parseReference, repository, withDefaultTag, type Reference } from './reference.js';
import type { Credentials } from './registry/auth.js';
import { RegistryClient } from './registry/client.js';
import type { RegistryHostsConfig } from './registry/hosts.js';
import { SnapshotStore } from './snapshots/store.js';

const log = logger('images');

export interface ImageServiceOptions {
  root: string;
  hosts: RegistryHostsConfig;
  /** A pull that receives no byte for this long fails (0 = never). */
  progressTimeoutMs: number;
  maxConcurrentDownloads: number;
  platform?: Platform;
  registryRetries?: number;
  userAgent?: string;
  /** Sweep unreferenced content at open (default). The daemon defers it until pods have said which snapshots their containers use. */
  gcAtOpen?: boolean;
  /** Told of the end of each pull (the daemon feeds its metrics with it). */
  onPullEnd?: (end: PullEnd) => void;
}

export interface FsInfo {
  mountpoint: string;
  usedBytes: number;
  inodesUsed: number;
  timestamp: Date;
}

const INGEST_MAX_AGE_MS = 24 * 3600_000;
const FULL_ID = /^(sha256:)?[a-f0-9]{64}$/;
const ID_PREFIX = /^(sha256:)?[a-f0-9]{4,63}$/;

export class ImageService {
  readonly content: ContentStore;
  readonly snapshots: SnapshotStore;
  readonly images: ImageStore;
  private readonly leases = new Leases();
  private readonly puller: Puller;
  private usage: Usage | undefined;
  private usagePromise: Promise<Usage> | undefined;

  private constructor(readonly opts: ImageServiceOptions) {
    this.content = new ContentStore(join(opts.root, 'content'));
    this.snapshots = new SnapshotStore(join(opts.root, 'snapshots'));
    this.images = new ImageStore(join(opts.root, 'images'));
    const registry = new RegistryClient({
      hosts: opts.hosts,
      ...(opts.registryRetries !== undefined ? { retries: opts.registryRetries } : {}),
      ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    });
    this.puller = new Puller({
      registry,
      content: this.content,
      snapshots: this.snapshots,
      images: this.images,
      leases: this.leases,
      platform: opts.platform ?? defaultPlatform(),
      progressTimeoutMs: opts.progressTimeoutMs,
      maxConcurrentDownloads: opts.maxConcurrentDownloads,
      retries: opts.registryRetries ?? 3,
      collect: async (touched) => {
        await collect(this.stores(), { only: touched });
        this.usage = undefined;
      },
      ...(opts.onPullEnd ? { onPullEnd: opts.onPullEnd } : {}),
    });
  }

  /** Opens the stores and removes what a crash left half-done. */
  static async open(opts: ImageServiceOptions): Promise<ImageService> {
    const svc = new ImageService(opts);
    await svc.content.init();
    await svc.snapshots.init();
    await svc.images.load();
    const stale = await svc.snapshots.removeStalePreparations();
    if (stale) log.info({ count: stale }, 'removed unfinished snapshot preparations');
    // Ingests are kept for a day: a pull interrupted by a crash or a network failure resumes
    // from them; older ones are abandoned downloads.
    const expired = await svc.content.removeIngestsOlderThan(INGEST_MAX_AGE_MS);
    if (expired) log.info({ count: expired }, 'removed abandoned downloads');
    if (opts.gcAtOpen !== false) await svc.gc();
    return svc;
  }

  private snapshotUsers: () => Iterable<string> = () => [];

  /** Tells GC which snapshots containers have mounted (pod/ calls this once at start). */
  setSnapshotUsers(fn: () => Iterable<string>): void {
    this.snapshotUsers = fn;
  }

  private imageUsers: () => Iterable<{ imageId: string; user: string }> = () => [];

  /**
   * Tells RemoveImage which images are in use and by what (pod/ calls this once at start): such
   * an image is refused, not deleted (its tags may still go while it keeps one).
   */
  setImageUsers(fn: () => Iterable<{ imageId: string; user: string }>): void {
    this.imageUsers = fn;
  }

  private stores(): Parameters<typeof collect>[0] {
    return { content: this.content, snapshots: this.snapshots, images: this.images, leases: this.leases, inUse: () => this.snapshotUsers() };
  }

  async gc(opts: { ingests?: boolean } = {}): Promise<GcResult> {
    const r = await collect(this.stores(), opts);
    this.usage = undefined;
    return r;
  }

  /**
   * Pulls an image by reference. A reference with both a tag and a digest is pulled by digest and
   * the tag is not recorded (containerd's ParseDockerRef): the tag could name other content.
   */
  async pull(image: string, creds: Credentials | undefined, signal: AbortSignal): Promise<PullResult> {
    const parsed = parseReference(image);
    const ref: Reference = parsed.digest ? { domain: parsed.domain, path: parsed.path, digest: parsed.digest } : withDefaultTag(parsed);
    try {
      return await this.puller.pull(ref, creds, signal);
    } finally {
      this.usage = undefined;
    }
  }

  /**
   * Finds a local image by id (full or a unique prefix), by tag reference or by digest reference,
   * the way containerd's LocalResolve does. Unknown → undefined; malformed → SKIFF_IMAGE_REF_INVALID.
   */
  resolve(nameOrId: string): ImageRecord | undefined {
    const s = nameOrId.trim();
    if (!s) throw new SkiffError('SKIFF_IMAGE_REF_INVALID', 'image reference is empty');
    if (FULL_ID.test(s)) return this.images.get(s.startsWith('sha256:') ? s : 'sha256:' + s);
    let ref: Reference | undefined;
    try {
      ref = parseReference(s);
    } catch (err) {
      if (ID_PREFIX.test(s)) return this.uniquePrefix(s);
      throw err;
    }
    const found = this.byReference(ref);
    if (found) return found;
    return ID_PREFIX.test(s) ? this.uniquePrefix(s) : undefined;
  }

  private byReference(ref: Reference): ImageRecord | undefined {
    if (ref.digest) return this.images.byRepoDigest(`${repository(ref)}@${ref.digest}`);
    return this.images.byTag(formatReference(withDefaultTag(ref)));
  }

  private uniquePrefix(s: string): ImageRecord | undefined {
    const matches = this.images.byIdPrefix(s);
    return matches.length === 1 ? matches[0] : undefined;
  }

  /**
   * Lists images. A filter naming a repository without tag or digest lists every tag of it
   * (crictl `images busybox`); otherwise it names one image.
   */
  list(filter?: string): ImageRecord[] {
    const all = this.images.list();
    if (!filter) return all;
    let ref: Reference;
    try {
      ref = parseReference(filter);
    } catch {
      const r = this.resolve(filter);
      return r ? [r] : [];
    }
    if (!ref.tag && !ref.digest) {
      const repo = repository(ref);
      return all.filter((i) => i.repoTags.some((t) => t.startsWith(repo + ':')) || i.repoDigests.some((d) => d.startsWith(repo + '@')));
    }
    const r = this.resolve(filter);
    return r ? [r] : [];
  }

  /**
   * Removes an image name or the image. By id or by digest: the whole image. By tag: only that tag
   * while other tags remain (CRI-O's untag), the image with its last tag. Unknown: nothing to do
   * (RemoveImage is idempotent).
   */
  async remove(nameOrId: string): Promise<{ removed: boolean; deleted: boolean }> {
    // Under the store lock: a pull recording the same image cannot interleave with this change.
    const outcome = await this.leases.exclusive(() => this.untagOrDelete(nameOrId));
    if (outcome.deleted) {
      const rec = outcome.deleted;
      await collect(this.stores(), {
        only: { blobs: new Set([rec.configDigest, rec.manifestDigest, ...(rec.indexDigest ? [rec.indexDigest] : []), ...rec.layers.map((l) => l.digest)]), snapshots: new Set(rec.layers.map((l) => l.chainID)) },
      });
      this.usage = undefined;
    }
    return { removed: outcome.removed, deleted: outcome.deleted !== undefined };
  }

  private async untagOrDelete(nameOrId: string): Promise<{ removed: boolean; deleted?: ImageRecord }> {
    const rec = this.resolve(nameOrId);
    if (!rec) return { removed: false };
    // Trimmed as resolve() trims: untrimmed, " app:1" would not parse and would delete every tag.
    const name = nameOrId.trim();
    let ref: Reference | undefined;
    if (!FULL_ID.test(name)) {
      try {
        ref = parseReference(name);
      } catch (err) {
        if (!isSkiffError(err, 'SKIFF_IMAGE_REF_INVALID')) throw err;
      }
    }
    const tag = ref && !ref.digest ? formatReference(withDefaultTag(ref)) : undefined;
    if (ref && tag && rec.repoTags.includes(tag) && rec.repoTags.length > 1) {
      rec.repoTags = rec.repoTags.filter((t) => t !== tag);
      const repo = repository(ref);
      if (!rec.repoTags.some((t) => t.startsWith(repo + ':'))) {
        rec.repoDigests = rec.repoDigests.filter((d) => !d.startsWith(repo + '@'));
      }
      await this.images.put(rec);
      log.info({ image: rec.id, tag }, 'untagged image');
      return { removed: true };
    }
    const users = [...this.imageUsers()].filter((u) => u.imageId === rec.id).map((u) => u.user);
    if (users.length) throw new SkiffError('SKIFF_IMAGE_IN_USE', `image "${nameOrId.trim()}" (${rec.id}) is in use by ${users.join(', ')}`);
    await this.images.delete(rec.id);
    log.info({ image: rec.id, tags: rec.repoTags }, 'removed image');
    return { removed: true, deleted: rec };
  }

  /** Usage of the snapshot store, cached until the next pull or removal changes it. */
  async fsInfo(): Promise<FsInfo> {
    if (!this.usage) {
      this.usagePromise ??= diskUsage(this.snapshots.root).finally(() => {
        this.usagePromise = undefined;
      });
      this.usage = await this.usagePromise;
    }
    return { mountpoint: this.snapshots.root, usedBytes: this.usage.bytes, inodesUsed: this.usage.inodes, timestamp: new Date() };
  }

  /** The verbose ImageStatus info: what containerd reports under "info". */
  verboseInfo(rec: ImageRecord): Record<string, string> {
    const top = rec.layers.length ? rec.layers[rec.layers.length - 1].chainID : '';
    const imageSpec = {
      architecture: rec.architecture,
      os: rec.os,
      ...(rec.variant ? { variant: rec.variant } : {}),
      config: rec.config,
      rootfs: { type: 'layers', diff_ids: rec.layers.map((l) => l.diffID) },
    };
    return {
      info: JSON.stringify({
        id: rec.id,
        chainID: top,
        manifestDigest: rec.manifestDigest,
        ...(rec.indexDigest ? { indexDigest: rec.indexDigest } : {}),
        layers: rec.layers,
        imageSpec,
        createdAt: rec.createdAt,
      }),
    };
  }
}

/** uid or username from an image's USER (`1000`, `1000:1000`, `nobody`, `nobody:nogroup`). */
export function imageUser(user: string | undefined): { uid?: number; username?: string } {
  if (!user) return {};
  const name = user.split(':')[0];
  if (/^\d+$/.test(name)) return { uid: Number(name) };
  return name ? { username: name } : {};
}
