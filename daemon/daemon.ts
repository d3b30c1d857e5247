// skiffd's life: take the root, state dir and socket exclusively, open the stores (which clean
// up what a crash left), serve CRI on the socket, and on shutdown stop accepting calls, finish
// or cancel the ones in flight, and remove the socket.
import { chmod, readFile, unlink } from 'node:fs/promises';
import type * as grpc from '@grpc/grpc-js';
import { errnoCode } from '../common/errors.js';
import { logger, setLogLevel } from '../common/log.js';
import { skiffVersion } from '../common/version.js';
import { ImageService } from '../images/service.js';
import { createCriServer, listenUnix } from '../cri/server.js';
import { PodNetwork } from '../network/service.js';
import { PodStreamingBackend } from '../cri/streaming/pod-backend.js';
import { StreamingServer } from '../cri/streaming/server.js';
import { PodService } from '../pod/service.js';
import { hostCgroupLayout } from '../pod/runtime/cgroup-layout.js';
import type { RuntimeHandlerConfig } from '../pod/runtime/oci.js';
import { nativeBinary } from '../native/native.js';
import { join } from 'node:path';
import type { DaemonConfig } from './config.js';
import { claimSocket, lockDir, type Held } from './exclusive.js';
import { createMetrics } from '../metrics/registry.js';
import { MetricsServer } from '../metrics/server.js';
import { podSampleSource, podStateSource } from './metrics-sources.js';
import { handlerFeatures } from '../pod/runtime/features.js';

const log = logger('daemon');

export class Daemon {
  private server: grpc.Server | undefined;
  private held: Held[] = [];
  private ready = false;
  images: ImageService | undefined;
  pods: PodService | undefined;
  streaming: StreamingServer | undefined;
  metrics: MetricsServer | undefined;

  constructor(readonly config: DaemonConfig) {}

  async start(): Promise<void> {
    const cfg = this.config;
    setLogLevel(cfg.logLevel);
    try {
      this.held.push(await lockDir(cfg.root, 'root', undefined));
      this.held.push(await lockDir(cfg.state, 'state dir', undefined));
      const socketState = await claimSocket(cfg.socket);
      if (socketState === 'replaced-stale') log.warn({ socket: cfg.socket }, 'replaced a stale socket left by an earlier skiffd');
      // Made first, so that image pulls and CRI calls are counted; its sources read the pod service once it is open.
      const metrics = cfg.metrics.address ? createMetrics({ samples: podSampleSource(() => this.pods), states: podStateSource(() => this.pods) }) : undefined;
      const images = await ImageService.open({
        root: cfg.root,
        hosts: { mirrors: cfg.registry.mirrors, insecure: cfg.registry.insecure },
        progressTimeoutMs: cfg.images.pullProgressTimeoutMs,
        maxConcurrentDownloads: cfg.images.maxConcurrentDownloads,
        registryRetries: cfg.registry.retries,
        userAgent: `skiff/${skiffVersion()}`,
        gcAtOpen: false,
        ...(metrics ? { onPullEnd: (end) => metrics.runtime.onPull(end) } : {}),
      });
      this.images = images;
      const cgroups = await hostCgroupLayout();
      const ns = nativeBinary('skiff-ns');
      // crun refuses hybrid cgroup hosts; in a private mount namespace without the v2 mount it works.
      const wrapper = cgroups.mode === 'hybrid' ? [ns, 'runtime', ...cgroups.v2Mounts.flatMap((m) => ['--hide-mount', m]), '--'] : [];
      const handlers: RuntimeHandlerConfig[] = Object.entries(cfg.runtime.handlers).map(([name, h]) => ({
        name,
        kind: h.kind,
        binary: h.path,
        root: join(cfg.state, 'runtime', name),
        wrapper: h.kind === 'crun' ? wrapper : [],
      }));
      const network = new PodNetwork({ ...cfg.network, dataDir: join(cfg.root, 'network') });
      const pods = await PodService.open({
        network,
        rootDir: cfg.root,
        stateDir: cfg.state,
        images,
        handlers,
        defaultHandler: cfg.runtime.defaultHandler,
        native: { ns, pause: nativeBinary('skiff-pause'), monitor: nativeBinary('skiff-monitor') },
        cgroups,
        cgroupDriver: cfg.cgroupDriver,
        cdiSpecDirs: cfg.cdi.specDirs,
      });
      this.pods = pods;
      const streaming = new StreamingServer(new PodStreamingBackend(pods), {
        address: cfg.streaming.address,
        tokenTtlMs: cfg.streaming.tokenTtlMs,
        streamIdleTimeoutMs: cfg.streaming.idleTimeoutMs,
        ...(cfg.streaming.tlsCert && cfg.streaming.tlsKey
          ? { tls: { cert: await readFile(cfg.streaming.tlsCert), key: await readFile(cfg.streaming.tlsKey) } }
          : {}),
      });
      await streaming.start();
      this.streaming = streaming;
      log.info({ url: streaming.url }, 'streaming server listening');
      if (metrics) {
        this.metrics = new MetricsServer(metrics, cfg.metrics.address);
        await this.metrics.start();
      }
      // Only now does image GC know which snapshots running containers still have mounted.
      await images.gc();
      this.server = createCriServer({
        images,
        pods,
        cgroupDriver: () => cfg.cgroupDriver,
        isReady: () => this.ready,
        streaming,
        ...(metrics ? { observer: metrics.runtime } : {}),
        status: {
          config: () => cfg,
          runtimeReady: () => ({ ready: this.ready, reason: 'Starting', message: 'skiffd is starting' }),
          networkReady: () => network.status(),
          handlers: () => Object.keys(cfg.runtime.handlers),
          handlerFeatures: (name) => handlerFeatures({ kind: cfg.runtime.handlers[name].kind, binary: cfg.runtime.handlers[name].path }),
        },
      });
      await listenUnix(this.server, cfg.socket);
      await chmod(cfg.socket, 0o660);
      this.ready = true;
      log.info({ socket: cfg.socket, root: cfg.root, state: cfg.state, version: skiffVersion() }, 'skiffd ready');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Graceful stop: in-flight calls get `graceMs` to finish, then are cancelled. */
  async stop(graceMs = 5000): Promise<void> {
    this.ready = false;
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await unlink(this.config.socket).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') log.warn({ err }, 'could not remove socket');
      });
    }
    await this.streaming?.stop();
    this.streaming = undefined;
    await this.metrics?.stop();
    this.metrics = undefined;
    for (const h of this.held.splice(0)) h.release();
  }
}
