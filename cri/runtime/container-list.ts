// ListContainers and StreamContainers, with every filter: id (or prefix), state, pod sandbox id
// (or prefix), label selector.
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { matchLabels, toContainer } from './convert.js';

const BATCH = 256;

async function filtered(pods: PodService, f: v1.ContainerFilter__Output | null): Promise<v1.Container[]> {
  const recs = pods.containers
    .list()
    .filter((c) => !f?.id || c.id.startsWith(f.id))
    .filter((c) => !f?.pod_sandbox_id || c.sandboxId.startsWith(f.pod_sandbox_id));
  const views = await Promise.all(recs.map((r) => pods.containers.view(r)));
  return views
    .filter((v) => !f?.state || v.state === String(f.state.state))
    .filter((v) => matchLabels(v.config.labels, f?.label_selector))
    .map(toContainer);
}

export function listContainers(pods: PodService) {
  return async (req: v1.ListContainersRequest__Output): Promise<v1.ListContainersResponse> => ({ containers: await filtered(pods, req.filter) });
}

export function streamContainers(pods: PodService) {
  return async (req: v1.StreamContainersRequest__Output, send: (r: v1.StreamContainersResponse) => Promise<void>): Promise<void> => {
    const all = await filtered(pods, req.filter);
    for (let i = 0; i < all.length; i += BATCH) await send({ containers: all.slice(i, i + BATCH) });
  };
}
