// `skiff exec`: runs a command in a running container. With -s it is ExecSync, printing the
// command's stdout and stderr to ours; otherwise Exec, and the session goes over WebSocket to the
// URL the runtime returns (-i sends our stdin, -t gives the command a terminal). Either way the
// CLI exits with the command's exit code. Flags end at the container id, as in crictl, so
// `exec -s ID ls -la` passes `-la` to ls.
import { parseCommandArgs, usageError } from '../args.js';
import type { Command } from '../command.js';
import { STREAM_OPTIONS, checkTransport, checkTty, dialOptions, runRemoteSession } from '../remote-session.js';
import { parseSeconds } from './stop.js';

/** Thrown to end the CLI with this exit code and nothing more printed. */
export class ExitStatus extends Error {
  override name = 'ExitStatus';
  constructor(readonly exitCode: number) {
    super(`exit status ${exitCode}`);
  }
}

const OPTIONS = {
  sync: { type: 'boolean', short: 's', description: 'Run the command synchronously (ExecSync)' },
  timeout: { type: 'string', value: 'SECONDS', description: 'Timeout in seconds of a synchronous command (0: none)' },
  tty: { type: 'boolean', short: 't', description: 'Allocate a pseudo-TTY (needs -i and a terminal; ctrl-p ctrl-q detaches)' },
  interactive: { type: 'boolean', short: 'i', description: 'Keep STDIN open' },
  ...STREAM_OPTIONS,
} as const;

export const execCommand: Command = {
  name: 'exec',
  aliases: [],
  summary: 'Run a command in a running container',
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
    checkTransport(values.transport);
    if (!values.sync) {
      const o = { stdin: !!values.interactive, tty: !!values.tty };
      checkTty(ctx, o);
      const dial = await dialOptions(values);
      // crictl's ExecRequest: stdout always, stderr unless a terminal merges it into stdout.
      const request = { container_id: id, cmd, tty: o.tty, stdin: o.stdin, stdout: true, stderr: !o.tty };
      const { url } = await ctx.rpc('Exec', request, () => ctx.client().exec(request, ctx.callOptions()));
      const exitCode = await runRemoteSession(ctx, url, { ...o, dial });
      if (exitCode !== 0) throw new ExitStatus(exitCode);
      return;
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
