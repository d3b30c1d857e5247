// The two limits on a pull: a progress watchdog (containerd's image_pull_progress_timeout: a pull
// receiving no byte for that long is cancelled) and download slots (max_concurrent_downloads,
// per pull as in containerd, so one stalled pull cannot hold up every other).
import { SkiffError } from '../common/errors.js';
import { abortReason } from './shared-task.js';

export class Watchdog {
  private readonly controller = new AbortController();
  private last = Date.now();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, name: string) {
    if (timeoutMs > 0) {
      this.timer = setInterval(
        () => {
          if (Date.now() - this.last > timeoutMs) {
            this.controller.abort(
              new SkiffError('SKIFF_PULL_STALLED', `pull ${name}: no progress for ${Math.round(timeoutMs / 1000)}s, cancelled`),
            );
            this.stop();
          }
        },
        Math.min(1000, Math.max(50, timeoutMs / 4)),
      );
      this.timer.unref();
    }
  }

  /** Fires with SKIFF_PULL_STALLED when no progress was reported for the timeout. */
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

export class Semaphore {
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
