// Garbage collection of content and snapshots: whatever no image record names and no pull in
// progress holds a lease on is removed. Runs after RemoveImage (on that image's content), after a
// failed pull (on what it touched), and at startup (everything; ingests older than a day go too).
import { logger } from '../common/log.js';
import type { ContentStore } from './content/store.js';
import type { ImageStore } from './image-store.js';
import type { SnapshotStore } from './snapshots/store.js';

const log = logger('gc');

export interface LeasedSet {
  blobs: Set<string>;
  snapshots: Set<string>;
}

/**
 * What pulls in progress are using; GC leaves it alone. A pull names what it is about to use
 * with `Lease.add` *before* it checks whether that exists; additions wait while a GC pass runs,
 * so a pass can never delete something between a pull's existence check and its use
 * (containerd's GC lock, for the same race).
 */
export class Leases {
  private readonly held = new Set<LeasedSet>();
  private sweeping: Promise<unknown> = Promise.resolve();

  acquire(set: LeasedSet): Lease {
    this.held.add(set);
    return {
      add: async (more) => {
        await this.sweeping;
        for (const b of more.blobs ?? []) set.blobs.add(b);
        for (const c of more.snapshots ?? []) set.snapshots.add(c);
      },
      release: () => {
        this.held.delete(set);
      },
    };
  }

  /** Runs one GC pass; passes never overlap, and lease additions wait for the running one. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.sweeping.then(fn, fn);
    this.sweeping = run.catch(() => undefined);
    return run;
  }

  holdsBlob(digest: string): boolean {
    for (const s of this.held) if (s.blobs.has(digest)) return true;
    return false;
  }

  holdsSnapshot(chainID: string): boolean {
    for (const s of this.held) if (s.snapshots.has(chainID)) return true;
    return false;
  }

  get active(): boolean {
    return this.held.size > 0;
  }
}

export interface Lease {
  /** Adds to what this lease protects, once no GC pass is running. */
  add(more: { blobs?: Iterable<string>; snapshots?: Iterable<string> }): Promise<void>;
  release(): void;
}

export interface GcResult {
  blobs: number;
  snapshots: number;
  ingests: number;
}

export interface GcStores {
  content: ContentStore;
  snapshots: SnapshotStore;
  images: ImageStore;
  leases: Leases;
  /** Snapshots mounted by containers (chainIDs): kept even when no image names them any more. */
  inUse?: () => Iterable<string>;
}

function referenced(images: ImageStore, inUse: Iterable<string> = []): LeasedSet {
  const blobs = new Set<string>();
  const snapshots = new Set<string>(inUse);
  for (const img of images.list()) {
    blobs.add(img.configDigest);
    blobs.add(img.manifestDigest);
    if (img.indexDigest) blobs.add(img.indexDigest);
    for (const l of img.layers) {
      blobs.add(l.digest);
      snapshots.add(l.chainID);
    }
  }
  return { blobs, snapshots };
}

/**
 * Removes unreferenced blobs and snapshots. With `only`, looks just at those candidates (cheap,
 * after one pull or remove); without, sweeps everything. `ingests` also drops unleased ingests.
 */
export function collect(stores: GcStores, opts: { only?: LeasedSet; ingests?: boolean } = {}): Promise<GcResult> {
  return stores.leases.exclusive(() => sweep(stores, opts));
}

async function sweep(stores: GcStores, opts: { only?: LeasedSet; ingests?: boolean }): Promise<GcResult> {
  const { content, snapshots, images, leases } = stores;
  const refs = referenced(images, stores.inUse?.());
  const blobCandidates = opts.only ? [...opts.only.blobs] : await content.list();
  const snapCandidates = opts.only ? [...opts.only.snapshots] : await snapshots.list();
  const result: GcResult = { blobs: 0, snapshots: 0, ingests: 0 };
  for (const d of blobCandidates) {
    if (refs.blobs.has(d) || leases.holdsBlob(d)) continue;
    if ((await content.size(d)) === undefined) continue;
    await content.delete(d);
    result.blobs++;
  }
  for (const c of snapCandidates) {
    if (refs.snapshots.has(c) || leases.holdsSnapshot(c)) continue;
    if (!(await snapshots.has(c))) continue;
    await snapshots.remove(c);
    result.snapshots++;
  }
  if (opts.ingests || opts.only) {
    const ingests = opts.only ? [...opts.only.blobs] : await content.listIngests();
    for (const d of ingests) {
      if (leases.holdsBlob(d)) continue;
      await content.removeIngest(d);
      if (!opts.only) result.ingests++;
    }
  }
  if (result.blobs || result.snapshots || result.ingests) log.info(result, 'garbage collected');
  return result;
}
