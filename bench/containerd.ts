// The benchmark peer: Debian's containerd 1.6 in its own temp root/state/socket, driven with
// `ctr`, so skiffd's image pulls can be timed against containerd's on the same registry. The pods
// benchmark turns the CRI plugin on with its own plugin tables (bench/containerd-cri.ts).
import type { ChildProcess } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { run, spawnLogged, stopChild, tail, waitUntil } from '../e2e/harness/process.js';

const CONTAINERD_BIN = '/usr/bin/containerd';
const CTR_BIN = '/usr/bin/ctr';

export interface PullResult {
  /** Wall-clock time of `ctr images pull`, fetch and unpack included. */
  ms: number;
  /** The chainID containerd computed for the unpacked image (`--print-chainid`). */
  chainID?: string;
}

export interface ContainerdPeer {
  dir: string;
  /** The containerd process. */
  pid: number;
  /** containerd's stdout and stderr. */
  logFile: string;
  /** The grpc socket. */
  address: string;
  namespace: string;
  /** Pulls and unpacks `ref` into the overlayfs snapshotter, timing the whole command. */
  pull(ref: string, plainHttp?: boolean): Promise<PullResult>;
  /** Removes every image and lets GC drop their content and snapshots, so the next pull is cold. */
  removeAll(): Promise<void>;
  /** Runs any `ctr` subcommand against this instance; returns stdout. */
  ctr(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

// config.toml version 2. The CRI plugin is off unless `cri` tables are given: it wants cgroup
// and CNI setup the images bench does not need, which only exercises content, images, snapshots
// and the diff applier. Addresses of the debug and metrics servers stay empty so nothing listens
// on TCP.
function containerdConfig(dir: string, address: string, cri?: string): string {
  const q = (s: string) => JSON.stringify(s);
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
disabled_plugins = [${cri === undefined ? '\n  "io.containerd.grpc.v1.cri",' : ''}
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ${q(address)}

[ttrpc]
  address = ${q(address + '.ttrpc')}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  # Defaults to /opt/containerd, which is not ours to write.
  [plugins."io.containerd.internal.v1.opt"]
    path = ${q(join(dir, 'opt'))}
${cri ?? ''}`;
}

// ctr honours CONTAINERD_ADDRESS/NAMESPACE/SNAPSHOTTER; we pass those explicitly and keep
// stray values in the caller's environment out.
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONTAINERD_')));
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo). */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with spaces and the like octal-escaped.
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(dir + '/'));
  return points.sort((a, b) => b.length - a.length);
}

export interface ContainerdOptions {
  namespace?: string;
  startTimeoutMs?: number;
  /**
   * Turns the CRI plugin on: returns its `[plugins."io.containerd.grpc.v1.cri"…]` tables, given
   * the instance's temp dir (for paths that must stay inside it).
   */
  cri?: (dir: string) => string;
}

/** Starts containerd with a fresh temp root, state and socket; resolves once `ctr version` answers. */
export async function startContainerd(opts: ContainerdOptions = {}): Promise<ContainerdPeer> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-containerd-'));
  const address = join(dir, 'containerd.sock');
  const namespace = opts.namespace ?? 'k8s.io';
  const configFile = join(dir, 'config.toml');
  const logFile = join(dir, 'containerd.log');
  await writeFile(configFile, containerdConfig(dir, address, opts.cri?.(dir)));

  const ctr = async (args: string[]): Promise<string> => {
    const { stdout } = await runCtr(address, namespace, args);
    return stdout;
  };

  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child) await stopChild(child);
    for (const m of await mountsUnder(dir)) {
      // Lazy, so a busy mount still goes away once its last user does.
      await run('umount', ['-l', m]).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    child = await spawnLogged(CONTAINERD_BIN, ['--config', configFile], logFile, cleanEnv());
    const started = child;
    await waitUntil(
      'containerd',
      async () => {
        await access(address);
        await ctr(['version']);
        return true;
      },
      { timeoutMs: opts.startTimeoutMs ?? 20_000, child: started, intervalMs: 100 },
    );
  } catch (err) {
    const log = await tail(logFile);
    await cleanup();
    throw new Error(`${(err as Error).message}\n--- containerd.log (tail) ---\n${log}`, { cause: err });
  }

  let stopped: Promise<void> | undefined;
  return {
    dir,
    pid: child.pid!,
    logFile,
    address,
    namespace,
    ctr,
    async pull(ref: string, plainHttp = true): Promise<PullResult> {
      // ctr 1.6 unpacks after fetching by default ("Prepare the snapshot filesystem"); it has
      // no flag to turn that on, only the snapshotter to pick.
      const args = ['images', 'pull', '--snapshotter', 'overlayfs', '--print-chainid'];
      if (plainHttp) args.push('--plain-http');
      args.push(ref);
      const t0 = performance.now();
      const out = await ctr(args);
      const ms = performance.now() - t0;
      const chainID = /image chain ID: (sha256:[0-9a-f]{64})/.exec(out)?.[1];
      return chainID ? { ms, chainID } : { ms };
    },
    async removeAll(): Promise<void> {
      const refs = (await ctr(['images', 'ls', '-q'])).split('\n').filter(Boolean);
      // --sync waits for the garbage collector, which drops the now unreferenced content and
      // the snapshots only the images' configs referenced.
      if (refs.length > 0) await ctr(['images', 'rm', '--sync', ...refs]);
      const content = (await ctr(['content', 'ls', '-q'])).split('\n').filter(Boolean);
      const snapshots = (await ctr(['snapshots', '--snapshotter', 'overlayfs', 'ls'])).split('\n').slice(1).filter(Boolean);
      if (content.length > 0 || snapshots.length > 0) {
        throw new Error(`containerd still holds ${content.length} blobs and ${snapshots.length} snapshots after removeAll`);
      }
    },
    stop(): Promise<void> {
      stopped ??= cleanup();
      return stopped;
    },
  };
}

async function runCtr(address: string, namespace: string, args: string[]): Promise<{ stdout: string }> {
  const { stdout } = await run(CTR_BIN, ['--address', address, '--namespace', namespace, ...args], { env: cleanEnv() });
  return { stdout: stdout.toString('utf8') };
}
