// Checks for the Exec, Attach and PortForward rpcs before a URL is handed out, with kubelet's
// wording (cri/streaming/server.go validateExecRequest, GetPortForward) and containerd's running
// check (internal/cri/server/container_exec.go). Pure: the rpc passes in what it looked up.
import { SkiffError } from '../../common/errors.js';
import type * as v1 from '../gen/v1.js';
import type { AttachRequest, ExecRequest, PortForwardRequest } from './backend.js';

/** The ExecRequest normalized, or SKIFF_INVALID_ARGUMENT naming what is wrong. */
export function validateExecRequest(req: v1.ExecRequest): ExecRequest {
  const base = validateStreams('Exec', req);
  const cmd = req.cmd ?? [];
  if (cmd.length === 0) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'Exec: cmd must not be empty');
  return { ...base, cmd: [...cmd] };
}

export function validateAttachRequest(req: v1.AttachRequest): AttachRequest {
  return validateStreams('Attach', req);
}

export function validatePortForwardRequest(req: v1.PortForwardRequest): PortForwardRequest {
  if (!req.pod_sandbox_id) throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'PortForward: missing required pod_sandbox_id');
  for (const port of req.port ?? []) {
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `PortForward: port ${port} is out of range (1-65535)`);
  }
  return { podSandboxId: req.pod_sandbox_id };
}

/**
 * A container can be exec'd into or attached to only while it runs: an unknown id is NOT_FOUND,
 * any other state FAILED_PRECONDITION.
 */
export function checkContainerRunning(containerId: string, state: v1.ContainerState__Output | undefined): void {
  if (state === undefined) throw new SkiffError('SKIFF_NOT_FOUND', `container "${containerId}" not found`);
  if (state !== 'CONTAINER_RUNNING') {
    throw new SkiffError('SKIFF_FAILED_PRECONDITION', `container "${containerId}" is in ${state} state, not CONTAINER_RUNNING`);
  }
}

function validateStreams(rpc: string, req: v1.AttachRequest): AttachRequest {
  if (!req.container_id) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${rpc}: missing required container_id`);
  const r = { containerId: req.container_id, stdin: !!req.stdin, stdout: !!req.stdout, stderr: !!req.stderr, tty: !!req.tty };
  // A terminal has one output stream; multiplexing stderr beside it is not supported.
  if (r.tty && r.stderr) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${rpc}: tty and stderr cannot both be true`);
  if (!r.stdin && !r.stdout && !r.stderr) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `${rpc}: one of stdin, stdout, or stderr must be set`);
  return r;
}
