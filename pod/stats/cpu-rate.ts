// usage_nano_cores: CPU time over wall time between two samples of a cumulative counter, kept per
// container or sandbox id as containerd keeps ContainerStats.Stats. The first sample of an id has
// no rate (left unset, as containerd and cAdvisor's CpuInst do; kubelet then computes its own).
// Several callers (kubelet, a Prometheus scrape, `skiff stats`) sample at their own pace, so a
// sample only becomes the new base once it is MIN_WINDOW_NS after the last one: a caller polling
// every 100 ms still gets a rate over at least a second, not over its own short interval.

const MIN_WINDOW_NS = 1_000_000_000n;
/** Bases untouched this long belong to ids that are gone (kubelet's defaultCachePeriod). */
const FORGET_NS = 10n * 60n * 1_000_000_000n;

interface Point {
  usageNs: bigint;
  atNs: bigint;
}

export class CpuRates {
  private readonly bases = new Map<string, { older?: Point; newer: Point; seenNs: bigint }>();

  /** The rate in nano-cores for a sample of `id` taken at `atNs`; undefined without a usable base. */
  rate(id: string, usageNs: bigint, atNs: bigint): number | undefined {
    const b = this.bases.get(id);
    if (!b) {
      this.bases.set(id, { newer: { usageNs, atNs }, seenNs: atNs });
      return undefined;
    }
    b.seenNs = atNs;
    // A counter that went backwards is a new cgroup under the same id (a restart): start over.
    if (usageNs < b.newer.usageNs) {
      this.bases.set(id, { newer: { usageNs, atNs }, seenNs: atNs });
      return undefined;
    }
    // The newest base at least MIN_WINDOW old, else the older one (a shorter window), else none.
    const base = atNs - b.newer.atNs >= MIN_WINDOW_NS ? b.newer : b.older ?? (atNs > b.newer.atNs ? b.newer : undefined);
    if (atNs - b.newer.atNs >= MIN_WINDOW_NS) {
      b.older = b.newer;
      b.newer = { usageNs, atNs };
    }
    if (!base || usageNs < base.usageNs || atNs <= base.atNs) return undefined;
    return Math.round((Number(usageNs - base.usageNs) / Number(atNs - base.atNs)) * 1e9);
  }

  /** Drops bases not sampled for ten minutes. */
  prune(nowNs: bigint): void {
    for (const [id, b] of this.bases) if (nowNs - b.seenNs > FORGET_NS) this.bases.delete(id);
  }

  forget(id: string): void {
    this.bases.delete(id);
  }
}
