// Benchmark, stats part: with 100 running containers (20 pods × 5 busybox `sleep`, each pod with its
// own cgroup parent as kubelet gives), how long ListContainerStats takes and how long a /metrics
// scrape takes — one that reads a fresh sample (scrapes 1.1 s apart, past the 1 s sample cache) and
// one served from the cache (back to back) — and whether CRI calls wait while a fresh scrape runs
// (Version latency measured during scrapes). Issue 13's goal: under 50 ms each.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseExposition, series } from '../metrics/exposition.js';
import { TestDaemon } from '../e2e/harness/daemon.js';
import { busyboxLayer } from '../e2e/harness/layer.js';
import { freePort } from '../e2e/harness/process.js';
import { pushImage } from '../e2e/harness/push.js';
import { startRegistry } from '../e2e/harness/registry.js';
import { podConfig, removeCgroupParent, removePods, slug, type Target, type World } from './pods.js';
import { percentile, table } from './stats.js';

const PODS = Number(process.env.SKIFF_BENCH_STATS_PODS ?? 20);
const PER_POD = Number(process.env.SKIFF_BENCH_STATS_CONTAINERS ?? 5);
const SAMPLES = Number(process.env.SKIFF_BENCH_STATS_SAMPLES ?? 30);
/** Past the metrics sample cache's 1 s, so each scrape reads the containers anew. */
const FRESH_SPACING_MS = 1100;
const GOAL_MS = 50;

interface Timings {
  listContainerStats: number[];
  scrapeFresh: number[];
  scrapeCached: number[];
  versionDuringScrape: number[];
  /** skiffd's own figure: how long the container sample read of a fresh scrape took. */
  sampleRead: number[];
}

async function timed(samples: number[], fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  samples.push(performance.now() - t0);
}

async function startPods(t: Target, w: World): Promise<string[]> {
  const ids: string[] = [];
  for (let p = 0; p < PODS; p++) {
    const name = `${slug(t)}-${p}`;
    const config = podConfig(t, { ...w, cgroupParent: `${w.cgroupParent}/pod${p}` }, name);
    const { pod_sandbox_id: podId } = await t.client.runPodSandbox({ config });
    for (let c = 0; c < PER_POD; c++) {
      const { container_id: id } = await t.client.createContainer({
        pod_sandbox_id: podId,
        config: { metadata: { name: `sleep${c}`, attempt: 0 }, image: { image: w.image }, command: ['sleep', '3600'], log_path: `${name}-${c}.log` },
        sandbox_config: config,
      });
      await t.client.startContainer({ container_id: id });
      ids.push(id);
    }
  }
  return ids;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return res.text();
}

async function measure(t: Target, metricsUrl: string, containers: number): Promise<{ timings: Timings; notes: string[] }> {
  const timings: Timings = { listContainerStats: [], scrapeFresh: [], scrapeCached: [], versionDuringScrape: [], sampleRead: [] };
  const notes: string[] = [];
  // Warm-up: the first ask of each writable layer walks it; later asks are answered from its cache.
  const first = await t.client.listContainerStats({});
  if (first.stats.length < containers) throw new Error(`ListContainerStats: ${first.stats.length} containers, want ${containers}`);
  const e = parseExposition(await scrape(metricsUrl));
  const seen = series(e, 'container_memory_working_set_bytes').filter((s) => s.labels.container.startsWith('sleep')).length;
  if (seen < containers) throw new Error(`/metrics: container_memory_working_set_bytes for ${seen} containers, want ${containers}`);
  const bytes = (await scrape(metricsUrl)).length;
  notes.push(`/metrics body with ${containers} containers: ${(bytes / 1024).toFixed(0)} KiB, ${e.samples.length} samples`);

  for (let i = 0; i < SAMPLES; i++) await timed(timings.listContainerStats, () => t.client.listContainerStats({}));
  for (let i = 0; i < SAMPLES; i++) {
    await sleep(FRESH_SPACING_MS);
    // A CRI call sent while the scrape reads: what kubelet would wait if the scrape stalled the loop.
    const version = (async () => {
      await sleep(2);
      await timed(timings.versionDuringScrape, () => t.client.version({}));
    })();
    let body = '';
    await timed(timings.scrapeFresh, async () => (body = await scrape(metricsUrl)));
    const read = /^skiff_container_sample_duration_seconds (\S+)$/m.exec(body);
    if (read) timings.sampleRead.push(Number(read[1]) * 1000);
    await version;
    await timed(timings.scrapeCached, () => scrape(metricsUrl));
  }
  return { timings, notes };
}

export async function benchStatsMetrics(): Promise<string> {
  const cgroupParent = `/skiff-bench-stats-${randomBytes(4).toString('hex')}`;
  const logDir = await mkdtemp(join(tmpdir(), 'skiff-bench-stats-'));
  const load = [loadavg()[0]];
  const notes: string[] = [];
  let result: Timings | undefined;
  const reg = await startRegistry();
  try {
    const image = (await pushImage(reg, 'bench/busybox', '1', { layers: [await busyboxLayer('gzip')], format: 'docker' })).ref;
    const port = await freePort();
    const d = await TestDaemon.start({ toml: `[metrics]\naddress = "127.0.0.1:${port}"\n[registry]\ninsecure = ["${reg.host}"]\n` });
    const t: Target = { label: 'skiff stats', client: d.client, handler: '', hostNetwork: false, supervisor: 'skiff-monitor' };
    try {
      await d.client.pullImage({ image: { image } });
      const started = performance.now();
      const ids = await startPods(t, { image, logDir, cgroupParent });
      notes.push(`${PODS} pods × ${PER_POD} containers started in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      const m = await measure(t, `http://127.0.0.1:${port}/metrics`, ids.length);
      result = m.timings;
      notes.push(...m.notes);
    } finally {
      await removePods(t, slug(t)).catch((err: unknown) => notes.push(`removing the pods failed: ${(err as Error).message}`));
      await d.cleanup();
    }
  } finally {
    await reg.stop();
    await rm(logDir, { recursive: true, force: true });
    // The per-pod parents are ours to remove (kubelet's, in production); anything under them was left by the runtime.
    const left = (await removeCgroupParent(cgroupParent)).filter((dir) => !/\/pod\d+$/.test(dir));
    if (left.length > 0) notes.push(`removed cgroups left behind: ${left.join(', ')}`);
  }
  load.push(loadavg()[0]);
  const r = result;
  if (!r) throw new Error('stats bench: no result');
  const row = (name: string, xs: number[], goal: boolean): string[] => {
    const p50 = percentile(xs, 50);
    const p90 = percentile(xs, 90);
    return [name, p50.toFixed(1), p90.toFixed(1), goal ? `< ${GOAL_MS}${p90 < GOAL_MS ? ' (ok)' : ' (over)'}` : ''];
  };
  return [
    `${PODS * PER_POD} running containers (${PODS} pods × ${PER_POD} busybox sleep, crun, a cgroup parent per pod); ${SAMPLES} samples each; ` +
      `fresh scrapes ${FRESH_SPACING_MS} ms apart (the sample cache keeps a sample 1 s); skiffd logs at debug level (e2e harness).`,
    `host: ${cpus().length} CPUs, 1-min load average ${load[0].toFixed(2)} before and ${load[1].toFixed(2)} after.`,
    '',
    table(
      ['call', 'p50 ms', 'p90 ms', 'goal p90 ms'],
      [
        row('ListContainerStats', r.listContainerStats, true),
        row('GET /metrics, fresh sample', r.scrapeFresh, true),
        row('GET /metrics, cached sample', r.scrapeCached, false),
        row('  sample read in skiffd (fresh)', r.sampleRead, false),
        row('Version during a fresh scrape', r.versionDuringScrape, false),
      ],
    ),
    ...notes,
  ].join('\n');
}
