// ReopenContainerLog: the container's monitor reopens its log file (after kubelet rotated it).
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function reopenContainerLog(pods: PodService) {
  return async (req: v1.ReopenContainerLogRequest__Output): Promise<v1.ReopenContainerLogResponse> => {
    await pods.containers.reopenLog(requireId(req.container_id, 'ReopenContainerLog', 'container_id'));
    return {};
  };
}
