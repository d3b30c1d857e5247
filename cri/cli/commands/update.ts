// `skiff update`: UpdateContainerResources for each container with crictl's flags, printing each
// id. As crictl does on Linux, it sends the Linux resources (a flag left out is 0: "unchanged"
// to the runtime); --cpu-count and --cpu-maximum are Windows-only and not sent.
import { defineCommand } from '../command.js';
import { usageError } from '../args.js';

const INT64 = /^-?\d{1,19}$/;

/** A flag's int64 value as the decimal string the wire takes; '0' when absent. */
function int64(flag: string, text: string | undefined): string {
  if (text === undefined) return '0';
  if (!INT64.test(text) || BigInt(text) > 9223372036854775807n || BigInt(text) < -9223372036854775808n) {
    throw usageError(`invalid value "${text}" for flag -${flag}: parse error`);
  }
  return BigInt(text).toString();
}

export const updateCommand = defineCommand({
  name: 'update',
  summary: 'Update one or more running containers',
  args: 'CONTAINER-ID [CONTAINER-ID...]',
  options: {
    'cpu-count': { type: 'string', value: 'N', description: '(Windows only) Number of CPUs available to the container' },
    'cpu-maximum': { type: 'string', value: 'N', description: '(Windows only) Portion of CPU cycles specified as a percentage * 100' },
    'cpu-period': { type: 'string', value: 'USECS', description: 'CPU CFS period to be used for hardcapping (in usecs). 0 to use system default' },
    'cpu-quota': { type: 'string', value: 'USECS', description: 'CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period' },
    'cpu-share': { type: 'string', value: 'N', description: 'CPU shares (relative weight vs. other containers)' },
    memory: { type: 'string', value: 'BYTES', description: 'Memory limit (in bytes)' },
    'cpuset-cpus': { type: 'string', value: 'LIST', description: 'CPU(s) to use' },
    'cpuset-mems': { type: 'string', value: 'LIST', description: 'Memory node(s) to use' },
    'oom-score-adj': { type: 'string', value: 'N', description: 'OOM Killer score to use' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length === 0) throw usageError('ID cannot be empty');
    int64('cpu-count', values['cpu-count']);
    int64('cpu-maximum', values['cpu-maximum']);
    const linux = {
      cpu_period: int64('cpu-period', values['cpu-period']),
      cpu_quota: int64('cpu-quota', values['cpu-quota']),
      cpu_shares: int64('cpu-share', values['cpu-share']),
      cpuset_cpus: values['cpuset-cpus'] ?? '',
      cpuset_mems: values['cpuset-mems'] ?? '',
      memory_limit_in_bytes: int64('memory', values.memory),
      oom_score_adj: int64('oom-score-adj', values['oom-score-adj']),
    };
    for (const id of positionals) {
      if (id === '') throw usageError('ID cannot be empty');
      const request = { container_id: id, linux };
      await ctx.rpc('UpdateContainerResources', request, () => ctx.client().updateContainerResources(request, ctx.callOptions()));
      ctx.out(`${id}\n`);
    }
  },
});
