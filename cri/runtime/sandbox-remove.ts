// RemovePodSandbox: idempotent; stops what still runs, removes the pod's containers.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function removePodSandbox(pods: PodService) {
  return async (req: v1.RemovePodSandboxRequest__Output): Promise<v1.RemovePodSandboxResponse> => {
    await pods.removeSandbox(requireId(req.pod_sandbox_id, 'RemovePodSandbox', 'pod_sandbox_id'));
    return {};
  };
}
