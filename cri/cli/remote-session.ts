// What `exec` and `attach` share once the runtime has answered with a streaming URL: crictl's
// --transport and TLS flags, and the session itself — our stdin, stdout and stderr joined to the
// remote command, and with -t the terminal in raw mode, its size sent at the start and on every
// resize, and ctrl-p ctrl-q to detach.
import { readFile } from 'node:fs/promises';
import type { Readable, Transform } from 'node:stream';
import { errorMessage } from '../../common/errors.js';
import { openRemoteCommand, type RemoteCommandResult, type RemoteCommandSession } from '../client/remote-command.js';
import type { DialOptions } from '../client/stream-dial.js';
import { usageError, type OptionSpecs, type OptionValues } from './args.js';
import type { CommandContext } from './command.js';
import { detachFilter, type Terminal } from './terminal.js';

export const TRANSPORT_OPTION = {
  transport: {
    type: 'string',
    short: 'r',
    value: 'TRANSPORT',
    description: 'Transport protocol to use: websocket (the default; skiff speaks no SPDY)',
  },
} as const satisfies OptionSpecs;

/** crictl's TLS flags for an https streaming URL; without any of them the certificate is not checked. */
export const STREAM_OPTIONS = {
  ...TRANSPORT_OPTION,
  'tls-sni': { type: 'string', value: 'NAME', description: 'Server name the streaming certificate must carry (default: localhost)' },
  'tls-ca': { type: 'string', value: 'FILE', description: 'Path to the streaming TLS CA certificate' },
  'tls-cert': { type: 'string', value: 'FILE', description: 'Path to the streaming TLS client certificate' },
  'tls-key': { type: 'string', value: 'FILE', description: 'Path to the streaming TLS client key' },
} as const satisfies OptionSpecs;

/** --transport: websocket only; crictl's spdy default is refused with a reason. */
export function checkTransport(value: string | undefined): void {
  if (value === undefined || value === 'websocket') return;
  if (value === 'spdy') {
    throw usageError("transport spdy is not supported: skiff's CLI speaks WebSocket (kubectl's default since 1.31); use --transport websocket or leave it out");
  }
  throw usageError(`unknown transport "${value}" (one of: websocket, spdy)`);
}

/** crictl's tlsConfigFromFlags: nothing given → no verification; a certificate needs its key. */
export async function dialOptions(values: OptionValues<typeof STREAM_OPTIONS>): Promise<DialOptions> {
  const { 'tls-ca': ca, 'tls-cert': cert, 'tls-key': key } = values;
  if (!ca && !cert && !key) return {};
  if (!cert || !key) throw usageError('both flags --tls-cert and --tls-key are required for TLS streaming, only --tls-ca is optional');
  const read = async (flag: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw usageError(`--${flag} ${path}: ${errorMessage(err)}`);
    }
  };
  return {
    tls: {
      ...(ca ? { ca: await read('tls-ca', ca) } : {}),
      cert: await read('tls-cert', cert),
      key: await read('tls-key', key),
      serverName: values['tls-sni'] || 'localhost',
    },
  };
}

/** crictl's checks before a terminal session: -t needs -i and a terminal on stdin. */
export function checkTty(ctx: CommandContext, o: { stdin: boolean; tty: boolean }): void {
  if (!o.tty) return;
  if (!o.stdin) throw usageError('tty=true must be specified with interactive=true (-t needs -i)');
  if (!ctx.terminal().isTTY) throw new Error('input is not a terminal: -t needs a terminal on stdin');
}

/**
 * Runs one exec or attach session on `url` and resolves with the remote exit code (0 when
 * detached). The terminal, if -t, is back in its own mode when this returns.
 */
export async function runRemoteSession(ctx: CommandContext, url: string, o: { stdin: boolean; tty: boolean; dial: DialOptions }): Promise<number> {
  let session: RemoteCommandSession | undefined;
  let detachRequested = false;
  let input: Readable | undefined;
  let source: Readable | undefined;
  let filter: Transform | undefined;
  if (o.stdin) {
    source = ctx.stdin();
    input = source;
    if (o.tty) {
      filter = detachFilter(() => {
        detachRequested = true;
        session?.detach();
      });
      input = source.pipe(filter);
    }
  }
  const terminal = o.tty ? ctx.terminal() : undefined;
  try {
    session = await openRemoteCommand(url, { stdin: input, stdout: ctx.stdoutStream(), stderr: o.tty ? undefined : ctx.stderrStream() }, o.dial);
    if (detachRequested) session.detach();
    const result = terminal ? await withTerminal(terminal, session) : await session.done;
    return result.exitCode;
  } finally {
    if (filter) source?.unpipe(filter);
    source?.pause();
  }
}

/** Raw mode for the session's length; the size now and on each change. */
async function withTerminal(terminal: Terminal, session: RemoteCommandSession): Promise<RemoteCommandResult> {
  const sendSize = (): void => {
    const { columns, rows } = terminal;
    if (columns && rows) session.resize({ width: columns, height: rows });
  };
  terminal.setRawMode(true);
  terminal.on('resize', sendSize);
  try {
    sendSize();
    return await session.done;
  } finally {
    terminal.off('resize', sendSize);
    terminal.setRawMode(false);
  }
}
