// Exec, Attach and PortForward: validated here, served later by the streaming server at the URL
// they return (single use, short-lived), as kubelet's streaming server does.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { SkiffError } from '../../common/errors.js';
import type { StreamingServer } from '../streaming/server.js';
import { checkContainerRunning, validateAttachRequest, validateExecRequest, validatePortForwardRequest } from '../streaming/validate.js';

/** The full id of a container that runs now (a short id is resolved, as crictl passes them). */
async function runningContainer(pods: PodService, idOrPrefix: string): Promise<string> {
  const rec = pods.containers.find(idOrPrefix);
  const view = rec ? await pods.containers.view(rec) : undefined;
  checkContainerRunning(idOrPrefix, view?.state as v1.ContainerState__Output | undefined);
  return rec!.id;
}

export function exec(pods: PodService, streaming: StreamingServer) {
  return async (req: v1.ExecRequest__Output): Promise<v1.ExecResponse> => {
    const r = validateExecRequest(req);
    return { url: streaming.getExecUrl({ ...r, containerId: await runningContainer(pods, r.containerId) }) };
  };
}

export function attach(pods: PodService, streaming: StreamingServer) {
  return async (req: v1.AttachRequest__Output): Promise<v1.AttachResponse> => {
    const r = validateAttachRequest(req);
    return { url: streaming.getAttachUrl({ ...r, containerId: await runningContainer(pods, r.containerId) }) };
  };
}

export function portForward(pods: PodService, streaming: StreamingServer) {
  return async (req: v1.PortForwardRequest__Output): Promise<v1.PortForwardResponse> => {
    const r = validatePortForwardRequest(req);
    const sandbox = pods.sandboxes.find(r.podSandboxId);
    if (!sandbox) throw new SkiffError('SKIFF_NOT_FOUND', `sandbox "${r.podSandboxId}" not found`);
    if ((await pods.sandboxes.view(sandbox)).state !== 'SANDBOX_READY') throw new SkiffError('SKIFF_FAILED_PRECONDITION', `sandbox ${sandbox.id} is not ready`);
    return { url: streaming.getPortForwardUrl({ podSandboxId: sandbox.id }) };
  };
}
