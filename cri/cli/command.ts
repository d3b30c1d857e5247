// What a skiff CLI command is and what it is given: parsed flags, a lazily connected CriClient,
// writers for stdout/stderr (and stdin, the terminal and interrupts for the streaming commands),
// and `rpc()`, which names the rpc in failures and logs the exchange under -D. Commands never
// touch process.* so that main() can run them in tests.
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { CallOptions, CriClient } from '../client/client.js';
import { isServiceError, RpcFailure } from './output.js';
import { parseCommandArgs, type GlobalOptions, type OptionSpecs, type OptionValues } from './args.js';
import type { Terminal } from './terminal.js';

export interface CommandContext {
  readonly global: GlobalOptions;
  readonly env: Record<string, string | undefined>;
  readonly log: Logger;
  /** Writes to stdout as is (add the newline yourself). */
  out(text: string): void;
  /** Writes to stderr as is. */
  err(text: string): void;
  /** stdout and stderr as byte streams with backpressure, for a remote command's output. */
  stdoutStream(): Writable;
  stderrStream(): Writable;
  /** Our stdin, for commands that send it on (exec -i, attach -i); opened on first use. */
  stdin(): Readable;
  /** The terminal behind stdin (exec -t, attach -t). */
  terminal(): Terminal;
  /** Aborts on SIGINT or SIGTERM: for commands that run until interrupted (port-forward). */
  interrupt(): AbortSignal;
  /** The client, connected on first use. */
  client(): CriClient;
  /** Options of an ordinary rpc: the global --timeout as deadline. */
  callOptions(): CallOptions;
  /** Sends one rpc; a gRPC failure becomes an RpcFailure that names it. */
  rpc<T>(name: string, request: unknown, send: () => Promise<T>): Promise<T>;
}

export interface CommandSpec<O extends OptionSpecs> {
  name: string;
  aliases?: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** The positional arguments as help shows them, e.g. `IMAGE [IMAGE...]`. */
  args?: string;
  options: O;
  run(ctx: CommandContext, values: OptionValues<O>, positionals: string[]): Promise<void>;
}

/** A command with its flag types erased, as the dispatcher holds it. */
export interface Command {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly summary: string;
  readonly args: string;
  readonly options: OptionSpecs;
  /** Parses `args` (everything after the command name) and runs; `--help` only prints help. */
  execute(ctx: CommandContext, args: readonly string[], help: (command: Command) => string): Promise<void>;
}

export function defineCommand<O extends OptionSpecs>(spec: CommandSpec<O>): Command {
  return {
    name: spec.name,
    aliases: spec.aliases ?? [],
    summary: spec.summary,
    args: spec.args ?? '',
    options: spec.options,
    async execute(ctx, args, help) {
      const { values, positionals } = parseCommandArgs(spec.options, args);
      if (values.help) {
        ctx.out(help(this));
        return;
      }
      await spec.run(ctx, values, positionals);
    },
  };
}

/** Implements CommandContext.rpc: debug logging of both directions, and failures tagged by rpc. */
export async function sendRpc<T>(log: Logger, name: string, request: unknown, send: () => Promise<T>): Promise<T> {
  log.debug({ rpc: name, request: redact(request) }, `${name}Request`);
  try {
    const response = await send();
    log.debug({ rpc: name, response }, `${name}Response`);
    return response;
  } catch (err) {
    if (isServiceError(err)) throw new RpcFailure(name, err);
    throw err;
  }
}

// Registry credentials must not reach a debug log that people paste into bug reports.
function redact(request: unknown): unknown {
  if (typeof request !== 'object' || request === null || !('auth' in request) || !request.auth) return request;
  return { ...request, auth: '<redacted>' };
}
