// `skiff rm`: RemoveContainer for each container (or every container with -a), printing each id. A
// running container is refused unless -f, which stops it first (printing its id for the stop too,
// as crictl does). Like crictl, which stands in for kubelet here, the container's log file and its
// rotations are deleted afterwards unless -k. One failure does not stop the others; the command
// then exits 1.
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { defineCommand, type CommandContext } from '../command.js';
import { usageError } from '../args.js';
import { errnoCode, errorMessage } from '../../../common/errors.js';
import { stopContainer } from './stop.js';

export const rmCommand = defineCommand({
  name: 'rm',
  summary: 'Remove one or more containers',
  args: 'CONTAINER-ID [CONTAINER-ID...]',
  options: {
    force: { type: 'boolean', short: 'f', description: 'Force removal of the container, disregarding if running' },
    'keep-logs': { type: 'boolean', short: 'k', description: 'Preserve the container log file and its rotations' },
    all: { type: 'boolean', short: 'a', description: 'Remove all containers' },
  },
  async run(ctx, values, positionals) {
    const ids = new Set(positionals);
    if (values.all) {
      const r = await ctx.rpc('ListContainers', {}, () => ctx.client().listContainers({}, ctx.callOptions()));
      for (const c of r.containers) ids.add(c.id);
      if (ids.size === 0) {
        ctx.err('No containers to remove\n');
        return;
      }
    }
    if (ids.size === 0) throw usageError('rm needs at least one container ID, or -a');

    let failed = false;
    for (const id of ids) {
      try {
        await removeContainer(ctx, id, !!values.force, !values['keep-logs']);
      } catch (err) {
        ctx.err(`skiff: ${errorMessage(err)}\n`);
        failed = true;
      }
    }
    if (failed) throw new Error('unable to remove the container(s)');
  },
});

async function removeContainer(ctx: CommandContext, id: string, force: boolean, removeLogs: boolean): Promise<void> {
  if (id === '') throw usageError('ID cannot be empty');
  const statusRequest = { container_id: id };
  const status = await ctx.rpc('ContainerStatus', statusRequest, () => ctx.client().containerStatus(statusRequest, ctx.callOptions()));
  if (status.status?.state === 'CONTAINER_RUNNING') {
    if (!force) throw new Error(`container "${id}" is running, please stop it first`);
    await stopContainer(ctx, id, 0);
  }
  const request = { container_id: id };
  await ctx.rpc('RemoveContainer', request, () => ctx.client().removeContainer(request, ctx.callOptions()));
  ctx.out(`${id}\n`);
  const logPath = status.status?.log_path;
  if (removeLogs && logPath) await removeLogFiles(ctx, id, logPath);
}

/** The log file and its rotations (`<path>.<suffix>`); a failure is reported, not fatal. */
async function removeLogFiles(ctx: CommandContext, id: string, logPath: string): Promise<void> {
  const dir = dirname(logPath);
  const prefix = `${basename(logPath)}.`;
  let names: string[] = [];
  try {
    names = (await readdir(dir)).filter((name) => name.startsWith(prefix));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') ctx.err(`skiff: listing log files of container "${id}" in ${dir}: ${errorMessage(err)}\n`);
  }
  for (const file of [...names.map((name) => join(dir, name)), logPath]) {
    try {
      await rm(file, { force: true });
    } catch (err) {
      ctx.err(`skiff: removing log file ${file} for container "${id}" failed: ${errorMessage(err)}\n`);
    }
  }
}
