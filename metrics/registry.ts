// skiffd's metrics registry: prom-client's default process_* and nodejs_* metrics, skiff's runtime
// metrics and the cAdvisor-compatible container_* series. One registry per daemon (never
// prom-client's global one), so that tests can build as many as they like.
import { Registry, collectDefaultMetrics } from 'prom-client';
import { ContainerMetrics } from './container-metrics.js';
import { registerRuntimeMetrics, type RuntimeMetrics } from './runtime-metrics.js';
import { SampleCache, type SampleCacheOptions } from './sample-cache.js';
import type { SampleSource, StateSource } from './source.js';

/** What the /metrics server serves: text in the Prometheus format, and its content type. */
export interface Exposition {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface SkiffMetrics extends Exposition {
  registry: Registry;
  runtime: RuntimeMetrics;
  cache: SampleCache;
}

export function createMetrics(sources: { samples: SampleSource; states: StateSource }, cacheOptions: SampleCacheOptions = {}): SkiffMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const runtime = registerRuntimeMetrics(registry, sources.states);
  const cache = new SampleCache(sources.samples, cacheOptions);
  const containers = new ContainerMetrics(cache, registry);
  return {
    registry,
    runtime,
    cache,
    contentType: registry.contentType,
    // The registry's families, then the container_* ones; no family is in both.
    async metrics() {
      const [own, container] = await Promise.all([registry.metrics(), containers.text()]);
      return own + container;
    },
  };
}
