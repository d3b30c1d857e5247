// ExecSync: runs a command in a running container and returns its output and exit code; a
// timeout kills the command and its children and answers DEADLINE_EXCEEDED.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

export function execSync(pods: PodService) {
  return async (req: v1.ExecSyncRequest__Output): Promise<v1.ExecSyncResponse> => {
    const r = await pods.containers.execSync(requireId(req.container_id, 'ExecSync', 'container_id'), req.cmd, Number(req.timeout));
    return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
  };
}
