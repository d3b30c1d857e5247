// The pods benchmark's peer: Debian's containerd 1.6 with its CRI plugin on, in its own temp
// root/state/socket (bench/containerd.ts), runc through the io.containerd.runc.v2 shim, cgroupfs,
// and a sandbox image the bench builds from skiff-pause and serves from the loopback registry.
// No CNI plugin is configured, so only host-network pods can run on it.
import { access, readdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CriClient } from '../cri/client/client.js';
import { buildLayer } from '../e2e/harness/layer.js';
import { pushImage } from '../e2e/harness/push.js';
import type { TestRegistry } from '../e2e/harness/registry.js';
import { tail, waitUntil } from '../e2e/harness/process.js';
import { startContainerd, type ContainerdPeer } from './containerd.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PAUSE_BINARY = join(REPO, 'native', 'build', 'skiff-pause');

// The runc v2 shim puts its ttrpc socket under this fixed directory whatever containerd's state
// dir is (containerd 1.6 runtime/v2/shim/util_unix.go, socketRoot).
const SHIM_SOCKET_ROOT = '/run/containerd';

export interface ContainerdCri {
  client: CriClient;
  peer: ContainerdPeer;
  /** Removes what is left, stops containerd and its shims; returns notes on anything it had to force. */
  stop(): Promise<string[]>;
}

/** Pushes a one-layer sandbox image whose only file is /pause (a copy of skiff-pause); returns its ref. */
export async function pushPauseImage(reg: TestRegistry): Promise<string> {
  const layer = await buildLayer([{ path: '/pause', type: 'file', content: await readFile(PAUSE_BINARY), mode: 0o755 }], 'gzip');
  const image = await pushImage(reg, 'bench/pause', '1', { layers: [layer], config: { Entrypoint: ['/pause'], Cmd: [] }, format: 'docker' });
  return image.ref;
}

// CRI plugin config, version 2 (containerd 1.6 docs/cri/config.md). The registry mirror entry is
// what makes containerd speak plain http to the loopback registry. The shim's runc state (`Root`)
// stays inside our temp dir instead of /run/containerd/runc. The streaming server binds a free
// port on loopback and is never used. `restrict_oom_score_adj`: root on this machine lacks
// CAP_SYS_RESOURCE, so the kernel refuses the -998 containerd gives pause ("failed to update
// /proc/self/oom_score_adj: Permission denied" from runc); the option, meant for such setups,
// clamps scores to containerd's own.
function criConfig(dir: string, reg: TestRegistry, pauseRef: string): string {
  const q = (s: string): string => JSON.stringify(s);
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `
[${cri}]
  sandbox_image = ${q(pauseRef)}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = true
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        BinaryName = "/usr/bin/runc"
        Root = ${q(join(dir, 'runc'))}
        SystemdCgroup = false
  [${cri}.cni]
    bin_dir = ${q(join(dir, 'cni', 'bin'))}
    conf_dir = ${q(join(dir, 'cni', 'net.d'))}
  [${cri}.registry.mirrors.${q(reg.host)}]
    endpoint = [${q(reg.url)}]
`;
}

/** The shims of this containerd: processes whose argv carries `-address <our socket>`. */
async function shimPids(address: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const at = argv.indexOf('-address');
    if (argv[0]?.endsWith('containerd-shim-runc-v2') && at >= 0 && argv[at + 1] === address) pids.push(Number(name));
  }
  return pids;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * Starts containerd with CRI and waits until its RuntimeService answers. Throws with the tail of
 * containerd's log when it does not come up.
 */
export async function startContainerdCri(reg: TestRegistry, pauseRef: string): Promise<ContainerdCri> {
  const hadShimRoot = await exists(SHIM_SOCKET_ROOT);
  const peer = await startContainerd({ cri: (dir) => criConfig(dir, reg, pauseRef) });
  const client = new CriClient({ runtimeEndpoint: `unix://${peer.address}` });

  const stop = async (): Promise<string[]> => {
    const notes: string[] = [];
    client.close();
    const shims = await shimPids(peer.address);
    await peer.stop();
    // Shims outlive containerd by design; ours should have exited with their last pod.
    for (const pid of shims) {
      if (!(await shimPids(peer.address)).includes(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        notes.push(`killed containerd shim ${pid}, still running after its pods were removed`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
    if (!hadShimRoot) {
      for (const dir of [join(SHIM_SOCKET_ROOT, 's'), SHIM_SOCKET_ROOT]) {
        await rmdir(dir).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') notes.push(`could not remove ${dir}: ${e.code}`);
        });
      }
    }
    return notes;
  };

  try {
    await waitUntil('containerd CRI', async () => (await client.version({}, { timeoutMs: 1000 })).runtime_name === 'containerd', {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
  } catch (err) {
    const log = await tail(peer.logFile, 20);
    await stop();
    throw new Error(`${(err as Error).message}\n--- containerd.log (tail) ---\n${log}`, { cause: err });
  }
  return { client, peer, stop };
}

/**
 * Runs `measure` against Debian's containerd CRI with the bench image `image` pulled: undefined,
 * with the reason in `notes`, when containerd is not installed or fails; what stopping it had to
 * force goes to `notes` too.
 */
export async function withContainerd<T>(reg: TestRegistry, image: string, notes: string[], measure: (client: CriClient) => Promise<T>): Promise<T | undefined> {
  try {
    await access('/usr/bin/containerd');
  } catch {
    notes.push('containerd: not installed (/usr/bin/containerd); comparison skipped');
    return undefined;
  }
  try {
    const ctr = await startContainerdCri(reg, await pushPauseImage(reg));
    try {
      await ctr.client.pullImage({ image: { image } });
      return await measure(ctr.client);
    } finally {
      notes.push(...(await ctr.stop()));
    }
  } catch (err) {
    notes.push(`containerd 1.6 CRI could not be measured: ${(err as Error).message}`);
    return undefined;
  }
}
