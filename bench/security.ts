// Benchmark, security part: what the default seccomp profile costs per container — the time of
// CreateContainer + StartContainer with RuntimeDefault against Unconfined, in one pod per runtime
// (crun, runc), the two kinds interleaved so that drift on the machine falls on both alike — and
// skiffd's own share of it, building the config.json with and without the profile. Goal (issue
// 14): less than 1 ms per container.
import { performance } from 'node:perf_hooks';
import type * as v1 from '../cri/gen/v1.js';
import { TestDaemon } from '../e2e/harness/daemon.js';
import { buildContainerSpec } from '../pod/spec/index.js';
import { specInput } from '../pod/spec/fixture.js';
import { DEFAULT_SECCOMP_PROFILE, resolveSeccomp } from '../pod/spec/seccomp/index.js';
import { seccompBpfCompiler, translateSeccomp } from '../pod/spec/seccomp/bpf.js';
import { DEFAULT_CAPABILITIES } from '../pod/spec/security.js';
import { libseccomp } from '../native/libseccomp.js';
import { inBenchWorld, podConfig, type Target } from './pods.js';
import { percentile, table } from './stats.js';

const N = Number(process.env.SKIFF_BENCH_SECCOMP_N ?? 40);
const GOAL_MS = 1;
const KINDS = { RuntimeDefault: { seccomp: { profile_type: 'RuntimeDefault' } }, Unconfined: { seccomp: { profile_type: 'Unconfined' } } } as const;
type Kind = keyof typeof KINDS;

const ms = (x: number): string => x.toFixed(2);

async function measure(t: Target, image: string, config: v1.PodSandboxConfig): Promise<Record<Kind, number[]>> {
  const c = t.client;
  const { pod_sandbox_id: podId } = await c.runPodSandbox({ config, runtime_handler: t.handler });
  const samples: Record<Kind, number[]> = { RuntimeDefault: [], Unconfined: [] };
  try {
    for (let i = -2; i < N; i++) { // two untimed warm-up rounds
      const order: Kind[] = i % 2 ? ['RuntimeDefault', 'Unconfined'] : ['Unconfined', 'RuntimeDefault'];
      for (const kind of order) {
        const t0 = performance.now();
        const { container_id: id } = await c.createContainer({
          pod_sandbox_id: podId,
          config: { metadata: { name: `${kind}-${i + 2}`, attempt: 0 }, image: { image }, command: ['sleep', '3600'], linux: { security_context: KINDS[kind] } },
          sandbox_config: config,
        });
        await c.startContainer({ container_id: id });
        if (i >= 0) samples[kind].push(performance.now() - t0);
        await c.stopContainer({ container_id: id, timeout: '0' });
        await c.removeContainer({ container_id: id });
      }
    }
  } finally {
    await c.removePodSandbox({ pod_sandbox_id: podId });
  }
  return samples;
}

/** skiffd's part: buildContainerSpec (and the config.json text) with and without RuntimeDefault. */
function specCost(): { with: number; without: number } {
  const time = (sc: v1.LinuxContainerSecurityContext__Output['seccomp']): number => {
    const input = specInput({ sc: { seccomp: sc } });
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) JSON.stringify(buildContainerSpec(input));
    return (performance.now() - t0) / 2000;
  };
  time(null);
  return { with: time({ profile_type: 'RuntimeDefault', localhost_ref: '' }), without: time({ profile_type: 'Unconfined', localhost_ref: '' }) };
}

/** For crun skiffd compiles the filter (run.oci.seccomp_bpf_data): once per profile, then a cache hit. */
function bpfCost(): { compile: number; hit: number } {
  const seccomp = resolveSeccomp(DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPABILITIES, arch: process.arch, kernel: '6.1.0' });
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) translateSeccomp(seccomp, libseccomp());
  const compile = (performance.now() - t0) / 20;
  const cached = seccompBpfCompiler(libseccomp);
  cached(seccomp);
  const t1 = performance.now();
  for (let i = 0; i < 2000; i++) cached(seccomp)!.toString('base64');
  return { compile, hit: (performance.now() - t1) / 2000 };
}

export async function benchSecurity(): Promise<string> {
  const notes: string[] = [];
  return inBenchWorld('security', notes, async (w, reg) => {
    const d = await TestDaemon.start({ toml: `[registry]\ninsecure = ["${reg.host}"]\n` });
    try {
      await d.client.pullImage({ image: { image: w.image } });
      const rows: string[][] = [];
      for (const handler of ['crun', 'runc']) {
        const t: Target = { label: `skiff ${handler}`, client: d.client, handler, hostNetwork: false, supervisor: 'skiff-monitor' };
        const s = await measure(t, w.image, podConfig(t, w, `seccomp-${handler}`));
        const [d50, d90] = [50, 90].map((p) => percentile(s.RuntimeDefault, p) - percentile(s.Unconfined, p));
        for (const kind of Object.keys(KINDS) as Kind[]) rows.push([t.label, kind, ms(percentile(s[kind], 50)), ms(percentile(s[kind], 90))]);
        rows.push([t.label, 'difference', ms(d50), ms(d90), d50 < GOAL_MS ? `ok (< ${GOAL_MS} ms)` : `over the goal of < ${GOAL_MS} ms`]);
      }
      const spec = specCost();
      const bpf = bpfCost();
      return [
        `CreateContainer + StartContainer, ${N} containers of each kind, interleaved, one pod per runtime:`,
        table(['target', 'seccomp', 'p50 ms', 'p90 ms', 'goal'], rows),
        `skiffd's share: buildContainerSpec + JSON ${ms(spec.with)} ms with RuntimeDefault, ${ms(spec.without)} ms without (mean of 2000)`,
        `crun's filter, compiled by skiffd: ${ms(bpf.compile)} ms once per (profile, capability set), ${ms(bpf.hit)} ms a cache hit with base64 (runc still compiles it itself)`,
        ...notes,
      ].join('\n');
    } finally {
      await d.cleanup();
    }
  });
}
