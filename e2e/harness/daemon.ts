// A real skiffd for e2e tests: its own temp root, state dir and socket, a config file written
// by the test, logs in a file, and a CriClient plus the `skiff` CLI pointed at its socket.
// With `privateResolver` the daemon runs in a private mount namespace whose /etc/resolv.conf names
// 127.0.0.1 and whose /etc/hosts is the test's: whatever the test makes skiffd look up never
// leaves the machine. Pod tests run it in the host's mount namespace, as in production, so that
// its mounts are the ones the test (and a restarted daemon) can see.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { removeBuiltinNetwork } from '../../network/service.js';
import { fileURLToPath } from 'node:url';
import { CriClient } from '../../cri/client/client.js';
import { spawnLogged, stopChild, tail, waitUntil } from './process.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const SKIFFD = join(REPO, 'dist', 'daemon', 'main.js');
export const SKIFF_CLI = join(REPO, 'dist', 'cri', 'cli', 'main.js');

export interface DaemonOptions {
  /** TOML appended after the socket/root/state lines (sections such as [registry]). */
  toml?: string;
  /** Resolve names only through a loopback resolver (for tests that look up unknown hosts). */
  privateResolver?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class TestDaemon {
  child: ChildProcess | undefined;
  readonly client: CriClient;

  private constructor(
    readonly dir: string,
    readonly opts: DaemonOptions,
  ) {
    this.client = new CriClient({ runtimeEndpoint: this.endpoint });
  }

  /** This daemon's bridge ("skt" + 6 hex) and pod subnet (a /24 in 10.240.0.0/12), unique per daemon. */
  readonly bridge = `skt${randomBytes(3).toString('hex')}`;
  readonly subnet = `10.${240 + randomInt(16)}.${randomInt(256)}.0/24`;

  get socket(): string {
    return join(this.dir, 'run', 'skiff.sock');
  }
  get root(): string {
    return join(this.dir, 'root');
  }
  get state(): string {
    return join(this.dir, 'run');
  }
  get endpoint(): string {
    return `unix://${this.socket}`;
  }
  get logFile(): string {
    return join(this.dir, 'skiffd.log');
  }
  get configFile(): string {
    return join(this.dir, 'skiff.toml');
  }

  static async start(opts: DaemonOptions = {}): Promise<TestDaemon> {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-e2e-'));
    // Traversable like /run/skiff: the root of a user-namespaced pod is an unprivileged host uid
    // that must reach its bundle (mkdtemp makes 0700).
    await chmod(dir, 0o711);
    const d = new TestDaemon(dir, opts);
    // Pods get a network of this daemon's own: its bridge, subnet, NAT table, and no CNI config
    // (unless the test writes its own [network]).
    const network = opts.toml?.includes('[network]')
      ? ''
      : ['[network]', 'mode = "builtin"', `bridge = "${d.bridge}"`, `subnets = ["${d.subnet}"]`, `cni_conf_dir = ${JSON.stringify(join(dir, 'cni'))}`].join('\n');
    // /metrics on a free port, never the default 9105 that a node's own skiffd may hold.
    const metrics = opts.toml?.includes('[metrics]') ? '' : '[metrics]\naddress = "127.0.0.1:0"';
    await writeFile(
      d.configFile,
      [`socket = ${JSON.stringify(d.socket)}`, `root = ${JSON.stringify(d.root)}`, `state = ${JSON.stringify(d.state)}`, 'log_level = "debug"', opts.toml ?? '', network, metrics].join(
        '\n',
      ) + '\n',
    );
    await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    await writeFile(join(dir, 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
    try {
      await d.launch();
    } catch (err) {
      await d.cleanup();
      throw err;
    }
    return d;
  }

  /** Starts (or restarts) the daemon process, with `extraEnv` this time only, and waits until it answers Version. */
  async launch(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
    const skiffd = [process.execPath, SKIFFD, '--config', this.configFile];
    const script = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"';
    const [cmd, ...args] = this.opts.privateResolver
      ? ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', join(this.dir, 'resolv.conf'), join(this.dir, 'hosts'), ...skiffd]
      : skiffd;
    this.child = await spawnLogged(cmd, args, this.logFile, { ...process.env, ...this.opts.env, ...extraEnv });
    const child = this.child;
    try {
      await waitUntil('skiffd', async () => (await this.client.version({}, { timeoutMs: 500 })).runtime_name === 'skiff', {
        timeoutMs: 20_000,
        child,
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- skiffd log ---\n${await tail(this.logFile, 40)}`);
    }
  }

  /** SIGTERM and wait: the clean shutdown path. Returns the exit code. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    await stopChild(child, 10_000);
    this.child = undefined;
    return child.exitCode;
  }

  /** SIGKILL: a crash, as far as skiffd can tell. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }

  /** Runs the real `skiff` CLI against this daemon. */
  cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [SKIFF_CLI, '--runtime-endpoint', this.endpoint, ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  async log(): Promise<string> {
    return tail(this.logFile, 10_000);
  }

  /** Stops the daemon and removes everything it had under its temp dir. */
  async cleanup(): Promise<void> {
    // Pods the test left (a failed assertion half-way) are removed through the daemon, so no
    // pause, monitor, mount, netns pin or cgroup outlives the test.
    if (this.child) {
      const pods = await this.client.listPodSandbox({}, { timeoutMs: 5000 }).catch(() => ({ items: [] }));
      for (const p of pods.items) await this.client.removePodSandbox({ pod_sandbox_id: p.id }, { timeoutMs: 30_000 }).catch(() => undefined);
    }
    this.client.close();
    await this.stop();
    // The harness's bridge, or the ones the test's own [network] named.
    const named = [...(this.opts.toml ?? '').matchAll(/^\s*bridge\s*=\s*"([^"]+)"/gm)].map((m) => m[1]);
    for (const bridge of named.length ? named : [this.bridge]) await removeBuiltinNetwork(bridge);
    await rm(this.dir, { recursive: true, force: true });
  }
}
