// `skiff attach`: Attach, then the container's own stdio over WebSocket to the URL the runtime
// returns, until the container exits or we leave (ctrl-p ctrl-q with -t). Like crictl, -t must match
// the container's own tty setting and is not checked against it; -i sends our stdin.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { STREAM_OPTIONS, checkTransport, checkTty, dialOptions, runRemoteSession } from '../remote-session.js';

export const attachCommand = defineCommand({
  name: 'attach',
  summary: 'Attach to a running container',
  args: 'CONTAINER-ID',
  options: {
    tty: { type: 'boolean', short: 't', description: "Allocate a pseudo-TTY (must match the container's tty; needs -i and a terminal)" },
    stdin: { type: 'boolean', short: 'i', description: 'Keep STDIN open' },
    ...STREAM_OPTIONS,
  },
  async run(ctx, values, positionals) {
    const id = positionals[0];
    if (id === undefined || id === '') throw usageError('ID cannot be empty');
    if (positionals.length > 1) throw usageError('attach takes exactly one container ID');
    checkTransport(values.transport);
    const o = { stdin: !!values.stdin, tty: !!values.tty };
    checkTty(ctx, o);
    const dial = await dialOptions(values);
    const request = { container_id: id, tty: o.tty, stdin: o.stdin, stdout: true, stderr: !o.tty };
    const { url } = await ctx.rpc('Attach', request, () => ctx.client().attach(request, ctx.callOptions()));
    await runRemoteSession(ctx, url, { ...o, dial });
  },
});
