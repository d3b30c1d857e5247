// Recursive read-only bind mounts for a runtime that lacks the "rro" option (runc < 1.1, other
// runtimes): skiff makes them itself. Each such mount becomes a private copy of the host tree under
// <bundle>/rro/<n>, made read-only on every submount with mount_setattr(MOUNT_ATTR_RDONLY,
// AT_RECURSIVE) before it is attached, and handed to the runtime as an ordinary "rbind,ro" source:
// an rbind copies each submount with its own read-only flag. The copies go when the container is
// removed, rolled back, or found orphaned by recovery — always before its bundle is deleted.
import { join } from 'node:path';
import type { Spec } from './spec/index.js';
import { stageMounts, unstageMounts, type Staging } from './staged-mounts.js';

const STAGING = 'rro';

/** Where a bundle's staged rro mounts live. */
export const rroStagingDir = (bundle: string): string => join(bundle, STAGING);

const RRO: Staging = {
  dir: STAGING,
  what: 'recursive read-only mount',
  select: (m) => m.options?.includes('rro') === true,
  clone: { recursive: true, readOnly: true },
  rewrite: (m) => {
    m.options = m.options?.map((o) => (o === 'rro' ? 'ro' : o));
  },
};

/**
 * Replaces each "rro" bind in `spec` by a staged recursive read-only copy of its source ("ro"
 * from then on). Returns the staging paths made; on failure unstages what it made and throws.
 */
export function stageRecursiveReadOnly(spec: Spec, bundle: string): string[] {
  return stageMounts(spec, bundle, RRO);
}

/** Detaches every staged rro copy of a bundle. Idempotent; throws when one cannot be unmounted. */
export function unstageRecursiveReadOnly(bundle: string): void {
  unstageMounts(bundle, STAGING);
}
