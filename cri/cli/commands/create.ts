// `skiff create`: CreateContainer in a pod from a container config and the pod's config (JSON or
// YAML), printing the new container's id. The image (and any image volume) is pulled first when
// the runtime does not have it; --with-pull pulls even then, --no-pull never pulls.
import { defineCommand, type CommandContext } from '../command.js';
import { parseDuration, usageError } from '../args.js';
import { loadContainerConfig, loadPodSandboxConfig } from './config-file.js';
import { authConfig } from './pull.js';
import { cancelTimeout } from './runp.js';
import type * as v1 from '../../gen/v1.js';

export const createCommand = defineCommand({
  name: 'create',
  summary: 'Create a new container',
  args: 'POD-ID CONTAINER-CONFIG.[json|yaml] POD-CONFIG.[json|yaml]',
  options: {
    'no-pull': { type: 'boolean', description: 'Do not pull the image, even when the runtime lacks it' },
    'with-pull': { type: 'boolean', description: 'Pull the image even when the runtime has it' },
    creds: { type: 'string', value: 'USERNAME[:PASSWORD]', description: 'Use USERNAME[:PASSWORD] for accessing the registry' },
    auth: { type: 'string', value: 'AUTH_STRING', description: "Use AUTH_STRING (base64 of 'USERNAME[:PASSWORD]') for accessing the registry" },
    username: { type: 'string', short: 'u', value: 'USERNAME', description: 'Use USERNAME for accessing the registry (with --password)' },
    password: { type: 'string', value: 'PASSWORD', description: 'Password for --username' },
    'pull-timeout': { type: 'string', value: 'DURATION', description: 'Maximum time for a pull, 0 for none (default: -t if given, else none)' },
    'cancel-timeout': { type: 'string', short: 'T', value: 'DURATION', description: 'Deadline of CreateContainer (default: the global --timeout)' },
  },
  async run(ctx, values, positionals) {
    if (positionals.length !== 3) throw usageError('create takes a pod ID, a container config file and a pod config file');
    if (values['no-pull'] && values['with-pull']) throw usageError('conflict: no-pull and with-pull are both set');
    const [podId, containerPath, podPath] = positionals;
    if (podId === '') throw usageError('ID cannot be empty');
    const createOptions = cancelTimeout(ctx, values['cancel-timeout']);
    const config = await loadContainerConfig(containerPath);
    const sandboxConfig = await loadPodSandboxConfig(podPath);
    const image = config.image?.image ?? '';
    if (config.image && !config.image.user_specified_image) config.image.user_specified_image = image;

    if (!values['no-pull']) {
      if (image === '') throw usageError(`load containerConfig: ${containerPath}: image.image is not set`);
      const pull: PullPlan = {
        auth: authConfig(values),
        annotations: config.image?.annotations,
        sandboxConfig,
        always: !!values['with-pull'],
        timeoutMs: pullTimeout(ctx, values['pull-timeout']),
      };
      const images = [image, ...(config.mounts ?? []).map((m) => m.image?.image ?? '').filter((name) => name !== '')];
      for (const name of images) await ensureImage(ctx, name, pull);
    }

    const request: v1.CreateContainerRequest = { pod_sandbox_id: podId, config, sandbox_config: sandboxConfig };
    const r = await ctx.rpc('CreateContainer', request, () => ctx.client().createContainer(request, createOptions));
    ctx.out(`${r.container_id}\n`);
  },
});

interface PullPlan {
  auth: v1.AuthConfig | undefined;
  annotations: Record<string, string> | undefined;
  sandboxConfig: v1.PodSandboxConfig;
  /** Pull even when ImageStatus finds the image. */
  always: boolean;
  timeoutMs: number;
}

// As `pull`: no deadline unless -t or --pull-timeout asks for one.
function pullTimeout(ctx: CommandContext, text: string | undefined): number {
  if (text === undefined) return ctx.global.timeoutSet ? ctx.global.timeoutMs : 0;
  const ms = parseDuration(text);
  if (ms < 0) throw usageError('timeout should be bigger than 0');
  return ms;
}

async function ensureImage(ctx: CommandContext, name: string, plan: PullPlan): Promise<void> {
  if (!plan.always) {
    const statusRequest = { image: { image: name } };
    const status = await ctx.rpc('ImageStatus', statusRequest, () => ctx.client().imageStatus(statusRequest, ctx.callOptions()));
    if (status.image) return;
  }
  ctx.log.debug({ image: name }, 'pulling the container image');
  const request: v1.PullImageRequest = { image: { image: name }, sandbox_config: plan.sandboxConfig };
  if (plan.annotations) request.image = { ...request.image, annotations: plan.annotations };
  if (plan.auth) request.auth = plan.auth;
  await ctx.rpc('PullImage', request, () => ctx.client().pullImage(request, { timeoutMs: plan.timeoutMs }));
}
