// ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics: the stats of every
// ready pod as cAdvisor-named metrics (pod/stats/cadvisor.ts), which kubelet re-exports on
// /metrics/cadvisor when its PodAndContainerStatsFromCRI gate is on.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { metricDescriptors, podSandboxMetrics } from '../../pod/stats/cadvisor.js';

const BATCH = 64;

export function listMetricDescriptors() {
  const descriptors = metricDescriptors();
  return async (_req: v1.ListMetricDescriptorsRequest__Output): Promise<v1.ListMetricDescriptorsResponse> => ({ descriptors });
}

export function listPodSandboxMetrics(pods: PodService) {
  return async (_req: v1.ListPodSandboxMetricsRequest__Output): Promise<v1.ListPodSandboxMetricsResponse> => ({
    pod_metrics: (await pods.stats.listSandboxes()).map(podSandboxMetrics),
  });
}

export function streamPodSandboxMetrics(pods: PodService) {
  return async (_req: v1.StreamPodSandboxMetricsRequest__Output, send: (r: v1.StreamPodSandboxMetricsResponse) => Promise<void>): Promise<void> => {
    const all = (await pods.stats.listSandboxes()).map(podSandboxMetrics);
    for (let i = 0; i < all.length; i += BATCH) await send({ pod_sandbox_metrics: all.slice(i, i + BATCH) });
  };
}
