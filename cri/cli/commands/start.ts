// `skiff start`: StartContainer for each container in turn, printing each id as crictl does; the
// first failure stops the command.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';

export const startCommand = defineCommand({
  name: 'start',
  summary: 'Start one or more created containers',
  args: 'CONTAINER-ID [CONTAINER-ID...]',
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length === 0) throw usageError('start needs at least one container ID');
    for (const id of positionals) {
      if (id === '') throw usageError('ID cannot be empty');
      const request = { container_id: id };
      await ctx.rpc('StartContainer', request, () => ctx.client().startContainer(request, ctx.callOptions()));
      ctx.out(`${id}\n`);
    }
  },
});
