// Keeps scrapes cheap: the container sample is read at most once per `minIntervalMs`, scrapes that
// arrive while a read is under way wait for that read instead of starting their own, and a read
// that fails or takes longer than `timeoutMs` leaves the last good sample in place (flagged, as
// cAdvisor's container_scrape_error does) rather than failing or stalling the scrape.
import { errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import type { Sample, SampleSource } from './source.js';

const log = logger('metrics');

export interface SampleCacheOptions {
  /** A sample younger than this is served as it is (default 1000 ms). */
  minIntervalMs?: number;
  /** A read still running after this long is abandoned for this scrape (default 10 s). */
  timeoutMs?: number;
  /** Milliseconds on a monotonic clock (tests pass their own). */
  now?: () => number;
}

export interface CachedSample {
  sample: Sample;
  /** False when the last read failed or timed out: `sample` is older than it should be (or empty). */
  ok: boolean;
  /** The read this sample came from: a new object means new data. */
  generation: number;
}

const EMPTY: Sample = { containers: [], pods: [] };

export class SampleCache {
  private readonly minIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private current: CachedSample = { sample: EMPTY, ok: true, generation: 0 };
  /** When the last read started; -Infinity before the first. */
  private readAt = -Infinity;
  private inflight: Promise<CachedSample> | undefined;
  /** Reads made, for tests and the bench. */
  reads = 0;
  /** How long the last read took (seconds), failed or not. */
  lastReadSeconds = 0;

  constructor(
    private readonly source: SampleSource,
    opts: SampleCacheOptions = {},
  ) {
    this.minIntervalMs = opts.minIntervalMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
  }

  get(): Promise<CachedSample> {
    if (this.inflight) return this.inflight;
    if (this.now() - this.readAt < this.minIntervalMs) return Promise.resolve(this.current);
    this.readAt = this.now();
    this.inflight = this.read().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async read(): Promise<CachedSample> {
    this.reads++;
    const started = performance.now();
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`container sample took longer than ${this.timeoutMs} ms`);
        controller.abort(err);
        reject(err);
      }, this.timeoutMs);
    });
    try {
      const sample = await Promise.race([this.source.sample(controller.signal), timedOut]);
      this.current = { sample, ok: true, generation: this.current.generation + 1 };
    } catch (err) {
      if (this.current.ok) log.warn({ err: errorMessage(err) }, 'container sample failed; serving the last one');
      this.current = { ...this.current, ok: false };
    } finally {
      clearTimeout(timer);
      this.lastReadSeconds = (performance.now() - started) / 1000;
    }
    return this.current;
  }
}
