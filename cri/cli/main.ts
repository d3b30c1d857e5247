#!/usr/bin/env node
// The skiff CLI: crictl's command names and flags over the typed CRI client. main() takes argv and
// writers and returns the exit code, so tests run it in-process; the bottom of this file runs it
// when this module is the program.
import { realpathSync, readFileSync } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { logger, setLogLevel } from '../../common/log.js';
import { CriClient } from '../client/client.js';
import { parseGlobalArgs, usageError, type SplitArgs } from './args.js';
import { sendRpc, type Command, type CommandContext } from './command.js';
import { commandHelp, mainHelp } from './help.js';
import { failure } from './output.js';
import { NO_TERMINAL, processTerminal, type Terminal } from './terminal.js';
import { versionCommand } from './commands/version.js';
import { infoCommand } from './commands/info.js';
import { pullCommand } from './commands/pull.js';
import { imagesCommand } from './commands/images.js';
import { inspectiCommand } from './commands/inspecti.js';
import { rmiCommand } from './commands/rmi.js';
import { imagefsinfoCommand } from './commands/imagefsinfo.js';
import { runpCommand } from './commands/runp.js';
import { stoppCommand } from './commands/stopp.js';
import { rmpCommand } from './commands/rmp.js';
import { podsCommand } from './commands/pods.js';
import { inspectpCommand } from './commands/inspectp.js';
import { createCommand } from './commands/create.js';
import { startCommand } from './commands/start.js';
import { stopCommand } from './commands/stop.js';
import { rmCommand } from './commands/rm.js';
import { psCommand } from './commands/ps.js';
import { inspectCommand } from './commands/inspect.js';
import { logsCommand } from './commands/logs.js';
import { execCommand, ExitStatus } from './commands/exec.js';
import { attachCommand } from './commands/attach.js';
import { portForwardCommand } from './commands/port-forward.js';
import { statsCommand } from './commands/stats.js';
import { statspCommand } from './commands/statsp.js';
import { updateCommand } from './commands/update.js';

export const COMMANDS: readonly Command[] = [
  versionCommand,
  infoCommand,
  pullCommand,
  imagesCommand,
  inspectiCommand,
  rmiCommand,
  imagefsinfoCommand,
  runpCommand,
  stoppCommand,
  rmpCommand,
  podsCommand,
  inspectpCommand,
  createCommand,
  startCommand,
  stopCommand,
  rmCommand,
  psCommand,
  inspectCommand,
  logsCommand,
  execCommand,
  attachCommand,
  portForwardCommand,
  statsCommand,
  statspCommand,
  updateCommand,
];

/** Where output goes: text from most commands, bytes from a remote command (exec, attach). */
export interface Writer {
  write(chunk: string | Uint8Array): unknown;
}

export interface CliIo {
  stdout: Writer;
  stderr: Writer;
  env: Record<string, string | undefined>;
  /** What exec -i and attach -i send. Default: process.stdin, opened only then. */
  stdin: Readable;
  /** The terminal behind stdin, for -t. Default: the process's, or none when `stdin` is given. */
  terminal: Terminal;
  /** Ends commands that run until interrupted (port-forward). Default: SIGINT or SIGTERM. */
  interrupt: AbortSignal;
}

/**
 * Runs one skiff command line (without the program name) and returns the exit code: 0, 1 or 2
 * (usage), or the exit code of the command that `exec` ran.
 */
export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  let client: CriClient | undefined;
  let stopSignals: (() => void) | undefined;
  try {
    const split = parseGlobalArgs(argv, env);
    const { global } = split;
    if (global.debug) setLogLevel('debug');
    if (global.version) {
      stdout.write(`skiff version ${packageVersion()}\n`);
      return 0;
    }
    const command = resolveCommand(split, stdout);
    if (!command) return 0;

    const log = logger('cli');
    const ctx: CommandContext = {
      global,
      env,
      log,
      out: (text) => void stdout.write(text),
      err: (text) => void stderr.write(text),
      stdoutStream: () => byteStream(stdout),
      stderrStream: () => byteStream(stderr),
      stdin: () => io.stdin ?? process.stdin,
      terminal: () => io.terminal ?? (io.stdin ? NO_TERMINAL : processTerminal()),
      interrupt: () => {
        if (io.interrupt) return io.interrupt;
        const signals = onSignals();
        stopSignals = signals.stop;
        return signals.signal;
      },
      client: () => (client ??= new CriClient({ runtimeEndpoint: global.runtimeEndpoint, imageEndpoint: global.imageEndpoint })),
      callOptions: () => ({ timeoutMs: global.timeoutMs }),
      rpc: (name, request, send) => sendRpc(log, name, request, send),
    };
    await command.execute(ctx, split.rest, commandHelp);
    return 0;
  } catch (err) {
    if (err instanceof ExitStatus) return err.exitCode;
    const { message, exitCode } = failure(err);
    stderr.write(`${message}\n`);
    if (exitCode === 2) stderr.write("Run 'skiff --help' for usage.\n");
    return exitCode;
  } finally {
    stopSignals?.();
    client?.close();
  }
}

/** A writer as a stream: process.stdout and friends as they are, a test's writer wrapped. */
function byteStream(writer: Writer): Writable {
  if (writer instanceof Writable) return writer;
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      writer.write(chunk);
      done();
    },
  });
}

/** An AbortSignal for SIGINT and SIGTERM, and the way to stop listening for them. */
function onSignals(): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  return {
    signal: controller.signal,
    stop: () => {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    },
  };
}

/** The command to run, or undefined when help was printed instead. */
function resolveCommand(split: SplitArgs, stdout: Writer): Command | undefined {
  const { command: name, rest, global } = split;
  if (global.help || name === undefined) {
    stdout.write(mainHelp(COMMANDS));
    return undefined;
  }
  if (name === 'help' || name === 'h') {
    const topic = rest[0];
    if (topic === undefined) stdout.write(mainHelp(COMMANDS));
    else stdout.write(commandHelp(findCommand(topic)));
    return undefined;
  }
  return findCommand(name);
}

function findCommand(name: string): Command {
  const command = COMMANDS.find((c) => c.name === name || c.aliases.includes(name));
  if (!command) throw usageError(`unknown command "${name}"`);
  return command;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

// npm links the bin through a symlink, so compare real paths to know whether this is the program.
function isProgram(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isProgram()) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
