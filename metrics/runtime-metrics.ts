// skiff's own runtime metrics: CRI calls by rpc and gRPC code (counted and timed by the CRI
// wrapper's observer hook), image pulls (told by the image service through a callback the daemon
// wires), and pod sandboxes and containers by state, counted from in-memory records at scrape time.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { Status, type StatusCode } from '../common/errors.js';
import type { StateSource } from './source.js';

const CODE_NAMES = new Map<number, string>(Object.entries(Status).map(([name, code]) => [code, name]));

/** Most CRI calls take milliseconds; pulls, creates and stops with a grace period take seconds. */
const CRI_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const PULL_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

const SANDBOX_STATES = ['ready', 'notready'];
const CONTAINER_STATES = ['created', 'running', 'exited'];

/** The end of one image pull. */
export interface PullOutcome {
  ok: boolean;
  seconds: number;
  /** Compressed bytes fetched from the registry (0 when everything was already here). */
  bytes: number;
}

export interface RuntimeMetrics {
  /** cri/instrument.ts's Observer: once per finished call, `method` as "RuntimeService/RunPodSandbox". */
  onCall(method: string, code: StatusCode, seconds: number): void;
  onPull(outcome: PullOutcome): void;
}

/** Counts `states` into a gauge, with a zero for each of `always` so that those series always exist. */
function countInto(gauge: Gauge<'state'>, always: string[], states: Iterable<string>): void {
  const counts = new Map<string, number>(always.map((s) => [s, 0]));
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
  gauge.reset();
  for (const [state, n] of counts) gauge.set({ state }, n);
}

export function registerRuntimeMetrics(registry: Registry, states: StateSource): RuntimeMetrics {
  const registers = [registry];
  const calls = new Counter({
    name: 'skiff_cri_operations_total',
    help: 'CRI calls served, by rpc and gRPC status code.',
    labelNames: ['rpc', 'code'],
    registers,
  });
  const latency = new Histogram({
    name: 'skiff_cri_operation_duration_seconds',
    help: 'Time from receiving a CRI call to its answer, by rpc and gRPC status code.',
    labelNames: ['rpc', 'code'],
    buckets: CRI_BUCKETS,
    registers,
  });
  const pulls = new Counter({ name: 'skiff_image_pulls_total', help: 'Image pulls finished, by outcome (success, failure).', labelNames: ['outcome'], registers });
  const pullBytes = new Counter({ name: 'skiff_image_pull_bytes_total', help: 'Compressed bytes fetched from registries by image pulls.', registers });
  const pullTime = new Histogram({
    name: 'skiff_image_pull_duration_seconds',
    help: 'Time an image pull took, by outcome (success, failure).',
    labelNames: ['outcome'],
    buckets: PULL_BUCKETS,
    registers,
  });
  new Gauge({
    name: 'skiff_pod_sandboxes',
    help: 'Pod sandboxes known to skiffd, by state (ready, notready).',
    labelNames: ['state'],
    registers,
    collect() {
      countInto(this, SANDBOX_STATES, states.sandboxStates());
    },
  });
  new Gauge({
    name: 'skiff_containers',
    help: 'Containers known to skiffd, by state (created, running, exited).',
    labelNames: ['state'],
    registers,
    collect() {
      countInto(this, CONTAINER_STATES, states.containerStates());
    },
  });
  return {
    onCall(method, code, seconds) {
      const labels = { rpc: method.slice(method.lastIndexOf('/') + 1), code: CODE_NAMES.get(code) ?? String(code) };
      calls.inc(labels);
      latency.observe(labels, seconds);
    },
    onPull({ ok, seconds, bytes }) {
      const outcome = ok ? 'success' : 'failure';
      pulls.inc({ outcome });
      pullTime.observe({ outcome }, seconds);
      if (bytes > 0) pullBytes.inc(bytes);
    },
  };
}
