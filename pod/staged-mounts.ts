// Bind mounts that skiff prepares itself before the runtime sees them: a private copy of the host
// tree (open_tree + mount_setattr + move_mount, see native/mount-api.ts), changed as a whole
// before it is attached — made recursively read-only (rro-mounts.ts) or idmapped with the pod's
// user namespace (idmap-mounts.ts) — under <bundle>/<kind>/<n>, and handed to the runtime as the
// bind's source. The copies go when the container is removed, rolled back, or found orphaned by
// recovery, always before its bundle is deleted (bundle-mounts.ts).
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkiffError } from '../common/errors.js';
import { cloneMount } from '../native/mount-api.js';
import { unmount } from '../native/sys.js';
import type { Spec } from './spec/index.js';

type SpecMount = Spec['mounts'][number];

export interface Staging {
  /** The dir under the bundle that holds this kind's copies. */
  readonly dir: string;
  /** What the copy is, for errors: "recursive read-only mount". */
  readonly what: string;
  /** Whether a bind of the spec gets a copy. */
  select(m: SpecMount): boolean;
  /** How the copy is made: submounts included, read-only, idmapped with this user namespace. */
  readonly clone: { recursive: boolean; readOnly?: boolean; idmapUsernsPath?: string };
  /** The bind's entry once its source is the copy. */
  rewrite(m: SpecMount): void;
}

/**
 * Replaces the source of each bind of `spec` that `s` selects by a staged copy. Returns the copies
 * made; on failure removes what it made and throws.
 */
export function stageMounts(spec: Spec, bundle: string, s: Staging): string[] {
  const made: string[] = [];
  try {
    spec.mounts.forEach((m, i) => {
      if (m.type !== 'bind' || !m.source || !s.select(m)) return;
      const dir = join(bundle, s.dir);
      mkdirSync(dir, { recursive: true, mode: 0o711 });
      const target = join(dir, String(i));
      // A bind mount's target must be of the source's kind: a file for a file.
      if (statSync(m.source).isDirectory()) mkdirSync(target, { mode: 0o755 });
      else writeFileSync(target, '', { mode: 0o444 });
      try {
        cloneMount(m.source, target, s.clone);
      } catch (err) {
        rmSync(target, { recursive: true, force: true }); // an empty dir or file: the clone never attached
        throw new SkiffError('SKIFF_RUNTIME_FAILED', `${s.what} of "${m.source}" at "${m.destination}": ${(err as Error).message}`, { cause: err });
      }
      made.push(target);
      m.source = target;
      s.rewrite(m);
    });
    return made;
  } catch (err) {
    unstageMounts(bundle, s.dir);
    throw err;
  }
}

/**
 * Detaches every staged copy under <bundle>/<dir> (each with its submounts) and removes the dir.
 * Idempotent; throws when a copy cannot be unmounted, so that the caller never deletes through it.
 */
export function unstageMounts(bundle: string, dir: string): void {
  const path = join(bundle, dir);
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch {
    return;
  }
  for (const e of entries) unmount(join(path, e));
  // Nothing is mounted there any more: only empty dirs and placeholder files are left.
  rmSync(path, { recursive: true, force: true });
}
