// RunPodSandbox: validate, then pod/ makes the sandbox; a kubelet retry of the same request gets
// the same id.
import type * as v1 from '../gen/v1.js';
import { SkiffError } from '../../common/errors.js';
import type { PodService } from '../../pod/service.js';

export function runPodSandbox(pods: PodService) {
  return async (req: v1.RunPodSandboxRequest__Output): Promise<v1.RunPodSandboxResponse> => {
    if (!req.config) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'RunPodSandbox: config is required');
    return { pod_sandbox_id: await pods.runSandbox(req.config, req.runtime_handler) };
  };
}
