// `skiff rmp`: RemovePodSandbox for each pod (or every pod with -a), printing `Removed sandbox <id>`.
// A ready pod is refused unless -f, which stops it first, as crictl does. One failure does not stop
// the others; the command then exits 1.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';
import { errorMessage } from '../../../common/errors.js';
import { stopPod } from './stopp.js';

export const rmpCommand = defineCommand({
  name: 'rmp',
  summary: 'Remove one or more pods',
  args: 'POD-ID [POD-ID...]',
  options: {
    force: { type: 'boolean', short: 'f', description: 'Force removal of the pod sandbox, disregarding if running' },
    all: { type: 'boolean', short: 'a', description: 'Remove all pods' },
  },
  async run(ctx, values, positionals) {
    const ids = new Set(positionals);
    if (values.all) {
      const r = await ctx.rpc('ListPodSandbox', {}, () => ctx.client().listPodSandbox({}, ctx.callOptions()));
      for (const pod of r.items) ids.add(pod.id);
      if (ids.size === 0) {
        ctx.err('No pods to remove\n');
        return;
      }
    }
    if (ids.size === 0) throw usageError('rmp needs at least one pod ID, or -a');

    let failed = false;
    for (const id of ids) {
      try {
        if (id === '') throw usageError('ID cannot be empty');
        const request = { pod_sandbox_id: id };
        const status = await ctx.rpc('PodSandboxStatus', request, () => ctx.client().podSandboxStatus(request, ctx.callOptions()));
        if (status.status?.state === 'SANDBOX_READY') {
          if (!values.force) throw new Error(`pod sandbox "${id}" is running, please stop it first`);
          await stopPod(ctx, id);
        }
        await ctx.rpc('RemovePodSandbox', request, () => ctx.client().removePodSandbox(request, ctx.callOptions()));
        ctx.out(`Removed sandbox ${id}\n`);
      } catch (err) {
        ctx.err(`skiff: ${errorMessage(err)}\n`);
        failed = true;
      }
    }
    if (failed) throw new Error('unable to remove the pod(s)');
  },
});
