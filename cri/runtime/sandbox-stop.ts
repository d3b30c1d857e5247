// StopPodSandbox: idempotent; an unknown id succeeds, as the CRI requires.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function stopPodSandbox(pods: PodService) {
  return async (req: v1.StopPodSandboxRequest__Output): Promise<v1.StopPodSandboxResponse> => {
    await pods.stopSandbox(requireId(req.pod_sandbox_id, 'StopPodSandbox', 'pod_sandbox_id'));
    return {};
  };
}
