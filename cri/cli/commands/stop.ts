// `skiff stop`: StopContainer for each container (or every running one with -a), printing each id
// as crictl does; the first failure stops the command. The rpc's deadline is the ordinary one plus
// the grace period, as in kubelet's CRI client, so a slow-to-die container is not cut short.
import { defineCommand, type CommandContext } from '../command.js';
import { usageError } from '../args.js';

export const stopCommand = defineCommand({
  name: 'stop',
  summary: 'Stop one or more running containers',
  args: 'CONTAINER-ID [CONTAINER-ID...]',
  options: {
    timeout: { type: 'string', short: 't', value: 'SECONDS', description: 'Seconds to wait to kill the container after a graceful stop is requested' },
    all: { type: 'boolean', short: 'a', description: 'Stop all running containers' },
  },
  async run(ctx, values, positionals) {
    const seconds = parseSeconds('timeout', values.timeout);
    if (values.all && positionals.length > 0) throw usageError('cannot specify CONTAINER-ID(s) when using --all');
    let ids = positionals;
    if (values.all) {
      const request = { filter: { state: { state: 'CONTAINER_RUNNING' as const } } };
      const r = await ctx.rpc('ListContainers', request, () => ctx.client().listContainers(request, ctx.callOptions()));
      if (r.containers.length === 0) {
        ctx.out('No running containers found.\n');
        return;
      }
      ids = r.containers.map((c) => c.id);
    }
    if (ids.length === 0) throw usageError('you must specify at least one CONTAINER-ID or use --all');
    for (const id of ids) await stopContainer(ctx, id, seconds);
  },
});

/** A non-negative whole number of seconds from a flag (0 when absent). */
export function parseSeconds(flag: string, text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text)) throw usageError(`invalid value "${text}" for flag -${flag}: must be a whole number of seconds`);
  return Number(text);
}

/** One StopContainer and its line of output; `rm -f` stops running containers with it. */
export async function stopContainer(ctx: CommandContext, id: string, seconds: number): Promise<void> {
  if (id === '') throw usageError('ID cannot be empty');
  const request = { container_id: id, timeout: seconds };
  const { timeoutMs } = ctx.callOptions();
  const options = { timeoutMs: timeoutMs ? timeoutMs + seconds * 1000 : 0 };
  await ctx.rpc('StopContainer', request, () => ctx.client().stopContainer(request, options));
  ctx.out(`${id}\n`);
}
