// ContainerStats, ListContainerStats and StreamContainerStats: the pod service's stats sampler,
// filtered by id (or prefix), pod sandbox id (or prefix) and label selector. Every container is
// listed, as containerd lists them; one that does not run has its writable layer but no cpu/memory.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { requireId } from './ids.js';

const BATCH = 256;

export function containerStats(pods: PodService) {
  return async (req: v1.ContainerStatsRequest__Output): Promise<v1.ContainerStatsResponse> => {
    const sample = await pods.stats.container(requireId(req.container_id, 'ContainerStats', 'container_id'));
    return { stats: sample.stats };
  };
}

export function listContainerStats(pods: PodService) {
  return async (req: v1.ListContainerStatsRequest__Output): Promise<v1.ListContainerStatsResponse> => ({
    stats: (await pods.stats.listContainers(req.filter)).map((s) => s.stats),
  });
}

export function streamContainerStats(pods: PodService) {
  return async (req: v1.StreamContainerStatsRequest__Output, send: (r: v1.StreamContainerStatsResponse) => Promise<void>): Promise<void> => {
    const all = (await pods.stats.listContainers(req.filter)).map((s) => s.stats);
    for (let i = 0; i < all.length; i += BATCH) await send({ container_stats: all.slice(i, i + BATCH) });
  };
}
