// Version: who we are. `version` is the legacy kubelet API version field ("0.1.0" everywhere).
import type { VersionRequest__Output } from '../gen/runtime/v1/VersionRequest.js';
import type { VersionResponse } from '../gen/runtime/v1/VersionResponse.js';
import { skiffVersion } from '../../common/version.js';

export const RUNTIME_NAME = 'skiff';
export const RUNTIME_API_VERSION = 'v1';

export function version() {
  return async (_req: VersionRequest__Output): Promise<VersionResponse> => ({
    version: '0.1.0',
    runtime_name: RUNTIME_NAME,
    runtime_version: skiffVersion(),
    runtime_api_version: RUNTIME_API_VERSION,
  });
}
