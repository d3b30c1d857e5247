// The world every pod e2e file starts from: a registry with a busybox image, a skiffd that has
// pulled it, a temp dir for logs, and a cgroup parent of the test's own; and its teardown (the
// daemon removes what pods remain, then the test removes its cgroup parent and dirs).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDaemon } from './daemon.js';
import { busyboxLayer } from './layer.js';
import { pushImage } from './push.js';
import { startRegistry, type TestRegistry } from './registry.js';

export interface PodWorld {
  reg: TestRegistry;
  d: TestDaemon;
  /** The busybox image, pulled. */
  image: string;
  /** A temp dir the test may use (pod log directories live under it). */
  dir: string;
  /** A cgroup parent of this test only (`/skiff-e2e-<random>`). */
  cgroupParent: string;
  close(): Promise<void>;
}

/** `toml(reg, dir)` adds daemon config (after the registry's insecure entry). */
export async function startPodWorld(opts: { toml?: (dir: string) => Promise<string> | string } = {}): Promise<PodWorld> {
  const reg = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), 'skiff-e2e-pods-'));
  const cgroupParent = `/skiff-e2e-${randomBytes(4).toString('hex')}`;
  let d: TestDaemon | undefined;
  const close = async (): Promise<void> => {
    await d?.cleanup(); // removes the pods left behind first
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
    // The pods' own cgroups went with the pods; the parent the test chose is the test's to remove.
    for (const ctl of await readdir('/sys/fs/cgroup')) {
      await rmdir(join('/sys/fs/cgroup', ctl, cgroupParent)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') throw e;
      });
    }
  };
  try {
    const image = (await pushImage(reg, 'busybox', '1', { layers: [await busyboxLayer('gzip')], format: 'docker' })).ref;
    const extra = opts.toml ? await opts.toml(dir) : '';
    d = await TestDaemon.start({ toml: `${extra}\n[registry]\ninsecure = ["${reg.host}"]\n` });
    await d.client.pullImage({ image: { image } });
    return { reg, d, image, dir, cgroupParent, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A live process (a zombie is dead: it only waits for its parent to reap it). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
