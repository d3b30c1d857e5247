// UpdatePodSandboxResources: the pod's new overhead and resources, checked and recorded as
// containerd records them; kubelet sizes the pod cgroup itself.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function updatePodSandboxResources(pods: PodService) {
  return async (req: v1.UpdatePodSandboxResourcesRequest__Output): Promise<v1.UpdatePodSandboxResourcesResponse> => {
    const id = requireId(req.pod_sandbox_id, 'UpdatePodSandboxResources', 'pod_sandbox_id');
    await pods.updateSandboxResources(id, req.overhead, req.resources);
    return {};
  };
}
