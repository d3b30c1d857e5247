// What the pod and container services share: the stores, the directories, the OCI runtimes by
// handler, the native helpers, the host's cgroup layout, the images, and the event stream.
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { SkiffError } from '../common/errors.js';
import type { ImageService } from '../images/service.js';
import type { PodNetwork } from '../network/service.js';
import type { ContainerRecord, SandboxRecord } from './records.js';
import type { OciRuntime } from './runtime/oci.js';
import type { CgroupLayout } from './runtime/cgroup-layout.js';
import type { CgroupDriver } from './cgroups/naming.js';
import type { RecordStore } from './store/record-store.js';
import type { NameRegistry } from './store/names.js';
import { KeyedRWLock } from './store/rwlock.js';
import { DEFAULT_CDI_SPEC_DIRS } from './cdi/registry.js';

export interface NativeHelpers {
  ns: string;
  pause: string;
  monitor: string;
}

/** A lifecycle event, for kubelet's evented PLEG (GetContainerEvents). */
export interface PodEvent {
  type: 'CONTAINER_CREATED_EVENT' | 'CONTAINER_STARTED_EVENT' | 'CONTAINER_STOPPED_EVENT' | 'CONTAINER_DELETED_EVENT';
  containerId: string;
  sandboxId: string;
  createdAt: string;
}

export class PodContext {
  readonly events = new EventEmitter();
  /** Per sandbox: container create/start shared, pod stop/remove exclusive. */
  readonly sandboxLocks = new KeyedRWLock();

  constructor(
    readonly rootDir: string,
    readonly stateDir: string,
    readonly sandboxes: RecordStore<SandboxRecord>,
    readonly containers: RecordStore<ContainerRecord>,
    readonly sandboxNames: NameRegistry,
    readonly containerNames: NameRegistry,
    readonly runtimes: Map<string, OciRuntime>,
    readonly defaultHandler: string,
    readonly native: NativeHelpers,
    readonly cgroups: CgroupLayout,
    readonly images: ImageService,
    readonly network: PodNetwork,
    /** How pod and container cgroups are named (pod/cgroups/naming.ts). */
    readonly cgroupDriver: CgroupDriver = 'cgroupfs',
    /** CDI spec dirs, lowest priority first (pod/cdi/registry.ts). */
    readonly cdiSpecDirs: readonly string[] = DEFAULT_CDI_SPEC_DIRS,
  ) {
    this.events.setMaxListeners(0);
  }

  runtime(handler: string): OciRuntime {
    const name = handler || this.defaultHandler;
    const rt = this.runtimes.get(name);
    if (!rt) {
      throw new SkiffError(
        'SKIFF_INVALID_ARGUMENT',
        `runtime handler "${handler}" is not configured (known: ${[...this.runtimes.keys()].join(', ')})`,
      );
    }
    return rt;
  }

  sandboxDir(id: string): string {
    return join(this.stateDir, 'sandboxes', id);
  }

  netnsPath(id: string): string {
    return join(this.stateDir, 'netns', id);
  }

  bundleDir(id: string): string {
    return join(this.stateDir, 'containers', id);
  }

  layerDir(id: string): string {
    return join(this.rootDir, 'containers', id);
  }

  emit(ev: PodEvent): void {
    this.events.emit('event', ev);
  }
}
