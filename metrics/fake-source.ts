// Test support: a SampleSource whose sample the test sets, that counts its reads and can be made
// slow or failing on cue, and a StateSource over plain arrays.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CadvisorLabels, ContainerSample, Sample, SampleSource, StateSource } from './source.js';

export class FakeSampleSource implements SampleSource {
  reads = 0;
  /** Each read takes this long. */
  delayMs = 0;
  /** The next reads fail with this. */
  failWith: Error | undefined;
  /** Reads never finish (until aborted). */
  hang = false;

  constructor(public current: Sample = { containers: [], pods: [] }) {}

  async sample(signal: AbortSignal): Promise<Sample> {
    this.reads++;
    if (this.hang) {
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
    }
    if (this.delayMs > 0) await sleep(this.delayMs, undefined, { signal });
    if (this.failWith) throw this.failWith;
    return structuredClone(this.current);
  }
}

export class FakeStates implements StateSource {
  constructor(
    public sandboxes: string[] = [],
    public containers: string[] = [],
  ) {}

  sandboxStates(): Iterable<string> {
    return this.sandboxes;
  }

  containerStates(): Iterable<string> {
    return this.containers;
  }
}

/** Labels of container `name` in pod `pod` of namespace "ns", as the daemon would set them. */
export function containerLabels(pod: string, name: string, id = `${pod}-${name}-id`): CadvisorLabels {
  return { id: `/kubepods/pod-${pod}/${id}`, container: name, pod, namespace: 'ns', image: 'docker.io/library/busybox:1.36', name: id };
}

/** A container sample with every number set. */
export function fullContainerSample(pod: string, name: string): ContainerSample {
  return {
    labels: containerLabels(pod, name),
    startTimeSeconds: 1_700_000_000,
    cpuUsageSeconds: 1.5,
    cpuUserSeconds: 1,
    cpuSystemSeconds: 0.5,
    cpuPeriods: 100,
    cpuThrottledPeriods: 7,
    cpuThrottledSeconds: 0.25,
    memoryUsageBytes: 8 << 20,
    memoryWorkingSetBytes: 6 << 20,
    memoryRssBytes: 4 << 20,
    memoryCacheBytes: 2 << 20,
    memoryLimitBytes: 64 << 20,
    pageFaults: 1000,
    majorPageFaults: 3,
    fsUsageBytes: 4096,
    fsDevice: '/var/lib/skiff',
    processes: 2,
  };
}
