// GetContainerEvents: a stream of created/started/stopped/deleted events with the pod's status,
// for kubelet's evented PLEG. Events are sent as they happen; the stream ends when the client goes.
import type * as v1 from '../gen/v1.js';
import type { PodEvent } from '../../pod/context.js';
import type { PodService } from '../../pod/service.js';
import type { CallContext } from '../instrument.js';
import { toContainerStatus, toPodSandboxStatus } from './convert.js';

export function getContainerEvents(pods: PodService) {
  return async (_req: v1.GetEventsRequest__Output, send: (r: v1.ContainerEventResponse) => Promise<void>, ctx: CallContext): Promise<void> => {
    const queue: PodEvent[] = [];
    let wake: (() => void) | undefined;
    const onEvent = (ev: PodEvent): void => {
      queue.push(ev);
      wake?.();
    };
    pods.ctx.events.on('event', onEvent);
    try {
      while (!ctx.signal.aborted) {
        const ev = queue.shift();
        if (!ev) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          wake = undefined;
          continue;
        }
        const sandbox = pods.sandboxes.get(ev.sandboxId);
        const containers = await pods.containers.views(ev.sandboxId);
        await send({
          container_id: ev.containerId,
          container_event_type: ev.type,
          created_at: ev.createdAt,
          pod_sandbox_status: sandbox ? toPodSandboxStatus(await pods.sandboxes.view(sandbox)) : null,
          containers_statuses: containers.map((c) => toContainerStatus(c, pods.ctx.images.images.get(c.imageId))),
        });
      }
    } finally {
      pods.ctx.events.off('event', onEvent);
    }
  };
}
