// PodSandboxStats, ListPodSandboxStats and StreamPodSandboxStats: a pod's cgroup cpu and memory,
// its network interfaces, its process count and its containers' stats. Only ready pods have
// stats: the list leaves the others out, as containerd does; asking for one is FAILED_PRECONDITION.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

const BATCH = 64;

export function podSandboxStats(pods: PodService) {
  return async (req: v1.PodSandboxStatsRequest__Output): Promise<v1.PodSandboxStatsResponse> => {
    const sample = await pods.stats.sandbox(requireId(req.pod_sandbox_id, 'PodSandboxStats', 'pod_sandbox_id'));
    return { stats: sample.stats };
  };
}

export function listPodSandboxStats(pods: PodService) {
  return async (req: v1.ListPodSandboxStatsRequest__Output): Promise<v1.ListPodSandboxStatsResponse> => ({
    stats: (await pods.stats.listSandboxes(req.filter)).map((s) => s.stats),
  });
}

export function streamPodSandboxStats(pods: PodService) {
  return async (req: v1.StreamPodSandboxStatsRequest__Output, send: (r: v1.StreamPodSandboxStatsResponse) => Promise<void>): Promise<void> => {
    const all = (await pods.stats.listSandboxes(req.filter)).map((s) => s.stats);
    for (let i = 0; i < all.length; i += BATCH) await send({ pod_sandbox_stats: all.slice(i, i + BATCH) });
  };
}
