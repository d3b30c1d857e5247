// Recursive read-only bind mounts for a runtime that lacks the "rro" option (runc < 1.1, other
// runtimes): skiff makes them itself. Each such mount becomes a private copy of the host tree under
// <bundle>/rro/<n>, made read-only on every submount with mount_setattr(MOUNT_ATTR_RDONLY,
// AT_RECURSIVE) before it is attached, and handed to the runtime as an ordinary "rbind,ro" source:
// an rbind copies each submount with its own read-only flag. The copies go when the container is
// removed, rolled back, or found orphaned by recovery — always before its bundle is deleted.
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkiffError } from '../common/errors.js';
import { cloneMount } from '../native/mount-api.js';
import { unmount } from '../native/sys.js';
import type { Spec } from './spec/index.js';

const STAGING = 'rro';

/** Where a bundle's staged rro mounts live. */
export const rroStagingDir = (bundle: string): string => join(bundle, STAGING);

/**
 * Replaces each "rro" bind in `spec` by a staged recursive read-only copy of its source ("ro"
 * from then on). Returns the staging paths made; on failure unstages what it made and throws.
 */
export function stageRecursiveReadOnly(spec: Spec, bundle: string): string[] {
  const made: string[] = [];
  try {
    spec.mounts.forEach((m, i) => {
      if (m.type !== 'bind' || !m.options?.includes('rro') || !m.source) return;
      const dir = rroStagingDir(bundle);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const target = join(dir, String(i));
      // A bind mount's target must be of the source's kind: a file for a file.
      if (statSync(m.source).isDirectory()) mkdirSync(target, { mode: 0o755 });
      else writeFileSync(target, '', { mode: 0o444 });
      try {
        cloneMount(m.source, target, { recursive: true, readOnly: true });
      } catch (err) {
        rmSync(target, { recursive: true, force: true }); // an empty dir or file: the clone never attached
        throw new SkiffError('SKIFF_RUNTIME_FAILED', `recursive read-only mount of "${m.source}" at "${m.destination}": ${(err as Error).message}`, { cause: err });
      }
      made.push(target);
      m.source = target;
      m.options = m.options.map((o) => (o === 'rro' ? 'ro' : o));
    });
    return made;
  } catch (err) {
    unstageRecursiveReadOnly(bundle);
    throw err;
  }
}

/**
 * Detaches every staged copy of a bundle (each with its submounts) and removes the staging dir.
 * Idempotent; throws when a copy cannot be unmounted, so that the caller never deletes through it.
 */
export function unstageRecursiveReadOnly(bundle: string): void {
  const dir = rroStagingDir(bundle);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) unmount(join(dir, e));
  // Nothing is mounted there any more: only empty dirs and placeholder files are left.
  rmSync(dir, { recursive: true, force: true });
}
