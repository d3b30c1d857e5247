// A rollback stack for multi-step operations (CRI-O's resourcecleaner): each step that made
// something registers how to undo it; on failure the undo steps run newest first, each one's
// failure logged and the rest still run.
import { logger } from '../common/log.js';

const log = logger('cleanup');

export class Cleanup {
  private readonly steps: { what: string; fn: () => Promise<void> | void }[] = [];

  add(what: string, fn: () => Promise<void> | void): void {
    this.steps.push({ what, fn });
  }

  /** Undoes everything registered, newest first. */
  async run(context: Record<string, unknown> = {}): Promise<void> {
    for (const { what, fn } of this.steps.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error({ ...context, step: what, err }, 'rollback step failed');
      }
    }
  }

  /** Forgets the steps: the operation succeeded. */
  done(): void {
    this.steps.length = 0;
  }
}
