// What an OCI runtime handler and this kernel can do for the security features kubelet asks about
// in Status (CRI RuntimeHandlerFeatures): recursive read-only mounts and user namespaces. Learnt
// once per handler: `runc features` lists its mount options (runtime-spec features.md); crun 1.8
// has no `features` command, and supports "rro" from 1.8 on (checked with crun 1.8.1), so its
// version decides. What the runtime cannot do, skiff does itself where the kernel can (rro-mounts.ts).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { promisify } from 'node:util';
import { logger } from '../../common/log.js';

const log = logger('runtime');
const run = promisify(execFile);

export interface RuntimeBinary {
  kind: 'crun' | 'runc';
  /** Path of the runtime binary. */
  binary: string;
}

export interface HandlerFeatures {
  /** The runtime takes the "rro" bind option itself (else skiff stages the mount, see rro-mounts.ts). */
  runtimeRro: boolean;
  /** Recursive read-only mounts work: by the runtime, or by skiff's staging with mount_setattr. */
  recursiveReadOnlyMounts: boolean;
  /** Pod user namespaces work: skiff-ns makes them, skiff idmaps the rootfs layers and volumes. */
  userNamespaces: boolean;
}

const cache = new Map<string, Promise<HandlerFeatures>>();

/** Kernel release as [major, minor]. */
export function kernelVersion(rel = release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

const atLeast = (v: [number, number], major: number, minor: number): boolean => v[0] > major || (v[0] === major && v[1] >= minor);

/** mount_setattr(2) came in 5.12; idmapped lower layers of overlayfs in 5.19. */
export function kernelFeatures(rel = release(), maxUserNamespaces = readMaxUserNamespaces()): { mountSetattr: boolean; idmappedOverlayLayers: boolean; userNamespaces: boolean } {
  const v = kernelVersion(rel);
  return { mountSetattr: atLeast(v, 5, 12), idmappedOverlayLayers: atLeast(v, 5, 19), userNamespaces: maxUserNamespaces > 0 };
}

function readMaxUserNamespaces(): number {
  try {
    return Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim());
  } catch {
    return 0;
  }
}

/** crun's version line ("crun version 1.8.1") as [major, minor]. */
export function crunVersion(out: string): [number, number] {
  const m = /crun version (\d+)\.(\d+)/.exec(out);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Whether the runtime accepts "rro" itself. A runtime that cannot be asked is taken not to. */
async function runtimeSupportsRro(rt: RuntimeBinary): Promise<boolean> {
  try {
    if (rt.kind === 'runc') {
      const { stdout } = await run(rt.binary, ['features'], { timeout: 5000 });
      const f = JSON.parse(stdout) as { mountOptions?: string[] };
      return f.mountOptions?.includes('rro') ?? false;
    }
    const { stdout } = await run(rt.binary, ['--version'], { timeout: 5000 });
    return atLeast(crunVersion(stdout), 1, 8);
  } catch (err) {
    log.warn({ runtime: rt.binary, err }, 'cannot tell whether the runtime supports rro; skiff stages rro mounts itself');
    return false;
  }
}

/** The features of one handler's runtime on this kernel, asked once. */
export function handlerFeatures(rt: RuntimeBinary): Promise<HandlerFeatures> {
  let p = cache.get(rt.binary);
  if (!p) {
    p = (async () => {
      const k = kernelFeatures();
      const runtimeRro = await runtimeSupportsRro(rt);
      return {
        runtimeRro,
        recursiveReadOnlyMounts: runtimeRro || k.mountSetattr,
        userNamespaces: k.userNamespaces && k.idmappedOverlayLayers,
      };
    })();
    cache.set(rt.binary, p);
  }
  return p;
}
