// RemoveContainer: force-stops if needed, then removes; idempotent.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function removeContainer(pods: PodService) {
  return async (req: v1.RemoveContainerRequest__Output): Promise<v1.RemoveContainerResponse> => {
    await pods.containers.remove(requireId(req.container_id, 'RemoveContainer', 'container_id'));
    return {};
  };
}
