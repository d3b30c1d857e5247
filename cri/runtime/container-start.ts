// StartContainer: the runtime's start of a created container.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function startContainer(pods: PodService) {
  return async (req: v1.StartContainerRequest__Output): Promise<v1.StartContainerResponse> => {
    await pods.containers.start(requireId(req.container_id, 'StartContainer', 'container_id'));
    return {};
  };
}
