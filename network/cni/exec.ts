// Running one CNI plugin (CNI spec "Section 2: Execution Protocol"): the executable named by the
// plugin's type, found in the bin dirs; parameters in CNI_* environment variables, the network
// configuration on stdin, the result or an error object on stdout, logs on stderr. Every run is
// bounded by a timeout: the plugin runs in its own process group, and the whole group (the plugin
// and the IPAM plugin it delegated to) is killed on expiry.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { SkiffError, errnoCode } from '../../common/errors.js';
import { logger } from '../../common/log.js';

const log = logger('cni');

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

/** A plugin failed: its own error message and details, verbatim, and which plugin it was. */
export class CniPluginError extends SkiffError {
  override name = 'CniPluginError';
  constructor(
    readonly network: string,
    readonly plugin: string,
    readonly command: CniCommand,
    /** The plugin's `msg` (or its stderr, when it printed no error object). */
    readonly cniMsg: string,
    /** The plugin's numeric error `code` (CNI spec "Error codes"), when it printed one. */
    readonly cniCode?: number,
    /** The plugin's `details`, when it printed any. */
    readonly cniDetails?: string,
    options?: { cause?: unknown },
  ) {
    // libcni's wording: `plugin type="bridge" failed (add): msg; details`
    super('SKIFF_CNI_FAILED', `CNI network "${network}": plugin ${plugin} failed (${command}): ${cniMsg}${cniDetails ? `; ${cniDetails}` : ''}`, options);
  }
}

/** Well-known error codes (CNI spec), for messages. */
export const CNI_ERROR_CODES: Readonly<Record<number, string>> = {
  1: 'incompatible CNI version',
  2: 'unsupported field in network configuration',
  3: 'container unknown or does not exist',
  4: 'invalid necessary environment variables',
  5: 'I/O failure',
  6: 'failed to decode content',
  7: 'invalid network config',
  11: 'try again later',
  50: 'plugin not available',
  51: 'plugin not available, and existing containers in the network may have limited connectivity',
};

export interface PluginRun {
  network: string;
  type: string;
  command: CniCommand;
  binDirs: readonly string[];
  /** CNI_* variables besides CNI_COMMAND and CNI_PATH. */
  env: Readonly<Record<string, string>>;
  stdin: string;
  timeoutMs: number;
}

/** The plugin executable: `type` in the first bin dir that has it as an executable file. */
export async function findPlugin(network: string, type: string, binDirs: readonly string[], command: CniCommand): Promise<string> {
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      await access(path, constants.X_OK);
      return path;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'EACCES' && errnoCode(err) !== 'ENOTDIR') throw err;
    }
  }
  throw new CniPluginError(network, type, command, `failed to find plugin "${type}" in path [${binDirs.join(' ')}]`);
}

/** The environment of a plugin: ours (plugins need PATH for iptables and such) without any CNI_* of ours. */
function pluginEnv(run: PluginRun): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CNI_')) env[k] = v;
  return { ...env, CNI_COMMAND: run.command, CNI_PATH: run.binDirs.join(':'), ...run.env };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const MAX_STDOUT = 4 << 20;
const MAX_STDERR = 64 << 10;

function spawnPlugin(path: string, run: PluginRun): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env: pluginEnv(run), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    let outLen = 0;
    let err = Buffer.alloc(0);
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < MAX_STDOUT) out.push(b.subarray(0, MAX_STDOUT - outLen));
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      err = Buffer.concat([err, b]);
      if (err.length > MAX_STDERR) err = err.subarray(err.length - MAX_STDERR); // keep the end
    });
    let timedOut = false;
    let drain: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already; the plugin itself may not be
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, run.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new CniPluginError(run.network, run.type, run.command, `cannot run ${path}: ${e.message}`, undefined, undefined, { cause: e }));
    });
    // A child the plugin left behind can keep our pipes open after the plugin exited: give the
    // output a bounded drain, then close our ends.
    child.once('exit', () => {
      clearTimeout(timer);
      drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 1000);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (drain) clearTimeout(drain);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err.toString('utf8'), timedOut });
    });
    child.stdin.on('error', () => undefined); // a plugin may exit without reading its stdin
    child.stdin.end(run.stdin);
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Runs the plugin; resolves to what it printed on stdout as a JSON object (undefined when it
 * printed nothing). A non-zero exit, a timeout or unreadable output rejects with CniPluginError.
 */
export async function execPlugin(run: PluginRun): Promise<Record<string, unknown> | undefined> {
  const path = await findPlugin(run.network, run.type, run.binDirs, run.command);
  const started = performance.now();
  const r = await spawnPlugin(path, run);
  const ms = Math.round(performance.now() - started);
  const stderr = r.stderr.trim();
  log.trace({ network: run.network, plugin: run.type, command: run.command, ms, code: r.code, ...(stderr ? { stderr } : {}) }, 'CNI plugin ran');
  if (r.timedOut) {
    throw new CniPluginError(run.network, run.type, run.command, `timed out after ${run.timeoutMs} ms and was killed`);
  }
  const stdout = r.stdout.trim();
  if (r.code !== 0) {
    // libcni's pluginErr: the error object on stdout, else stderr, else how it ended.
    let parsed: unknown;
    try {
      parsed = JSON.parse(stdout);
    } catch {
      parsed = undefined;
    }
    if (isObject(parsed) && typeof parsed.msg === 'string' && parsed.msg !== '') {
      const code = typeof parsed.code === 'number' ? parsed.code : undefined;
      const details = typeof parsed.details === 'string' && parsed.details !== '' ? parsed.details : undefined;
      throw new CniPluginError(run.network, run.type, run.command, parsed.msg, code, details);
    }
    const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
    const what = stderr || stdout;
    throw new CniPluginError(run.network, run.type, run.command, what ? `${how}: ${what}` : `${how} with no error message`);
  }
  if (stdout === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    throw new CniPluginError(run.network, run.type, run.command, `printed invalid JSON (${(err as Error).message}): ${stdout.slice(0, 200)}`);
  }
  if (!isObject(parsed)) throw new CniPluginError(run.network, run.type, run.command, `printed JSON that is not an object: ${stdout.slice(0, 200)}`);
  return parsed;
}
