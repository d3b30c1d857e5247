// Coalesced work: callers asking for the same key while a task runs join it instead of starting
// another (concurrent pulls of one image become one download). Each caller keeps its own
// cancellation: a caller whose signal fires leaves at once, and the task itself is aborted only
// when every caller has left.
import { SkiffError } from '../common/errors.js';

/** How long a cancelled last caller waits for the task to wind down before it is answered. */
const CLEANUP_WAIT_MS = 30_000;
const noop = (): void => undefined;

interface Entry<T> {
  controller: AbortController;
  callers: number;
  promise: Promise<T>;
}

export class SharedTasks<T> {
  private readonly tasks = new Map<string, Entry<T>>();

  /** Number of tasks running now. */
  get size(): number {
    return this.tasks.size;
  }

  has(key: string): boolean {
    return this.tasks.has(key);
  }

  run(key: string, signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    let entry = this.tasks.get(key);
    if (!entry) {
      const controller = new AbortController();
      // Started on the next tick: a caller that leaves at once means the task never starts.
      const promise = Promise.resolve().then(() => {
        if (controller.signal.aborted) throw abortReason(controller.signal);
        return fn(controller.signal);
      });
      const created: Entry<T> = { controller, callers: 0, promise };
      created.promise
        .finally(() => {
          if (this.tasks.get(key) === created) this.tasks.delete(key);
        })
        .catch(() => undefined);
      this.tasks.set(key, created);
      entry = created;
    }
    const joined = entry;
    joined.callers++;
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = (): void => {
        if (left) return;
        left = true;
        signal.removeEventListener('abort', onAbort);
        joined.callers--;
      };
      const onAbort = (): void => {
        leave();
        const reason = abortReason(signal);
        if (joined.callers > 0) {
          reject(reason);
          return;
        }
        // Nobody waits any more: stop the work, and drop the key now so that a new caller
        // starts afresh instead of joining a task that is winding down. The last caller hears
        // back only once the task has cleaned up after itself (bounded, in case it cannot), so
        // an answer of CANCELLED or DEADLINE_EXCEEDED means nothing is left half-done.
        if (this.tasks.get(key) === joined) this.tasks.delete(key);
        joined.controller.abort(reason);
        const bound = new Promise<void>((r) => setTimeout(r, CLEANUP_WAIT_MS).unref());
        void Promise.race([joined.promise.then(noop, noop), bound]).then(() => reject(reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      joined.promise.then(
        (v) => {
          if (left) return; // this caller already left with its own reason
          leave();
          resolve(v);
        },
        (err: unknown) => {
          if (left) return;
          leave();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}

/** The error a cancelled caller gets: the signal's reason when it is ours, else CANCELLED. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof SkiffError) return r;
  if (r instanceof Error && r.name === 'TimeoutError') return new SkiffError('SKIFF_DEADLINE_EXCEEDED', 'deadline exceeded', { cause: r });
  return new SkiffError('SKIFF_CANCELLED', 'cancelled by the caller', { cause: r });
}

/** Throws the abort reason if the signal has fired. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortReason(signal);
}
