// `skiff runp`: RunPodSandbox with a pod config file (JSON or YAML), printing the new pod's id.
// Like kubelet's and crictl's CRI client, the deadline is twice the ordinary one (sandbox setup
// pulls the pause image and runs CNI), unless -T/--cancel-timeout sets it.
import { defineCommand, type CommandContext } from '../command.js';
import { parseDuration, usageError } from '../args.js';
import { loadPodSandboxConfig } from './config-file.js';
import type { CallOptions } from '../../client/client.js';
import type * as v1 from '../../gen/v1.js';

export const runpCommand = defineCommand({
  name: 'runp',
  summary: 'Run a new pod',
  args: 'POD-CONFIG.[json|yaml]',
  options: {
    runtime: { type: 'string', short: 'r', value: 'HANDLER', description: 'Runtime handler to use (as the runtime defines them)' },
    'cancel-timeout': {
      type: 'string',
      short: 'T',
      value: 'DURATION',
      description: 'Deadline of the request, e.g. 1m (default: twice the global --timeout)',
    },
  },
  async run(ctx, values, positionals) {
    if (positionals.length !== 1 || positionals[0] === '') throw usageError('runp takes exactly one pod config file');
    const options = cancelTimeout(ctx, values['cancel-timeout'], 2);
    const request: v1.RunPodSandboxRequest = { config: await loadPodSandboxConfig(positionals[0]) };
    if (values.runtime) request.runtime_handler = values.runtime;
    const r = await ctx.rpc('RunPodSandbox', request, () => ctx.client().runPodSandbox(request, options));
    ctx.out(`${r.pod_sandbox_id}\n`);
  },
});

/** `-T/--cancel-timeout` when given, else `factor` times the global deadline (0 stays none). */
export function cancelTimeout(ctx: CommandContext, text: string | undefined, factor = 1): CallOptions {
  if (text === undefined) return { timeoutMs: ctx.global.timeoutMs * factor };
  const timeoutMs = parseDuration(text);
  if (timeoutMs < 0) throw usageError(`invalid --cancel-timeout "${text}": must not be negative`);
  return { timeoutMs };
}
