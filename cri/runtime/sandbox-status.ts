// PodSandboxStatus: state, creation time, network, namespace options; verbose adds runtime info.
import type * as v1 from '../gen/v1.js';
import { SkiffError } from '../../common/errors.js';
import type { PodService } from '../../pod/service.js';
import { containerInfo, sandboxInfo, toContainerStatus, toPodSandboxStatus } from './convert.js';
import { requireId } from './ids.js';

export function podSandboxStatus(pods: PodService) {
  return async (req: v1.PodSandboxStatusRequest__Output): Promise<v1.PodSandboxStatusResponse> => {
    const id = requireId(req.pod_sandbox_id, 'PodSandboxStatus', 'pod_sandbox_id');
    const rec = pods.sandboxes.find(id);
    if (!rec || rec.phase === 'creating') throw new SkiffError('SKIFF_NOT_FOUND', `sandbox "${id}" not found`);
    const view = await pods.sandboxes.view(rec);
    const containers = await pods.containers.views(rec.id);
    return {
      status: toPodSandboxStatus(view),
      info: req.verbose ? { ...sandboxInfo(rec), containers: JSON.stringify(containers.map(containerInfo)) } : {},
      containers_statuses: containers.map((c) => toContainerStatus(c, pods.ctx.images.images.get(c.imageId))),
      timestamp: String(BigInt(Date.now()) * 1_000_000n),
    };
  };
}
