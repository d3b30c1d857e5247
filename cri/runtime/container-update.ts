// UpdateContainerResources: new cgroup resources for a container, applied live and recorded
// (pod/resources-update.ts). Without linux resources there is nothing to change (containerd).
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function updateContainerResources(pods: PodService) {
  return async (req: v1.UpdateContainerResourcesRequest__Output): Promise<v1.UpdateContainerResourcesResponse> => {
    const id = requireId(req.container_id, 'UpdateContainerResources', 'container_id');
    const rec = pods.containers.mustFind(id);
    if (req.linux) await pods.containers.updateResources(rec.id, req.linux);
    return {};
  };
}
