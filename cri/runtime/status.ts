// Status: the RuntimeReady and NetworkReady conditions kubelet gates the node on, plus verbose
// info (the effective daemon config) for operators.
import type { StatusRequest__Output } from '../gen/runtime/v1/StatusRequest.js';
import type { StatusResponse } from '../gen/runtime/v1/StatusResponse.js';
import type { RuntimeCondition } from '../gen/runtime/v1/RuntimeCondition.js';
import { skiffVersion } from '../../common/version.js';

export interface StatusSource {
  /** Effective configuration, reported in verbose info. */
  config(): unknown;
  runtimeReady(): { ready: boolean; reason?: string; message?: string };
  networkReady(): Promise<{ ready: boolean; reason?: string; message?: string }>;
  handlers(): string[];
  /** What a handler really supports (pod/runtime/features.ts); absent: nothing. */
  handlerFeatures?(name: string): Promise<{ recursiveReadOnlyMounts: boolean; userNamespaces: boolean }>;
}

function condition(type: string, c: { ready: boolean; reason?: string; message?: string }): RuntimeCondition {
  return { type, status: c.ready, reason: c.ready ? '' : (c.reason ?? ''), message: c.ready ? '' : (c.message ?? '') };
}

export function status(src: StatusSource) {
  return async (req: StatusRequest__Output): Promise<StatusResponse> => ({
    status: {
      conditions: [condition('RuntimeReady', src.runtimeReady()), condition('NetworkReady', await src.networkReady())],
    },
    info: req.verbose ? { config: JSON.stringify(src.config()), version: skiffVersion() } : {},
    runtime_handlers: await Promise.all(
      src.handlers().map(async (name) => {
        const f = await src.handlerFeatures?.(name);
        return { name, features: { recursive_read_only_mounts: f?.recursiveReadOnlyMounts ?? false, user_namespaces: f?.userNamespaces ?? false } };
      }),
    ),
    // Merge and Strict both honoured (pod/spec/user.ts).
    features: { supplemental_groups_policy: true, user_namespaces_host_network: false },
  });
}
