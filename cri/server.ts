// Wires the CRI v1 RuntimeService and ImageService onto one grpc-js server. Every rpc of the
// proto gets a handler: the implemented ones here, and for the rest an UNIMPLEMENTED answer that
// says so, through the same instrument wrapper.
import * as grpc from '@grpc/grpc-js';
import { loadCri } from './proto/load.js';
import { serverStream, unary, unimplemented, type InstrumentOptions, type Observer } from './instrument.js';
import type { ImageService } from '../images/service.js';
import { version } from './runtime/version.js';
import { status, type StatusSource } from './runtime/status.js';
import { runtimeConfig } from './runtime/runtime-config.js';
import { pullImage } from './image/image-pull.js';
import { imageStatus } from './image/image-status.js';
import { listImages, streamImages } from './image/image-list.js';
import { removeImage } from './image/image-remove.js';
import { imageFsInfo } from './image/image-fs-info.js';
import type { PodService } from '../pod/service.js';
import type { StreamingServer } from './streaming/server.js';
import { attach, exec, portForward } from './runtime/container-exec.js';
import { runPodSandbox } from './runtime/sandbox-run.js';
import { stopPodSandbox } from './runtime/sandbox-stop.js';
import { removePodSandbox } from './runtime/sandbox-remove.js';
import { podSandboxStatus } from './runtime/sandbox-status.js';
import { listPodSandbox, streamPodSandboxes } from './runtime/sandbox-list.js';
import { createContainer } from './runtime/container-create.js';
import { startContainer } from './runtime/container-start.js';
import { stopContainer } from './runtime/container-stop.js';
import { removeContainer } from './runtime/container-remove.js';
import { containerStatus } from './runtime/container-status.js';
import { listContainers, streamContainers } from './runtime/container-list.js';
import { execSync } from './runtime/container-exec-sync.js';
import { reopenContainerLog } from './runtime/container-reopen-log.js';
import { getContainerEvents } from './runtime/container-events.js';
import { updateContainerResources } from './runtime/container-update.js';
import { updatePodSandboxResources } from './runtime/sandbox-update.js';
import { containerStats, listContainerStats, streamContainerStats } from './runtime/container-stats.js';
import { listPodSandboxStats, podSandboxStats, streamPodSandboxStats } from './runtime/sandbox-stats.js';
import { listMetricDescriptors, listPodSandboxMetrics, streamPodSandboxMetrics } from './runtime/sandbox-metrics.js';

/** kubelet sends and accepts up to 16 MiB per message. */
export const MAX_MESSAGE_BYTES = 16 << 20;

export interface CriServerDeps {
  images: ImageService;
  pods: PodService;
  status: StatusSource;
  cgroupDriver: () => 'cgroupfs' | 'systemd';
  isReady: () => boolean;
  /** Serves Exec/Attach/PortForward's URLs; without it those rpcs answer UNIMPLEMENTED. */
  streaming?: StreamingServer;
  observer?: Observer;
}

type AnyHandler = (req: never, ...rest: never[]) => Promise<unknown>;
interface Impl {
  kind: 'unary' | 'stream';
  fn: AnyHandler;
}

function build(
  serviceName: string,
  definition: grpc.ServiceDefinition,
  implemented: Record<string, Impl>,
  opts: InstrumentOptions,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const label = `${serviceName}/${name}`;
    const impl = implemented[name];
    if (impl && impl.kind === 'stream' !== method.responseStream) throw new Error(`${label}: handler kind does not match the proto`);
    if (method.responseStream) {
      const fn = impl?.fn ?? unimplemented(serviceName, name);
      out[name] = serverStream(label, fn as Parameters<typeof serverStream>[1], opts) as grpc.UntypedHandleCall;
    } else {
      const fn = impl?.fn ?? unimplemented(serviceName, name);
      out[name] = unary(label, fn as Parameters<typeof unary>[1], opts) as grpc.UntypedHandleCall;
    }
  }
  for (const name of Object.keys(implemented)) {
    if (!(name in definition)) throw new Error(`${serviceName}/${name}: no such rpc in the proto`);
  }
  return out;
}

const u = (fn: AnyHandler): Impl => ({ kind: 'unary', fn });
const s = (fn: AnyHandler): Impl => ({ kind: 'stream', fn });

export function createCriServer(deps: CriServerDeps): grpc.Server {
  const cri = loadCri();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  const opts: InstrumentOptions = { isReady: deps.isReady, ...(deps.observer ? { observer: deps.observer } : {}) };
  server.addService(
    cri.RuntimeService.service,
    build(
      'RuntimeService',
      cri.RuntimeService.service,
      {
        Version: u(version()),
        Status: u(status(deps.status)),
        RuntimeConfig: u(runtimeConfig(deps.cgroupDriver)),
        RunPodSandbox: u(runPodSandbox(deps.pods)),
        StopPodSandbox: u(stopPodSandbox(deps.pods)),
        RemovePodSandbox: u(removePodSandbox(deps.pods)),
        PodSandboxStatus: u(podSandboxStatus(deps.pods)),
        ListPodSandbox: u(listPodSandbox(deps.pods)),
        StreamPodSandboxes: s(streamPodSandboxes(deps.pods)),
        CreateContainer: u(createContainer(deps.pods)),
        StartContainer: u(startContainer(deps.pods)),
        StopContainer: u(stopContainer(deps.pods)),
        RemoveContainer: u(removeContainer(deps.pods)),
        ContainerStatus: u(containerStatus(deps.pods)),
        ListContainers: u(listContainers(deps.pods)),
        StreamContainers: s(streamContainers(deps.pods)),
        ExecSync: u(execSync(deps.pods)),
        ...(deps.streaming
          ? {
              Exec: u(exec(deps.pods, deps.streaming)),
              Attach: u(attach(deps.pods, deps.streaming)),
              PortForward: u(portForward(deps.pods, deps.streaming)),
            }
          : {}),
        ReopenContainerLog: u(reopenContainerLog(deps.pods)),
        UpdateContainerResources: u(updateContainerResources(deps.pods)),
        UpdatePodSandboxResources: u(updatePodSandboxResources(deps.pods)),
        ContainerStats: u(containerStats(deps.pods)),
        ListContainerStats: u(listContainerStats(deps.pods)),
        StreamContainerStats: s(streamContainerStats(deps.pods)),
        PodSandboxStats: u(podSandboxStats(deps.pods)),
        ListPodSandboxStats: u(listPodSandboxStats(deps.pods)),
        StreamPodSandboxStats: s(streamPodSandboxStats(deps.pods)),
        ListMetricDescriptors: u(listMetricDescriptors()),
        ListPodSandboxMetrics: u(listPodSandboxMetrics(deps.pods)),
        StreamPodSandboxMetrics: s(streamPodSandboxMetrics(deps.pods)),
        GetContainerEvents: s(getContainerEvents(deps.pods)),
      },
      opts,
    ),
  );
  server.addService(
    cri.ImageService.service,
    build(
      'ImageService',
      cri.ImageService.service,
      {
        PullImage: u(pullImage(deps.images)),
        ImageStatus: u(imageStatus(deps.images)),
        ListImages: u(listImages(deps.images)),
        StreamImages: s(streamImages(deps.images)),
        RemoveImage: u(removeImage(deps.images)),
        ImageFsInfo: u(imageFsInfo(deps.images)),
      },
      opts,
    ),
  );
  return server;
}

/** Binds to a unix socket path; resolves once listening. */
export function listenUnix(server: grpc.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
}
