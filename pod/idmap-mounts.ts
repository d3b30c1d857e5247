// Idmapped volumes in a pod user namespace: a CRI mount with uid/gid mappings (the pod's own, the
// only ones accepted: see pod/spec/mounts.ts) becomes a private copy of the host tree idmapped with
// the pod's pinned user namespace (mount_setattr MOUNT_ATTR_IDMAP, submounts included), under
// <bundle>/idmap-mounts/<n>. The runtime binds the copy as it is and never sees the mappings. Through
// it the host's ids read as the pod's: a file of host root is the container root's, and what
// container root writes there is owned by host root, as with containerd's idmapped volumes.
import type { Spec } from './spec/index.js';
import { stageMounts, unstageMounts, type Staging } from './staged-mounts.js';

const STAGING = 'idmap-mounts';

/** Stages each bind of `spec` that carries mappings; returns the copies made. */
export function stageIdmappedMounts(spec: Spec, bundle: string, usernsPath: string): string[] {
  const idmap: Staging = {
    dir: STAGING,
    what: 'idmapped mount',
    select: (m) => (m.uidMappings?.length ?? 0) > 0 || (m.gidMappings?.length ?? 0) > 0,
    clone: { recursive: true, idmapUsernsPath: usernsPath },
    rewrite: (m) => {
      delete m.uidMappings;
      delete m.gidMappings;
    },
  };
  return stageMounts(spec, bundle, idmap);
}

/** Detaches every idmapped copy of a bundle. Idempotent; throws when one cannot be unmounted. */
export function unstageIdmappedMounts(bundle: string): void {
  unstageMounts(bundle, STAGING);
}
