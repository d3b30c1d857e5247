// Bytes and inodes a container's writable layer (its overlay upper dir) uses. A walk of the tree is
// the only way to know and may be long for a busy container, so each result is kept for TTL_MS and
// a stale one is answered at once while a new walk runs behind it (at most one walk per dir);
// only the very first ask of a dir waits for its walk. containerd likewise answers from its
// snapshotter's periodically refreshed usage cache (GetSnapshot), never walking in the request.
import { diskUsage, type Usage } from '../../images/fs-usage.js';
import { logger } from '../../common/log.js';

const log = logger('stats');
const TTL_MS = 5_000;

interface Entry {
  usage?: Usage;
  /** ms since the epoch of the walk's start. */
  atMs: number;
  walking?: Promise<Usage>;
}

export class WritableLayers {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly ttlMs = TTL_MS) {}

  /** Usage of `upperDir` and when it was measured (ms since the epoch). */
  async usage(upperDir: string): Promise<{ usage: Usage; atMs: number }> {
    const e = this.entries.get(upperDir);
    const now = Date.now();
    if (e?.usage && now - e.atMs < this.ttlMs) return { usage: e.usage, atMs: e.atMs };
    if (e?.usage) {
      this.refresh(upperDir, e, now).catch((err: unknown) => log.warn({ err, dir: upperDir }, 'writable layer usage walk failed'));
      return { usage: e.usage, atMs: e.atMs };
    }
    const fresh = e ?? { atMs: now };
    this.entries.set(upperDir, fresh);
    const usage = await this.refresh(upperDir, fresh, now);
    return { usage, atMs: fresh.atMs };
  }

  private refresh(dir: string, e: Entry, now: number): Promise<Usage> {
    e.walking ??= diskUsage(dir)
      .then((u) => {
        e.usage = u;
        e.atMs = now;
        return u;
      })
      .finally(() => {
        e.walking = undefined;
      });
    return e.walking;
  }

  /** Drops dirs not in `keep` (containers that were removed). */
  retain(keep: ReadonlySet<string>): void {
    for (const dir of this.entries.keys()) if (!keep.has(dir)) this.entries.delete(dir);
  }
}
