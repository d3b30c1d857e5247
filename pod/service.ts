// The pod service: what skiff's CRI RuntimeService asks of pod/ — sandboxes and containers, their
// stop/remove ordering, and recovery at start. Knows nothing of gRPC; takes CRI config messages.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { logger } from '../common/log.js';
import type { ImageService } from '../images/service.js';
import type { PodNetwork } from '../network/service.js';
import { Containers } from './containers.js';
import { PodContext, type NativeHelpers } from './context.js';
import { CONTAINER_RECORD_VERSION, SANDBOX_RECORD_VERSION, nowNanos, type ContainerRecord, type SandboxRecord } from './records.js';
import { recover, type RecoveryReport } from './recover.js';
import { updateSandboxResources } from './resources-update.js';
import { SkiffError } from '../common/errors.js';
import type { CgroupLayout } from './runtime/cgroup-layout.js';
import type { CgroupDriver } from './cgroups/naming.js';
import { OciRuntime, type RuntimeHandlerConfig } from './runtime/oci.js';
import { Sandboxes } from './sandboxes.js';
import { PodStats, contextSources } from './stats/sampler.js';
import { NameRegistry } from './store/names.js';
import { RecordStore } from './store/record-store.js';

const log = logger('pods');

export interface PodServiceOptions {
  network: PodNetwork;
  rootDir: string;
  stateDir: string;
  images: ImageService;
  handlers: RuntimeHandlerConfig[];
  defaultHandler: string;
  native: NativeHelpers;
  cgroups: CgroupLayout;
  /** cgroupfs unless given. */
  cgroupDriver?: CgroupDriver;
  /** CDI spec dirs, lowest priority first; /etc/cdi and /var/run/cdi unless given. */
  cdiSpecDirs?: string[];
}

export class PodService {
  readonly ctx: PodContext;
  readonly sandboxes: Sandboxes;
  readonly containers: Containers;
  /** The stats sampler: the CRI stats rpcs and /metrics read it. */
  readonly stats: PodStats;
  recovery: RecoveryReport | undefined;

  private constructor(opts: PodServiceOptions) {
    this.ctx = new PodContext(
      opts.rootDir,
      opts.stateDir,
      new RecordStore<SandboxRecord>(join(opts.rootDir, 'sandboxes'), 'sandbox', SANDBOX_RECORD_VERSION),
      new RecordStore<ContainerRecord>(join(opts.rootDir, 'container-records'), 'container', CONTAINER_RECORD_VERSION),
      new NameRegistry('sandbox'),
      new NameRegistry('container'),
      new Map(opts.handlers.map((h) => [h.name, new OciRuntime(h)])),
      opts.defaultHandler,
      opts.native,
      opts.cgroups,
      opts.images,
      opts.network,
      opts.cgroupDriver ?? 'cgroupfs',
      opts.cdiSpecDirs,
    );
    this.sandboxes = new Sandboxes(this.ctx);
    this.containers = new Containers(this.ctx, this.sandboxes);
    this.stats = new PodStats(contextSources(this.ctx));
  }

  static async open(opts: PodServiceOptions): Promise<PodService> {
    const svc = new PodService(opts);
    // Containers' snapshots stay while the containers do, whatever happens to their images.
    opts.images.setSnapshotUsers(() => svc.ctx.containers.list().flatMap((c) => c.snapshots ?? []));
    // An image mounted as a volume cannot be removed while its container exists.
    opts.images.setImageUsers(() => svc.ctx.containers.list().flatMap((c) => (c.imageVolumes ?? []).map((v) => ({ imageId: v.imageId, user: `container ${c.id} (image volume "${v.containerPath}")` }))));
    svc.recovery = await recover(svc.ctx, svc.sandboxes, svc.containers);
    return svc;
  }

  runSandbox(config: v1.PodSandboxConfig__Output, handler: string): Promise<string> {
    return this.sandboxes.run(config, handler);
  }

  /** StopPodSandbox: every container killed, pause and pod resources released. Unknown: done. */
  async stopSandbox(idOrPrefix: string): Promise<void> {
    const found = this.sandboxes.find(idOrPrefix);
    if (!found || found.phase === 'creating') return;
    await this.ctx.sandboxLocks.write(found.id, () => this.stopLocked(found.id));
  }

  private async stopLocked(id: string): Promise<void> {
    const rec = this.ctx.sandboxes.get(id);
    if (!rec) return;
    for (const c of this.containers.list().filter((c) => c.sandboxId === rec.id)) await this.containers.stop(c.id, 0);
    await this.sandboxes.tearDown(rec);
    if (rec.phase !== 'notready') {
      await this.ctx.sandboxes.update(rec.id, (r) => {
        r.phase = 'notready';
      });
      this.ctx.emit({ type: 'CONTAINER_STOPPED_EVENT', containerId: rec.id, sandboxId: rec.id, createdAt: nowNanos() });
    }
    log.info({ sandbox: rec.id }, 'sandbox stopped');
  }

  /** UpdatePodSandboxResources: checked and recorded (pod/resources-update.ts). Unknown: NOT_FOUND. */
  async updateSandboxResources(idOrPrefix: string, overhead: v1.LinuxContainerResources__Output | null, resources: v1.LinuxContainerResources__Output | null): Promise<void> {
    const found = this.sandboxes.find(idOrPrefix);
    if (!found) throw new SkiffError('SKIFF_NOT_FOUND', `sandbox "${idOrPrefix}" not found`);
    await this.ctx.sandboxLocks.read(found.id, () => updateSandboxResources(this.ctx, found, overhead, resources));
  }

  /** RemovePodSandbox: stops it if needed, removes its containers and everything else. Unknown: done. */
  async removeSandbox(idOrPrefix: string): Promise<void> {
    const found = this.sandboxes.find(idOrPrefix);
    if (!found || found.phase === 'creating') return;
    await this.ctx.sandboxLocks.write(found.id, () => this.removeLocked(found.id));
  }

  private async removeLocked(id: string): Promise<void> {
    const rec = this.ctx.sandboxes.get(id);
    if (!rec) return;
    await this.stopLocked(rec.id);
    for (const c of this.ctx.containers.list().filter((c) => c.sandboxId === rec.id)) await this.containers.remove(c.id);
    await rm(rec.dir, { recursive: true, force: true });
    await this.ctx.sandboxes.delete(rec.id);
    this.ctx.sandboxNames.release(rec.name, rec.id);
    this.ctx.emit({ type: 'CONTAINER_DELETED_EVENT', containerId: rec.id, sandboxId: rec.id, createdAt: nowNanos() });
    log.info({ sandbox: rec.id }, 'sandbox removed');
  }
}
