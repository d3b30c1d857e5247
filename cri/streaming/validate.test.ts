import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSkiffError, type ErrorCode } from '../../common/errors.js';
import type * as v1 from '../gen/v1.js';
import { checkContainerRunning, validateAttachRequest, validateExecRequest, validatePortForwardRequest } from './validate.js';

function rejects(fn: () => unknown, code: ErrorCode, message: string): void {
  assert.throws(fn, (e: unknown) => isSkiffError(e, code) && e.message === message);
}

const EXEC_CASES: [string, v1.ExecRequest, string][] = [
  ['no container id', { cmd: ['ls'], stdout: true }, 'Exec: missing required container_id'],
  ['tty with stderr', { container_id: 'c1', cmd: ['ls'], tty: true, stdout: true, stderr: true }, 'Exec: tty and stderr cannot both be true'],
  ['no stream at all', { container_id: 'c1', cmd: ['ls'], tty: true }, 'Exec: one of stdin, stdout, or stderr must be set'],
  ['empty cmd', { container_id: 'c1', cmd: [], stdout: true }, 'Exec: cmd must not be empty'],
];

for (const [name, req, message] of EXEC_CASES) {
  test(`Exec with ${name} is INVALID_ARGUMENT`, () => rejects(() => validateExecRequest(req), 'SKIFF_INVALID_ARGUMENT', message));
}

test('a valid Exec comes back normalized', () => {
  assert.deepEqual(validateExecRequest({ container_id: 'c1', cmd: ['sh', '-c', 'true'], stdin: true, tty: true }), {
    containerId: 'c1',
    cmd: ['sh', '-c', 'true'],
    stdin: true,
    stdout: false,
    stderr: false,
    tty: true,
  });
});

test('Attach is checked like Exec and names itself', () => {
  rejects(() => validateAttachRequest({ container_id: 'c1', tty: true, stderr: true }), 'SKIFF_INVALID_ARGUMENT', 'Attach: tty and stderr cannot both be true');
  rejects(() => validateAttachRequest({ container_id: 'c1' }), 'SKIFF_INVALID_ARGUMENT', 'Attach: one of stdin, stdout, or stderr must be set');
  assert.deepEqual(validateAttachRequest({ container_id: 'c1', stderr: true }), { containerId: 'c1', stdin: false, stdout: false, stderr: true, tty: false });
});

test('PortForward needs a sandbox id and ports in range', () => {
  rejects(() => validatePortForwardRequest({ port: [80] }), 'SKIFF_INVALID_ARGUMENT', 'PortForward: missing required pod_sandbox_id');
  rejects(() => validatePortForwardRequest({ pod_sandbox_id: 'sb', port: [0] }), 'SKIFF_INVALID_ARGUMENT', 'PortForward: port 0 is out of range (1-65535)');
  rejects(() => validatePortForwardRequest({ pod_sandbox_id: 'sb', port: [65536] }), 'SKIFF_INVALID_ARGUMENT', 'PortForward: port 65536 is out of range (1-65535)');
  assert.deepEqual(validatePortForwardRequest({ pod_sandbox_id: 'sb', port: [80, 443] }), { podSandboxId: 'sb' });
});

test('an unknown container is NOT_FOUND, a stopped one FAILED_PRECONDITION, a running one passes', () => {
  rejects(() => checkContainerRunning('3f2a', undefined), 'SKIFF_NOT_FOUND', 'container "3f2a" not found');
  rejects(() => checkContainerRunning('3f2a', 'CONTAINER_EXITED'), 'SKIFF_FAILED_PRECONDITION', 'container "3f2a" is in CONTAINER_EXITED state, not CONTAINER_RUNNING');
  rejects(() => checkContainerRunning('3f2a', 'CONTAINER_CREATED'), 'SKIFF_FAILED_PRECONDITION', 'container "3f2a" is in CONTAINER_CREATED state, not CONTAINER_RUNNING');
  assert.doesNotThrow(() => checkContainerRunning('3f2a', 'CONTAINER_RUNNING'));
});
