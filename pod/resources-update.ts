// Live resource updates. UpdateContainerResources follows containerd's
// (internal/cri/server/container_update_resources.go): the new resources are merged over the
// container's spec (a zero field keeps its value), a created or running container's cgroup gets
// them through the runtime's `update --resources`, and only then are config.json — the source of
// truth, as containerd's stored spec is — and the record rewritten, so ContainerStatus and a
// restarted skiffd show them. A container that has exited (before or during the update) gets the
// spec and record only, and the call succeeds, as in containerd. oom_score_adj is checked but not
// changed: containerd applies only the cgroup resources to a running container.
// UpdatePodSandboxResources follows containerd's sandbox_update_resources.go: the pod's new
// overhead and resources are checked and recorded; kubelet itself sizes the pod cgroup.
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { writeFileAtomic } from '../common/atomic.js';
import { SkiffError } from '../common/errors.js';
import { logger } from '../common/log.js';
import { resourceHost } from './cgroups/host-facts.js';
import { bundlePaths } from './container-create.js';
import type { PodContext } from './context.js';
import type { ContainerRecord, SandboxRecord } from './records.js';
import type { OciRuntime } from './runtime/oci.js';
import type { LinuxResources, Spec } from './spec/oci-spec.js';
import { criResources, effectiveOomScoreAdj, mergeResources } from './spec/resources.js';

const log = logger('resources');

/** Fields `runtime update --resources` applies (device rules stay as created). */
function updatable(r: LinuxResources): LinuxResources {
  const { devices: _devices, ...rest } = r;
  return rest;
}

/**
 * Applies `linux` to a container; `exited()` tells, after a failed runtime update, whether the
 * container has exited meanwhile (then the update is recorded only, as for a stopped container).
 */
export async function updateContainerResources(
  ctx: PodContext,
  rec: ContainerRecord,
  runtime: OciRuntime,
  linux: v1.LinuxContainerResources__Output,
  exited: () => Promise<boolean>,
): Promise<ContainerRecord> {
  const fail = (m: string): SkiffError => new SkiffError('SKIFF_INVALID_ARGUMENT', `UpdateContainerResources: container ${rec.id}: ${m}`);
  const host = await resourceHost(ctx.cgroups);
  effectiveOomScoreAdj(linux.oom_score_adj, host, fail, 'linux.oom_score_adj');
  const p = bundlePaths(rec.bundle);
  const spec = JSON.parse(await readFile(p.config, 'utf8')) as Spec;
  const next = mergeResources(structuredClone(spec.linux.resources ?? {}), linux, host, fail, 'linux.');

  if (rec.phase === 'created' || rec.phase === 'running') {
    const file = join(rec.bundle, `update-${randomBytes(6).toString('hex')}.json`);
    await writeFile(file, JSON.stringify(updatable(next)));
    try {
      await runtime.update(rec.id, file);
    } catch (err) {
      if (!(await exited())) throw err;
      log.info({ container: rec.id }, 'container exited during a resources update; recording the new resources only');
    } finally {
      await rm(file, { force: true });
    }
  }
  spec.linux.resources = next;
  await writeFileAtomic(p.config, JSON.stringify(spec));
  const updated = await ctx.containers.update(rec.id, (r) => {
    r.resources = criResources(next, spec.process.oomScoreAdj);
  });
  log.info({ container: rec.id, resources: updatable(next) }, 'container resources updated');
  return updated;
}

/** UpdatePodSandboxResources: checks the pod's new overhead and resources and records them. */
export async function updateSandboxResources(
  ctx: PodContext,
  sandbox: SandboxRecord,
  overhead: v1.LinuxContainerResources__Output | null,
  resources: v1.LinuxContainerResources__Output | null,
): Promise<void> {
  const fail = (m: string): SkiffError => new SkiffError('SKIFF_INVALID_ARGUMENT', `UpdatePodSandboxResources: sandbox ${sandbox.id}: ${m}`);
  const host = await resourceHost(ctx.cgroups);
  for (const [field, r] of [['overhead.', overhead], ['resources.', resources]] as const) {
    if (!r) continue;
    mergeResources({}, r, host, fail, field);
    effectiveOomScoreAdj(r.oom_score_adj, host, fail, `${field}oom_score_adj`);
  }
  await ctx.sandboxes.update(sandbox.id, (s) => {
    if (overhead) s.overhead = overhead;
    if (resources) s.resources = resources;
  });
  log.info({ sandbox: sandbox.id }, 'sandbox resources recorded');
}
