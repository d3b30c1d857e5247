// CreateContainer: pod/ builds the rootfs, the OCI config and starts the container's monitor.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function createContainer(pods: PodService) {
  return async (req: v1.CreateContainerRequest__Output): Promise<v1.CreateContainerResponse> => {
    const sandboxId = requireId(req.pod_sandbox_id, 'CreateContainer', 'pod_sandbox_id');
    return { container_id: await pods.containers.create(sandboxId, req.config, req.sandbox_config) };
  };
}
