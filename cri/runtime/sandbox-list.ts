// ListPodSandbox and StreamPodSandboxes: every sandbox, or those matching the filter (id or
// unique id prefix, state, label selector).
import type * as v1 from '../gen/v1.js';
import type { PodService } from '../../pod/service.js';
import { matchLabels, toPodSandbox } from './convert.js';

const BATCH = 256;

async function filtered(pods: PodService, f: v1.PodSandboxFilter__Output | null): Promise<v1.PodSandbox[]> {
  const recs = pods.sandboxes.list().filter((s) => !f?.id || s.id.startsWith(f.id));
  const views = await Promise.all(recs.map((r) => pods.sandboxes.view(r)));
  return views
    .filter((v) => !f?.state || v.state === String(f.state.state))
    .filter((v) => matchLabels(v.config.labels, f?.label_selector))
    .map(toPodSandbox);
}

export function listPodSandbox(pods: PodService) {
  return async (req: v1.ListPodSandboxRequest__Output): Promise<v1.ListPodSandboxResponse> => ({ items: await filtered(pods, req.filter) });
}

export function streamPodSandboxes(pods: PodService) {
  return async (req: v1.StreamPodSandboxesRequest__Output, send: (r: v1.StreamPodSandboxesResponse) => Promise<void>): Promise<void> => {
    const all = await filtered(pods, req.filter);
    for (let i = 0; i < all.length; i += BATCH) await send({ pod_sandboxes: all.slice(i, i + BATCH) });
  };
}
