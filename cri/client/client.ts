// The typed CRI v1 client: one promise method per unary rpc of RuntimeService and ImageService and
// one async iterable per server-streaming rpc, over grpc-js to skiffd's unix socket. It speaks the
// proto and nothing else, like crictl's cri-client, so the CLI and the e2e tests see what kubelet sees.
import * as grpc from '@grpc/grpc-js';
import { SkiffError } from '../../common/errors.js';
import { loadCri } from '../proto/load.js';
import type { RuntimeServiceClient } from '../gen/runtime/v1/RuntimeService.js';
import type { ImageServiceClient } from '../gen/runtime/v1/ImageService.js';
import type * as v1 from '../gen/v1.js';

export const DEFAULT_ENDPOINT = 'unix:///run/skiff/skiff.sock';

/** kubelet's limit (16 MiB) in both directions: large ListContainers replies fail beyond the default 4 MiB. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface CriClientOptions {
  /** RuntimeService endpoint: `unix:///path`, `unix:path` or a bare socket path. */
  runtimeEndpoint?: string;
  /** ImageService endpoint; the runtime endpoint when unset, as in crictl. */
  imageEndpoint?: string;
}

export interface CallOptions {
  /** Deadline of this call in milliseconds; 0 or unset means none. */
  timeoutMs?: number;
  /** Cancels the call (it then fails with CANCELLED). */
  signal?: AbortSignal;
}

/**
 * Turns the endpoint forms crictl accepts into a grpc-js target. Only unix sockets: CRI over TCP
 * would expose container control to the network without authentication.
 */
export function normalizeEndpoint(endpoint: string): string {
  const trimmed = endpoint.trim();
  if (trimmed === '') throw new SkiffError('SKIFF_INVALID_ARGUMENT', 'endpoint is empty');
  if (trimmed.startsWith('unix://')) {
    const path = trimmed.slice('unix://'.length);
    if (!path.startsWith('/')) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `endpoint ${endpoint}: unix:// needs an absolute path`);
    return `unix://${path}`;
  }
  if (trimmed.startsWith('unix:')) return trimmed;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `endpoint ${endpoint}: only unix sockets are supported`);
  }
  return trimmed.startsWith('/') ? `unix://${trimmed}` : `unix:${trimmed}`;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
};

type Start<Res> = (options: grpc.CallOptions, done: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

export class CriClient {
  readonly runtimeEndpoint: string;
  readonly imageEndpoint: string;
  private readonly runtime: RuntimeServiceClient;
  private readonly image: ImageServiceClient;

  constructor(options: CriClientOptions = {}) {
    const cri = loadCri();
    this.runtimeEndpoint = normalizeEndpoint(options.runtimeEndpoint ?? DEFAULT_ENDPOINT);
    this.imageEndpoint = normalizeEndpoint(options.imageEndpoint ?? options.runtimeEndpoint ?? DEFAULT_ENDPOINT);
    const insecure = grpc.credentials.createInsecure();
    this.runtime = new cri.RuntimeService(this.runtimeEndpoint, insecure, CHANNEL_OPTIONS);
    this.image = new cri.ImageService(this.imageEndpoint, insecure, CHANNEL_OPTIONS);
  }

  /** Closes both channels; calls still in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.runtime.close();
    this.image.close();
  }

  // ---- RuntimeService ----
  version(req: v1.VersionRequest = {}, o?: CallOptions): Promise<v1.VersionResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.Version(req, opts, done));
  }
  runPodSandbox(req: v1.RunPodSandboxRequest, o?: CallOptions): Promise<v1.RunPodSandboxResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.RunPodSandbox(req, opts, done));
  }
  stopPodSandbox(req: v1.StopPodSandboxRequest, o?: CallOptions): Promise<v1.StopPodSandboxResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.StopPodSandbox(req, opts, done));
  }
  removePodSandbox(req: v1.RemovePodSandboxRequest, o?: CallOptions): Promise<v1.RemovePodSandboxResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.RemovePodSandbox(req, opts, done));
  }
  podSandboxStatus(req: v1.PodSandboxStatusRequest, o?: CallOptions): Promise<v1.PodSandboxStatusResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.PodSandboxStatus(req, opts, done));
  }
  listPodSandbox(req: v1.ListPodSandboxRequest = {}, o?: CallOptions): Promise<v1.ListPodSandboxResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ListPodSandbox(req, opts, done));
  }
  createContainer(req: v1.CreateContainerRequest, o?: CallOptions): Promise<v1.CreateContainerResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.CreateContainer(req, opts, done));
  }
  startContainer(req: v1.StartContainerRequest, o?: CallOptions): Promise<v1.StartContainerResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.StartContainer(req, opts, done));
  }
  stopContainer(req: v1.StopContainerRequest, o?: CallOptions): Promise<v1.StopContainerResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.StopContainer(req, opts, done));
  }
  removeContainer(req: v1.RemoveContainerRequest, o?: CallOptions): Promise<v1.RemoveContainerResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.RemoveContainer(req, opts, done));
  }
  listContainers(req: v1.ListContainersRequest = {}, o?: CallOptions): Promise<v1.ListContainersResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ListContainers(req, opts, done));
  }
  containerStatus(req: v1.ContainerStatusRequest, o?: CallOptions): Promise<v1.ContainerStatusResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ContainerStatus(req, opts, done));
  }
  updateContainerResources(
    req: v1.UpdateContainerResourcesRequest,
    o?: CallOptions,
  ): Promise<v1.UpdateContainerResourcesResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.UpdateContainerResources(req, opts, done));
  }
  reopenContainerLog(req: v1.ReopenContainerLogRequest, o?: CallOptions): Promise<v1.ReopenContainerLogResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ReopenContainerLog(req, opts, done));
  }
  execSync(req: v1.ExecSyncRequest, o?: CallOptions): Promise<v1.ExecSyncResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ExecSync(req, opts, done));
  }
  exec(req: v1.ExecRequest, o?: CallOptions): Promise<v1.ExecResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.Exec(req, opts, done));
  }
  attach(req: v1.AttachRequest, o?: CallOptions): Promise<v1.AttachResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.Attach(req, opts, done));
  }
  portForward(req: v1.PortForwardRequest, o?: CallOptions): Promise<v1.PortForwardResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.PortForward(req, opts, done));
  }
  containerStats(req: v1.ContainerStatsRequest, o?: CallOptions): Promise<v1.ContainerStatsResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ContainerStats(req, opts, done));
  }
  listContainerStats(req: v1.ListContainerStatsRequest = {}, o?: CallOptions): Promise<v1.ListContainerStatsResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ListContainerStats(req, opts, done));
  }
  podSandboxStats(req: v1.PodSandboxStatsRequest, o?: CallOptions): Promise<v1.PodSandboxStatsResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.PodSandboxStats(req, opts, done));
  }
  listPodSandboxStats(
    req: v1.ListPodSandboxStatsRequest = {},
    o?: CallOptions,
  ): Promise<v1.ListPodSandboxStatsResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ListPodSandboxStats(req, opts, done));
  }
  updateRuntimeConfig(req: v1.UpdateRuntimeConfigRequest, o?: CallOptions): Promise<v1.UpdateRuntimeConfigResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.UpdateRuntimeConfig(req, opts, done));
  }
  status(req: v1.StatusRequest = {}, o?: CallOptions): Promise<v1.StatusResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.Status(req, opts, done));
  }
  checkpointContainer(req: v1.CheckpointContainerRequest, o?: CallOptions): Promise<v1.CheckpointContainerResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.CheckpointContainer(req, opts, done));
  }
  listMetricDescriptors(
    req: v1.ListMetricDescriptorsRequest = {},
    o?: CallOptions,
  ): Promise<v1.ListMetricDescriptorsResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ListMetricDescriptors(req, opts, done));
  }
  listPodSandboxMetrics(
    req: v1.ListPodSandboxMetricsRequest = {},
    o?: CallOptions,
  ): Promise<v1.ListPodSandboxMetricsResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.ListPodSandboxMetrics(req, opts, done));
  }
  runtimeConfig(req: v1.RuntimeConfigRequest = {}, o?: CallOptions): Promise<v1.RuntimeConfigResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.RuntimeConfig(req, opts, done));
  }
  updatePodSandboxResources(
    req: v1.UpdatePodSandboxResourcesRequest,
    o?: CallOptions,
  ): Promise<v1.UpdatePodSandboxResourcesResponse__Output> {
    return this.unary(o, (opts, done) => this.runtime.UpdatePodSandboxResources(req, opts, done));
  }

  // RuntimeService, server streaming
  streamPodSandboxes(req: v1.StreamPodSandboxesRequest = {}, o?: CallOptions): AsyncIterable<v1.StreamPodSandboxesResponse__Output> {
    return this.stream(o, (opts) => this.runtime.StreamPodSandboxes(req, opts));
  }
  streamContainers(req: v1.StreamContainersRequest = {}, o?: CallOptions): AsyncIterable<v1.StreamContainersResponse__Output> {
    return this.stream(o, (opts) => this.runtime.StreamContainers(req, opts));
  }
  streamContainerStats(
    req: v1.StreamContainerStatsRequest = {},
    o?: CallOptions,
  ): AsyncIterable<v1.StreamContainerStatsResponse__Output> {
    return this.stream(o, (opts) => this.runtime.StreamContainerStats(req, opts));
  }
  streamPodSandboxStats(
    req: v1.StreamPodSandboxStatsRequest = {},
    o?: CallOptions,
  ): AsyncIterable<v1.StreamPodSandboxStatsResponse__Output> {
    return this.stream(o, (opts) => this.runtime.StreamPodSandboxStats(req, opts));
  }
  getContainerEvents(req: v1.GetEventsRequest = {}, o?: CallOptions): AsyncIterable<v1.ContainerEventResponse__Output> {
    return this.stream(o, (opts) => this.runtime.GetContainerEvents(req, opts));
  }
  streamPodSandboxMetrics(
    req: v1.StreamPodSandboxMetricsRequest = {},
    o?: CallOptions,
  ): AsyncIterable<v1.StreamPodSandboxMetricsResponse__Output> {
    return this.stream(o, (opts) => this.runtime.StreamPodSandboxMetrics(req, opts));
  }

  // ---- ImageService ----
  listImages(req: v1.ListImagesRequest = {}, o?: CallOptions): Promise<v1.ListImagesResponse__Output> {
    return this.unary(o, (opts, done) => this.image.ListImages(req, opts, done));
  }
  imageStatus(req: v1.ImageStatusRequest, o?: CallOptions): Promise<v1.ImageStatusResponse__Output> {
    return this.unary(o, (opts, done) => this.image.ImageStatus(req, opts, done));
  }
  pullImage(req: v1.PullImageRequest, o?: CallOptions): Promise<v1.PullImageResponse__Output> {
    return this.unary(o, (opts, done) => this.image.PullImage(req, opts, done));
  }
  removeImage(req: v1.RemoveImageRequest, o?: CallOptions): Promise<v1.RemoveImageResponse__Output> {
    return this.unary(o, (opts, done) => this.image.RemoveImage(req, opts, done));
  }
  imageFsInfo(req: v1.ImageFsInfoRequest = {}, o?: CallOptions): Promise<v1.ImageFsInfoResponse__Output> {
    return this.unary(o, (opts, done) => this.image.ImageFsInfo(req, opts, done));
  }
  streamImages(req: v1.StreamImagesRequest = {}, o?: CallOptions): AsyncIterable<v1.StreamImagesResponse__Output> {
    return this.stream(o, (opts) => this.image.StreamImages(req, opts));
  }

  // Rejects with grpc-js's ServiceError as it is (code, details, metadata): callers and the CLI
  // decide what a status means, and crictl-style messages need the original code.
  private unary<Res>(o: CallOptions | undefined, start: Start<Res>): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (o?.signal?.aborted) {
        reject(cancelledError());
        return;
      }
      const onAbort = (): void => call.cancel();
      const call = start(grpcOptions(o), (err, res) => {
        o?.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res as Res);
      });
      o?.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // The call starts when iteration starts, and leaving the loop early cancels it, so an abandoned
  // iterator never keeps a stream open on the daemon.
  private stream<Res>(o: CallOptions | undefined, start: (options: grpc.CallOptions) => grpc.ClientReadableStream<Res>): AsyncIterable<Res> {
    return {
      async *[Symbol.asyncIterator](): AsyncGenerator<Res> {
        if (o?.signal?.aborted) throw cancelledError();
        const call = start(grpcOptions(o));
        const onAbort = (): void => call.cancel();
        o?.signal?.addEventListener('abort', onAbort, { once: true });
        let finished = false;
        try {
          for await (const message of call) yield message as Res;
          finished = true;
        } finally {
          o?.signal?.removeEventListener('abort', onAbort);
          if (!finished) {
            // cancel() reports CANCELLED as an 'error' event nobody reads any more.
            call.on('error', () => undefined);
            call.cancel();
          }
        }
      },
    };
  }
}

function grpcOptions(o: CallOptions | undefined): grpc.CallOptions {
  return o?.timeoutMs ? { deadline: Date.now() + o.timeoutMs } : {};
}

/** What grpc-js reports for a cancelled call, for calls cancelled before they started. */
function cancelledError(): grpc.ServiceError {
  return Object.assign(new Error(`${grpc.status.CANCELLED} CANCELLED: Cancelled on client`), {
    code: grpc.status.CANCELLED,
    details: 'Cancelled on client',
    metadata: new grpc.Metadata(),
  });
}
