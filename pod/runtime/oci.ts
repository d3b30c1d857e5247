// The OCI runtime driver: runs crun or runc (`start`, `kill`, `delete`, `state`) for skiffd, and
// builds the `create` and `exec` command lines that the container's monitor runs (the monitor, not
// skiffd, is the parent of the container and of exec'd processes). A RuntimeClass handler maps to
// one of these.
// On cgroup v1 hybrid hosts crun runs through `skiff-ns runtime --hide-mount ...` (see hybrid.ts).
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SkiffError } from '../../common/errors.js';
import { logger } from '../../common/log.js';

const log = logger('runtime');

export type RuntimeKind = 'crun' | 'runc';

export interface RuntimeHandlerConfig {
  /** RuntimeClass handler name (`crun`, `runc`, or an operator's own). */
  name: string;
  kind: RuntimeKind;
  /** Path of the runtime binary. */
  binary: string;
  /** The runtime's own state dir (`--root`). */
  root: string;
  /**
   * Command line prefix `create` runs under (the hybrid-cgroup wrapper), or empty. crun 1.8 refuses
   * a hybrid host only where it sets up the cgroups of a new container; start, exec, kill, delete
   * and state work from the cgroup paths it recorded, and run without the wrapper's cost.
   */
  wrapper: string[];
}

export interface RunResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class OciRuntime {
  constructor(readonly handler: RuntimeHandlerConfig) {}

  /** The runtime command line: global flags, then `args`. */
  argv(args: string[], logFile?: string): string[] {
    const h = this.handler;
    const logFlags = logFile ? (h.kind === 'crun' ? [`--log=file:${logFile}`, '--log-format=json'] : ['--log', logFile, '--log-format', 'json']) : [];
    return [h.binary, '--root', h.root, ...logFlags, ...args];
  }

  /** The `create` command the monitor runs (under the wrapper); the runtime writes the container pid to pidFile. */
  createArgv(id: string, bundle: string, pidFile: string, opts: { consoleSocket?: string; logFile: string }): string[] {
    const create = ['create', '--bundle', bundle, '--pid-file', pidFile, ...(opts.consoleSocket ? ['--console-socket', opts.consoleSocket] : []), id];
    return [...this.handler.wrapper, ...this.argv(create, opts.logFile)];
  }

  async start(id: string): Promise<void> {
    await this.check(['start', id], `start container ${id}`);
  }

  /** Sends a signal to the container's init (all processes with `all`). */
  async kill(id: string, signal: string, opts: { all?: boolean } = {}): Promise<void> {
    await this.check(['kill', ...(opts.all ? ['--all'] : []), id, signal], `signal ${signal} to container ${id}`);
  }

  /** Deletes the runtime's container; a container the runtime does not know is already gone. */
  async delete(id: string, opts: { force?: boolean } = {}): Promise<void> {
    const r = await this.run(['delete', ...(opts.force ? ['--force'] : []), id]);
    if (r.code === 0) return;
    const msg = failure(r);
    if (/does not exist|not found|No such file or directory/i.test(msg)) return;
    throw new SkiffError('SKIFF_RUNTIME_FAILED', `${this.handler.name}: delete container ${id}: ${msg}`);
  }

  /** The runtime's view of a container, or undefined when it does not know it. */
  async state(id: string): Promise<{ status: string; pid: number } | undefined> {
    const r = await this.run(['state', id]);
    if (r.code !== 0) {
      const msg = failure(r);
      if (/does not exist|not found|No such file or directory/i.test(msg)) return undefined;
      throw new SkiffError('SKIFF_RUNTIME_FAILED', `${this.handler.name}: state of container ${id}: ${msg}`);
    }
    const s = JSON.parse(r.stdout.toString('utf8')) as { status?: string; pid?: number };
    return { status: s.status ?? 'unknown', pid: s.pid ?? 0 };
  }

  /**
   * `update --resources FILE ID`: applies the OCI LinuxResources in `resourcesFile` to the cgroup
   * of a created or running container. No wrapper is needed: crun and runc update the cgroup paths
   * they recorded at create, without looking at the host's cgroup layout again.
   */
  async update(id: string, resourcesFile: string): Promise<void> {
    await this.check(['update', '--resources', resourcesFile, id], `update resources of container ${id}`);
  }

  /**
   * When the runtime last changed its state dir of the container, in ns since the epoch: `start`
   * removes the exec fifo there (crun and runc both), so for a started container this is when it
   * was started. Undefined when the runtime has no such dir.
   */
  async stateChangedAt(id: string): Promise<bigint | undefined> {
    const st = await stat(join(this.handler.root, id), { bigint: true }).catch(() => undefined);
    return st?.mtimeNs;
  }

  /**
   * The `exec` command a container's monitor runs: `process.json` holds the process. With a
   * terminal the runtime sends the pty master to `consoleSocket`; runc accepts that only together
   * with --detach (the monitor then follows the exec'd process itself).
   */
  execArgv(id: string, processFile: string, pidFile: string, opts: { consoleSocket?: string } = {}): string[] {
    const tty = opts.consoleSocket ? [...(this.handler.kind === 'runc' ? ['--detach'] : []), '--console-socket', opts.consoleSocket] : [];
    return this.argv(['exec', ...tty, '--process', processFile, '--pid-file', pidFile, id]);
  }

  private async check(args: string[], what: string): Promise<void> {
    const r = await this.run(args);
    if (r.code !== 0) throw new SkiffError('SKIFF_RUNTIME_FAILED', `${this.handler.name}: ${what}: ${failure(r)}`);
  }

  /** Runs the runtime with `args`, collecting output; never rejects for a non-zero exit. */
  run(
    args: string[],
    opts: { stdin?: Buffer; maxOutput?: number; timeoutMs?: number; drainMs?: number; onTimeout?: () => Promise<void> } = {},
  ): Promise<RunResult> {
    const argv = this.argv(args);
    log.trace({ argv }, 'runtime');
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outLen = 0;
      let errLen = 0;
      const max = opts.maxOutput ?? 1 << 20;
      child.stdout.on('data', (b: Buffer) => {
        if (outLen < max) out.push(b.subarray(0, max - outLen));
        outLen += b.length;
      });
      child.stderr.on('data', (b: Buffer) => {
        if (errLen < max) err.push(b.subarray(0, max - errLen));
        errLen += b.length;
      });
      let timer: NodeJS.Timeout | undefined;
      let drain: NodeJS.Timeout | undefined;
      let exited = false;
      if (opts.timeoutMs && opts.timeoutMs > 0) {
        timer = setTimeout(() => {
          if (exited) return; // it finished in time; only its output is still draining
          void (opts.onTimeout ?? (async () => undefined))().finally(() => child.kill('SIGKILL'));
        }, opts.timeoutMs);
      }
      child.once('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(new SkiffError('SKIFF_RUNTIME_FAILED', `${this.handler.name}: cannot run ${argv[0]}: ${e.message}`, { cause: e }));
      });
      // A background child of the command can hold its stdout open long after it exited: give
      // the output a bounded drain after the exit (containerd's drain_exec_sync_io_timeout).
      child.once('exit', () => {
        exited = true;
        if (timer) clearTimeout(timer);
        drain = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, opts.drainMs ?? 1000);
      });
      child.once('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        if (drain) clearTimeout(drain);
        resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), code, signal });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.stdin ?? Buffer.alloc(0));
    });
  }
}

/** The runtime's own words about a failure: its stderr, JSON log lines reduced to their msg. */
export function failure(r: RunResult): string {
  const text = r.stderr.toString('utf8').trim();
  const lines = text
    .split('\n')
    .map((l) => {
      try {
        const j = JSON.parse(l) as { msg?: string };
        return j.msg ?? l;
      } catch {
        return l;
      }
    })
    .filter(Boolean);
  const msg = lines.join('; ');
  return msg || (r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`);
}
