// RuntimeConfig: tells kubelet which cgroup driver to use so both name cgroups the same way.
import type { RuntimeConfigRequest__Output } from '../gen/runtime/v1/RuntimeConfigRequest.js';
import type { RuntimeConfigResponse } from '../gen/runtime/v1/RuntimeConfigResponse.js';

export function runtimeConfig(driver: () => 'cgroupfs' | 'systemd') {
  return async (_req: RuntimeConfigRequest__Output): Promise<RuntimeConfigResponse> => ({
    linux: { cgroup_driver: driver() === 'systemd' ? 'SYSTEMD' : 'CGROUPFS' },
  });
}
