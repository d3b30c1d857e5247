// Benchmark, images part: pull + unpack of a ~200 MB, 10-layer image from a local registry,
// cold (nothing present) and warm (every layer already present), for skiff and — when Debian's
// containerd is installed — for containerd (`ctr -n k8s.io images pull --plain-http`, which
// unpacks into its overlayfs snapshotter) in the same run.
import { access } from 'node:fs/promises';
import { startRegistry } from '../e2e/harness/registry.js';
import { TestDaemon } from '../e2e/harness/daemon.js';
import { buildBenchImage } from './image-fixture.js';
import { startContainerd } from './containerd.js';
import { MiB, percentile, table } from './stats.js';

const RUNS = Number(process.env.SKIFF_BENCH_RUNS ?? 5);

interface Series {
  name: string;
  coldMs: number[];
  warmMs: number[];
}

function row(s: Series, bytes: number): string[] {
  const mbps = (ms: number): string => (bytes / MiB / (ms / 1000)).toFixed(1);
  const c50 = percentile(s.coldMs, 50);
  const c90 = percentile(s.coldMs, 90);
  return [
    s.name,
    c50.toFixed(0),
    c90.toFixed(0),
    mbps(c50),
    percentile(s.warmMs, 50).toFixed(0),
    percentile(s.warmMs, 90).toFixed(0),
  ];
}

export async function benchImages(): Promise<string> {
  const reg = await startRegistry();
  const out: string[] = [];
  try {
    const img = await buildBenchImage(reg, { layers: 10, totalMiB: 200 });
    out.push(
      `image: ${img.ref}, 10 layers, ${(img.compressedBytes / MiB).toFixed(1)} MiB compressed, ${(img.uncompressedBytes / MiB).toFixed(1)} MiB unpacked; ${RUNS} runs each`,
    );
    const series: Series[] = [];

    const d = await TestDaemon.start({ toml: `[registry]\ninsecure = ["${reg.host}"]\n` });
    try {
      const s: Series = { name: 'skiff', coldMs: [], warmMs: [] };
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        await d.client.pullImage({ image: { image: img.ref } });
        s.coldMs.push(performance.now() - t0);
        const t1 = performance.now();
        await d.client.pullImage({ image: { image: img.ref } });
        s.warmMs.push(performance.now() - t1);
        await d.client.removeImage({ image: { image: img.ref } });
      }
      series.push(s);
    } finally {
      await d.cleanup();
    }

    const haveContainerd = await access('/usr/bin/containerd').then(
      () => true,
      () => false,
    );
    if (haveContainerd) {
      const ctr = await startContainerd();
      try {
        const s: Series = { name: 'containerd 1.6 (ctr pull)', coldMs: [], warmMs: [] };
        for (let i = 0; i < RUNS; i++) {
          s.coldMs.push((await ctr.pull(img.ref, true)).ms);
          s.warmMs.push((await ctr.pull(img.ref, true)).ms);
          await ctr.removeAll();
        }
        series.push(s);
      } finally {
        await ctr.stop();
      }
    } else {
      out.push('containerd: not installed (/usr/bin/containerd); comparison skipped');
    }

    out.push(
      table(
        ['runtime', 'cold p50 ms', 'cold p90 ms', 'cold MB/s (p50)', 'warm p50 ms', 'warm p90 ms'],
        series.map((s) => row(s, img.compressedBytes)),
      ),
    );
    if (series.length === 2) {
      const ratio = percentile(series[1].coldMs, 50) / percentile(series[0].coldMs, 50);
      out.push(`cold pull: skiff is ${ratio.toFixed(2)}x containerd's speed (containerd p50 / skiff p50; goal >= 1.00)`);
    }
  } finally {
    await reg.stop();
  }
  return out.join('\n');
}
