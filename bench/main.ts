// `npm run bench`: skiff's benchmark figures, one section per capability. SKIFF_BENCH_SECTIONS
// (comma-separated keys, e.g. `pods`) runs only those sections; unset runs them all.
import { benchImages } from './images.js';
import { benchNetwork } from './network.js';
import { benchPods } from './pods.js';
import { benchSecurity } from './security.js';
import { benchStreaming } from './streaming.js';
import { benchStatsMetrics } from './stats-metrics.js';

const sections: [key: string, title: string, run: () => Promise<string>][] = [
  ['images', 'images: pull + unpack', benchImages],
  ['pods', 'pods: rpc latency, pod to running, ExecSync, PSS per pod', benchPods],
  ['network', 'network: pod network setup and teardown, built-in vs CNI', benchNetwork],
  ['streaming', 'streaming: exec round trip, port-forward throughput', benchStreaming],
  ['stats', 'stats: ListContainerStats and a /metrics scrape with 100 running containers', benchStatsMetrics],
  ['seccomp', 'seccomp: the default profile\'s cost per CreateContainer + StartContainer', benchSecurity],
];

const wanted = (process.env.SKIFF_BENCH_SECTIONS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = wanted.filter((w) => !sections.some(([key]) => key === w));
if (unknown.length > 0) {
  process.stderr.write(`SKIFF_BENCH_SECTIONS: unknown section ${unknown.join(', ')} (known: ${sections.map(([key]) => key).join(', ')})\n`);
  process.exit(2);
}

for (const [key, title, run] of sections) {
  if (wanted.length > 0 && !wanted.includes(key)) continue;
  process.stdout.write(`\n== ${title}\n`);
  const started = performance.now();
  process.stdout.write((await run()) + '\n');
  process.stdout.write(`(${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
}
