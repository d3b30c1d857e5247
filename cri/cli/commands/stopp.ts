// `skiff stopp`: StopPodSandbox for each pod in turn, printing `Stopped sandbox <id>` as crictl does;
// the first failure stops the command.
import { defineCommand, type CommandContext } from '../command.js';
import { usageError } from '../args.js';

export const stoppCommand = defineCommand({
  name: 'stopp',
  summary: 'Stop one or more running pods',
  args: 'POD-ID [POD-ID...]',
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length === 0) throw usageError('stopp needs at least one pod ID');
    for (const id of positionals) await stopPod(ctx, id);
  },
});

/** One StopPodSandbox and its line of output; `rmp -f` stops ready pods with it. */
export async function stopPod(ctx: CommandContext, id: string): Promise<void> {
  if (id === '') throw usageError('ID cannot be empty');
  const request = { pod_sandbox_id: id };
  await ctx.rpc('StopPodSandbox', request, () => ctx.client().stopPodSandbox(request, ctx.callOptions()));
  ctx.out(`Stopped sandbox ${id}\n`);
}
