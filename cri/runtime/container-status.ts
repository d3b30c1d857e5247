// ContainerStatus: state, exit code and reason, timestamps, image, mounts, log path; verbose info.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { containerInfo, toContainerStatus } from './convert.js';
import { requireId } from './ids.js';

export function containerStatus(pods: PodService) {
  return async (req: v1.ContainerStatusRequest__Output): Promise<v1.ContainerStatusResponse> => {
    const rec = pods.containers.mustFind(requireId(req.container_id, 'ContainerStatus', 'container_id'));
    const view = await pods.containers.view(rec);
    return { status: toContainerStatus(view, pods.ctx.images.images.get(view.imageId)), info: req.verbose ? containerInfo(view) : {} };
  };
}
