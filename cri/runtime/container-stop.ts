// StopContainer: stop signal, then SIGKILL after `timeout` seconds; idempotent.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function stopContainer(pods: PodService) {
  return async (req: v1.StopContainerRequest__Output): Promise<v1.StopContainerResponse> => {
    await pods.containers.stop(requireId(req.container_id, 'StopContainer', 'container_id'), Math.max(0, Number(req.timeout)));
    return {};
  };
}
