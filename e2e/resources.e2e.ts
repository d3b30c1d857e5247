// e2e: container resources on this cgroup v1 host, with crun (the default handler) and runc: a
// memory limit enforced by the OOM killer (OOMKilled, 137, the pod lives on), a CPU quota that
// throttles a busy loop to ~0.2 CPU, UpdateContainerResources changing a running container's
// cgroup files (through the CRI and the skiff CLI) and surviving a skiffd restart, and bad input
// refused with precise statuses and nothing changed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rmdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type * as v1 from '../cri/gen/v1.js';
import { controllerDir } from '../pod/cgroups/paths.js';
import { hostCgroupLayout, type CgroupLayout } from '../pod/runtime/cgroup-layout.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

const MiB = 1 << 20;

describe('container resources', () => {
  let w: PodWorld;
  let layout: CgroupLayout;
  before(async () => {
    w = await startPodWorld();
    layout = await hostCgroupLayout();
  });
  after(async () => {
    await w?.close();
  });

  const pod = (name: string, handler: string): v1.PodSandboxConfig => ({
    metadata: { name: `${name}-${handler}`, namespace: 'resources', uid: `uid-${name}-${handler}`, attempt: 0 },
    hostname: name,
    log_directory: join(w.dir, `${name}-${handler}`),
    linux: { cgroup_parent: w.cgroupParent },
  });

  async function runPod(name: string, handler: string): Promise<{ podId: string; cfg: v1.PodSandboxConfig }> {
    const cfg = pod(name, handler);
    const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
    return { podId, cfg };
  }

  async function run(podId: string, cfg: v1.PodSandboxConfig, name: string, command: string[], resources: v1.LinuxContainerResources = {}): Promise<string> {
    const { container_id: id } = await w.d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name, attempt: 0 }, image: { image: w.image }, command, log_path: `${name}.log`, linux: { resources } },
      sandbox_config: cfg,
    });
    await w.d.client.startContainer({ container_id: id });
    return id;
  }

  /** A cgroup file of the container: `<controller mount>/<cgroup parent>/<id>/<file>` (cgroupfs driver). */
  const cgroupFile = async (controller: string, id: string, file: string): Promise<string> =>
    (await readFile(join(controllerDir(layout, controller, join(w.cgroupParent, id))!, file), 'utf8')).trim();

  const status = async (id: string): Promise<v1.ContainerStatus__Output> => (await w.d.client.containerStatus({ container_id: id })).status!;

  const rejectsWith = (p: Promise<unknown>, code: number, details: RegExp): Promise<void> =>
    assert.rejects(p, (e: ServiceError) => {
      assert.equal(e.code, code, `${e.code} ${e.details}`);
      assert.match(e.details, details);
      return true;
    });

  for (const handler of ['crun', 'runc']) {
    describe(handler, () => {
      test(`a container allocating past its memory limit is OOMKilled (137); its sibling keeps working [${handler}]`, async () => {
        const { podId, cfg } = await runPod('oom', handler);
        // kubelet gives guaranteed pods -997; without CAP_SYS_RESOURCE nothing below skiffd's own score can be set.
        const sibling = await run(podId, cfg, 'sibling', ['sleep', '3600'], { oom_score_adj: -997 });
        // tail keeps a line without a newline in memory: /dev/zero never ends one.
        const hog = await run(podId, cfg, 'hog', ['sh', '-c', 'exec tail /dev/zero'], { memory_limit_in_bytes: 32 * MiB });
        let st = await status(hog);
        for (let i = 0; i < 500 && st.state !== 'CONTAINER_EXITED'; i++) {
          await sleep(20);
          st = await status(hog);
        }
        assert.deepEqual([st.state, st.exit_code, st.reason], ['CONTAINER_EXITED', 137, 'OOMKilled']);
        assert.equal(st.resources?.linux?.memory_limit_in_bytes, String(32 * MiB));
        assert.equal(st.resources?.linux?.memory_swap_limit_in_bytes, String(32 * MiB), 'swap = limit: no swapping past it (containerd)');
        assert.equal((await status(sibling)).state, 'CONTAINER_RUNNING');
        const r = await w.d.client.execSync({ container_id: sibling, cmd: ['sh', '-c', 'echo alive; cat /proc/1/oom_score_adj'], timeout: '10' });
        // skiffd inherits the test's score (it is its child).
        const own = (await readFile('/proc/self/oom_score_adj', 'utf8')).trim();
        assert.equal(Buffer.from(r.stdout).toString(), `alive\n${Math.max(-997, Number(own))}\n`, 'oom_score_adj raised to skiffd\'s own when lower');
        assert.equal((await status(sibling)).resources?.linux?.oom_score_adj, String(Math.max(-997, Number(own))));
        assert.equal((await w.d.client.podSandboxStatus({ pod_sandbox_id: podId })).status?.state, 'SANDBOX_READY');
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      test(`a CPU quota of 0.2 CPU throttles a busy loop to about 0.2 CPU [${handler}]`, async () => {
        const { podId, cfg } = await runPod('quota', handler);
        const id = await run(podId, cfg, 'spin', ['sh', '-c', 'while :; do :; done'], { cpu_quota: 20_000, cpu_period: 100_000 });
        assert.equal(await cgroupFile('cpu', id, 'cpu.cfs_quota_us'), '20000');
        assert.equal(await cgroupFile('cpu', id, 'cpu.cfs_period_us'), '100000');
        const throttled = async (): Promise<number> => Number(/^nr_throttled (\d+)$/m.exec(await cgroupFile('cpu', id, 'cpu.stat'))?.[1]);
        const usage = async (): Promise<bigint> => BigInt(await cgroupFile('cpuacct', id, 'cpuacct.usage'));
        await sleep(300); // let the loop get going
        const [t0, u0, at0] = [await throttled(), await usage(), process.hrtime.bigint()];
        await sleep(2000);
        const [t1, u1, at1] = [await throttled(), await usage(), process.hrtime.bigint()];
        const cpus = Number(u1 - u0) / Number(at1 - at0);
        console.log(`[${handler}] quota 0.2 CPU: nr_throttled ${t0} → ${t1} (+${t1 - t0}), usage ${(cpus).toFixed(3)} CPU over ${(Number(at1 - at0) / 1e9).toFixed(2)} s`);
        assert.ok(t1 - t0 >= 10, `throttled periods rise (+${t1 - t0} in 2 s)`);
        assert.ok(cpus > 0.1 && cpus < 0.35, `usage near 0.2 CPU, got ${cpus.toFixed(3)}`);
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      test(`UpdateContainerResources changes a running container's cgroup; bad input changes nothing [${handler}]`, async () => {
        const { podId, cfg } = await runPod('update', handler);
        const id = await run(podId, cfg, 'app', ['sleep', '3600'], { memory_limit_in_bytes: 64 * MiB, cpu_quota: 50_000, cpu_period: 100_000, cpu_shares: 512 });
        assert.equal(await cgroupFile('memory', id, 'memory.limit_in_bytes'), String(64 * MiB));
        await w.d.client.updateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: 128 * MiB, cpu_quota: 30_000 } });
        const check = async (what: string): Promise<void> => {
          assert.equal(await cgroupFile('memory', id, 'memory.limit_in_bytes'), String(128 * MiB), `${what}: memory.limit_in_bytes`);
          assert.equal(await cgroupFile('cpu', id, 'cpu.cfs_quota_us'), '30000', `${what}: cpu.cfs_quota_us`);
          assert.equal(await cgroupFile('cpu', id, 'cpu.shares'), '512', `${what}: shares unchanged`);
          const res = (await status(id)).resources?.linux;
          assert.deepEqual(
            [res?.memory_limit_in_bytes, res?.cpu_quota, res?.cpu_period, res?.cpu_shares],
            [String(128 * MiB), '30000', '100000', '512'],
            `${what}: ContainerStatus.resources`,
          );
        };
        await check('after the update');

        // Bad input: precise status, and nothing changed.
        await rejectsWith(w.d.client.updateContainerResources({ container_id: id, linux: { cpu_quota: -5 } }), GrpcStatus.INVALID_ARGUMENT, /linux\.cpu_quota -5 is negative/);
        await rejectsWith(
          w.d.client.updateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: '9223372036854775807' } }),
          GrpcStatus.INVALID_ARGUMENT,
          /linux\.memory_limit_in_bytes 9223372036854775807 is absurd/,
        );
        await rejectsWith(
          w.d.client.updateContainerResources({ container_id: id, linux: { unified: { 'memory.high': '1000000' } } }),
          GrpcStatus.INVALID_ARGUMENT,
          /linux\.unified .*cgroup v2 files cannot be set on this host, which has cgroup v1/,
        );
        await rejectsWith(w.d.client.updateContainerResources({ container_id: 'f'.repeat(64), linux: { cpu_quota: 10_000 } }), GrpcStatus.NOT_FOUND, /container "f{64}" not found/);
        await rejectsWith(w.d.client.updateContainerResources({ container_id: 'not-an-id', linux: {} }), GrpcStatus.INVALID_ARGUMENT, /container_id "not-an-id" is not a skiff id/);
        await check('after the refused updates');

        // The skiff CLI, with crictl's flags.
        const r = await w.d.cli(['update', '--cpu-quota', '40000', '--memory', String(96 * MiB), id]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${id}\n`);
        assert.equal(await cgroupFile('memory', id, 'memory.limit_in_bytes'), String(96 * MiB));
        assert.equal(await cgroupFile('cpu', id, 'cpu.cfs_quota_us'), '40000');
        const bad = await w.d.cli(['update', '--cpu-quota=-3', id]);
        assert.notEqual(bad.code, 0);
        assert.match(bad.stderr, /cpu_quota -3 is negative/);

        // A stopped container: accepted and recorded, as containerd does; its cgroup is gone.
        await w.d.client.stopContainer({ container_id: id, timeout: '0' });
        await w.d.client.updateContainerResources({ container_id: id, linux: { cpu_shares: 256 } });
        assert.equal((await status(id)).resources?.linux?.cpu_shares, '256');
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });
    });
  }

  test('updated resources survive a skiffd restart (record and config.json)', async () => {
    const { podId, cfg } = await runPod('restart', 'crun');
    const id = await run(podId, cfg, 'app', ['sleep', '3600'], { memory_limit_in_bytes: 64 * MiB });
    await w.d.client.updateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: 80 * MiB, cpu_quota: 25_000 } });
    await w.d.stop();
    await w.d.launch();
    const res = (await status(id)).resources?.linux;
    assert.deepEqual([res?.memory_limit_in_bytes, res?.cpu_quota], [String(80 * MiB), '25000']);
    const spec = JSON.parse(await readFile(join(w.d.state, 'containers', id, 'config.json'), 'utf8')) as { linux: { resources: { memory: { limit: number }; cpu: { quota: number } } } };
    assert.deepEqual([spec.linux.resources.memory.limit, spec.linux.resources.cpu.quota], [80 * MiB, 25_000]);
    assert.equal(await cgroupFile('memory', id, 'memory.limit_in_bytes'), String(80 * MiB));
    await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('UpdatePodSandboxResources: checked and recorded (containerd); an unknown pod is NOT_FOUND', async () => {
    const { podId } = await runPod('podres', 'crun');
    await w.d.client.updatePodSandboxResources({ pod_sandbox_id: podId, resources: { cpu_shares: 1024, memory_limit_in_bytes: 256 * MiB } });
    await rejectsWith(w.d.client.updatePodSandboxResources({ pod_sandbox_id: podId, resources: { cpu_quota: -2 } }), GrpcStatus.INVALID_ARGUMENT, /resources\.cpu_quota -2 is negative/);
    await rejectsWith(w.d.client.updatePodSandboxResources({ pod_sandbox_id: 'e'.repeat(64), resources: {} }), GrpcStatus.NOT_FOUND, /sandbox "e{64}" not found/);
    await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('a container of a pod without a cgroup parent still gets a cgroup of its own (/skiff/<id>)', async () => {
    const cfg: v1.PodSandboxConfig = { metadata: { name: 'noparent', namespace: 'resources', uid: 'uid-noparent', attempt: 0 }, hostname: 'noparent' };
    const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: cfg });
    const id = await run(podId, cfg, 'app', ['sleep', '3600'], { memory_limit_in_bytes: 48 * MiB });
    const dir = controllerDir(layout, 'memory', `/skiff/${id}`)!;
    assert.equal((await readFile(join(dir, 'memory.limit_in_bytes'), 'utf8')).trim(), String(48 * MiB));
    await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
    // skiff's own parent stays for the next such pod; this test leaves none behind (when empty).
    for (const ctl of await readdir('/sys/fs/cgroup')) await rmdir(join('/sys/fs/cgroup', ctl, 'skiff')).catch(() => undefined);
  });
});

describe('systemd cgroup naming (no systemd here: the runtime gets the expanded path)', () => {
  let w: PodWorld;
  const slice = `skiffe2e${randomBytes(4).toString('hex')}`;
  before(async () => {
    w = await startPodWorld({ toml: () => 'cgroup_driver = "systemd"' });
  });
  after(async () => {
    await w?.close();
    for (const ctl of await readdir('/sys/fs/cgroup')) {
      for (const d of [`${slice}.slice/${slice}-pod1.slice`, `${slice}.slice`]) await rmdir(join('/sys/fs/cgroup', ctl, d)).catch(() => undefined);
    }
  });

  for (const handler of ['crun', 'runc']) {
    test(`a pod slice expands to nested slices and the container gets skiff-<id>.scope [${handler}]`, async () => {
      assert.equal((await w.d.client.runtimeConfig({})).linux?.cgroup_driver, 'SYSTEMD');
      const cfg: v1.PodSandboxConfig = {
        metadata: { name: `sd-${handler}`, namespace: 'resources', uid: `uid-sd-${handler}`, attempt: 0 },
        hostname: 'sd',
        linux: { cgroup_parent: `${slice}-pod1.slice` },
      };
      const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const { container_id: id } = await w.d.client.createContainer({
        pod_sandbox_id: podId,
        config: { metadata: { name: 'app', attempt: 0 }, image: { image: w.image }, command: ['sleep', '3600'], linux: { resources: { memory_limit_in_bytes: 40 * MiB } } },
        sandbox_config: cfg,
      });
      await w.d.client.startContainer({ container_id: id });
      const layout = await hostCgroupLayout();
      const scope = `/${slice}.slice/${slice}-pod1.slice/skiff-${id}.scope`;
      assert.equal((await readFile(join(controllerDir(layout, 'memory', scope)!, 'memory.limit_in_bytes'), 'utf8')).trim(), String(40 * MiB));
      const pids = (await readFile(join(controllerDir(layout, 'pids', scope)!, 'cgroup.procs'), 'utf8')).trim();
      assert.ok(pids.length > 0, 'the container runs in its scope');
      await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
    });
  }

  test('a parent that is not a slice is refused with the driver\'s rule named', async () => {
    const cfg: v1.PodSandboxConfig = { metadata: { name: 'sd-bad', namespace: 'resources', uid: 'uid-sd-bad', attempt: 0 }, linux: { cgroup_parent: '/kubepods/burstable' } };
    await assert.rejects(w.d.client.runPodSandbox({ config: cfg }), (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT && /not a systemd slice name/.test(e.details));
  });
});

