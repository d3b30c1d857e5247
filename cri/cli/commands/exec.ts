// `skiff exec -s`: ExecSync, printing the command's stdout and stderr to ours and exiting with its
// exit code. Flags end at the container id, as in crictl, so `exec -s ID ls -la` passes `-la` to
// ls. The interactive form (Exec and the streaming server) is not there yet: without -s the command
// says so and exits 2.
import { parseCommandArgs, usageError } from '../args.js';
import type { Command } from '../command.js';
import { parseSeconds } from './stop.js';

/** Thrown to end the CLI with this exit code and nothing more printed. */
export class ExitStatus extends Error {
  override name = 'ExitStatus';
  constructor(readonly exitCode: number) {
    super(`exit status ${exitCode}`);
  }
}

const OPTIONS = {
  sync: { type: 'boolean', short: 's', description: 'Run the command synchronously (ExecSync); required until the streaming server lands' },
  timeout: { type: 'string', value: 'SECONDS', description: 'Timeout in seconds (0: none)' },
  tty: { type: 'boolean', short: 't', description: 'Allocate a pseudo-TTY (interactive exec only, not yet available)' },
  interactive: { type: 'boolean', short: 'i', description: 'Keep STDIN open (interactive exec only, not yet available)' },
} as const;

export const INTERACTIVE_EXEC_UNAVAILABLE = 'skiff: interactive exec comes with the streaming server; use exec -s';

export const execCommand: Command = {
  name: 'exec',
  aliases: [],
  summary: 'Run a command in a running container (with -s; interactive exec comes with the streaming server)',
  args: 'CONTAINER-ID COMMAND [ARG...]',
  options: OPTIONS,
  async execute(ctx, args, help) {
    const { flags, rest } = splitAtCommand(args);
    const { values, positionals } = parseCommandArgs(OPTIONS, flags);
    if (values.help) return ctx.out(help(this));
    const [id, ...cmd] = [...positionals, ...rest];
    if (id === undefined || id === '') throw usageError('ID cannot be empty');
    if (cmd.length === 0) throw usageError('exec needs a command to run');
    const seconds = parseSeconds('timeout', values.timeout);
    if (!values.sync) {
      ctx.err(`${INTERACTIVE_EXEC_UNAVAILABLE}\n`);
      throw new ExitStatus(2);
    }
    const request = { container_id: id, cmd, timeout: seconds };
    // kubelet's CRI client: no deadline unless the command has a timeout, then that plus the usual.
    const { timeoutMs } = ctx.callOptions();
    const options = { timeoutMs: seconds > 0 && timeoutMs ? timeoutMs + seconds * 1000 : 0 };
    const r = await ctx.rpc('ExecSync', request, () => ctx.client().execSync(request, options));
    if (r.stdout.length > 0) ctx.out(r.stdout.toString('utf8'));
    if (r.stderr.length > 0) ctx.err(r.stderr.toString('utf8'));
    if (r.exit_code !== 0) throw new ExitStatus(r.exit_code);
  },
};

/** The flags before the container id, and everything from the container id on. */
function splitAtCommand(args: readonly string[]): { flags: string[]; rest: string[] } {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(OPTIONS)) {
    if (spec.type === 'string') {
      takesValue.add(`--${name}`);
      if ('short' in spec) takesValue.add(`-${spec.short as string}`);
    }
  }
  let i = 0;
  while (i < args.length) {
    const arg = args[i];
    if (arg === '--') return { flags: args.slice(0, i), rest: args.slice(i + 1) };
    if (!arg.startsWith('-') || arg === '-') break;
    i += takesValue.has(arg) ? 2 : 1;
  }
  return { flags: args.slice(0, i), rest: args.slice(i) };
}
