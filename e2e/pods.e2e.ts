// e2e: pods and containers on the real daemon, with crun and runc, an image from a real registry,
// real namespaces, overlay mounts, cgroups, the monitor writing CRI logs, ExecSync, and a SIGKILL
// of skiffd in the middle. Every test cleans up its pods; the suite checks nothing is left.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type * as v1 from '../cri/gen/v1.js';
import type { TestRegistry } from './harness/registry.js';
import { pushImage } from './harness/push.js';
import { busyboxLayer } from './harness/layer.js';
import type { TestDaemon } from './harness/daemon.js';
import { alive, startPodWorld, type PodWorld } from './harness/pod-world.js';

let cgroupParent = '';

function podConfig(name: string, logDir: string, extra: Partial<v1.PodSandboxConfig> = {}): v1.PodSandboxConfig {
  return {
    metadata: { name, namespace: 'e2e', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: logDir,
    labels: { app: name, suite: 'pods' },
    linux: { cgroup_parent: cgroupParent },
    ...extra,
  };
}

function containerConfig(name: string, image: string, command: string[], extra: Partial<v1.ContainerConfig> = {}): v1.ContainerConfig {
  return { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}.log`, labels: { c: name }, ...extra };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const byId = <T extends { id: string }>(xs: T[]): T[] => [...xs].sort((a, b) => a.id.localeCompare(b.id));

describe('pods and containers', () => {
  let w: PodWorld;
  let reg: TestRegistry;
  let d: TestDaemon;
  let image: string;
  let logDir: string;

  before(async () => {
    w = await startPodWorld();
    ({ reg, d, image } = w);
    logDir = w.dir;
    cgroupParent = w.cgroupParent;
  });

  after(async () => {
    await w?.close();
  });

  for (const handler of ['crun', 'runc']) {
    test(`${handler}: a pod runs a container that logs, answers ExecSync and stops with the right exit code`, async () => {
      const pod = podConfig(`web-${handler}`, logDir);
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod, runtime_handler: handler });
      assert.match(podId, /^[a-f0-9]{64}$/);
      const ps = await d.client.podSandboxStatus({ pod_sandbox_id: podId, verbose: true });
      assert.equal(ps.status?.state, 'SANDBOX_READY');
      assert.equal(ps.status?.runtime_handler, handler);
      const info = JSON.parse(ps.info.info) as { pid: number; netnsPath: string };
      assert.ok(alive(info.pid), 'pause runs');

      const { container_id: id } = await d.client.createContainer({
        pod_sandbox_id: podId,
        config: containerConfig('app', image, ['sh', '-c', 'echo hello; echo oops >&2; busybox hostname; exec sleep 3600']),
        sandbox_config: pod,
      });
      assert.equal((await d.client.containerStatus({ container_id: id })).status?.state, 'CONTAINER_CREATED');
      await d.client.startContainer({ container_id: id });
      const st = await d.client.containerStatus({ container_id: id });
      assert.equal(st.status?.state, 'CONTAINER_RUNNING');
      assert.equal(st.status?.log_path, join(logDir, 'app.log'));

      const log = await waitFor('the log lines', async () => {
        const text = await readFile(join(logDir, 'app.log'), 'utf8').catch(() => '');
        return text.split('\n').length >= 4 ? text : undefined;
      });
      assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z stdout F hello$/m);
      assert.match(log, /^\S+ stderr F oops$/m);
      assert.match(log, new RegExp(`^\\S+ stdout F web-${handler}$`, 'm'), 'the pod hostname');

      const ex = await d.client.execSync({ container_id: id, cmd: ['sh', '-c', 'echo $((1+2)); echo err >&2; exit 3'], timeout: '10' });
      assert.equal(Buffer.from(ex.stdout).toString(), '3\n');
      assert.equal(Buffer.from(ex.stderr).toString(), 'err\n');
      assert.equal(ex.exit_code, 3);

      await d.client.stopContainer({ container_id: id, timeout: '1' });
      const stopped = await d.client.containerStatus({ container_id: id });
      assert.equal(stopped.status?.state, 'CONTAINER_EXITED');
      // The pod shares its pid namespace (POD mode), so sleep is not PID 1 and SIGTERM kills it.
      assert.equal(stopped.status?.exit_code, 143);
      assert.equal(stopped.status?.reason, 'Error');
      await d.client.stopContainer({ container_id: id, timeout: '1' }); // idempotent

      await d.client.removeContainer({ container_id: id });
      await d.client.removeContainer({ container_id: id }); // idempotent
      await d.client.stopPodSandbox({ pod_sandbox_id: podId });
      assert.equal((await d.client.podSandboxStatus({ pod_sandbox_id: podId })).status?.state, 'SANDBOX_NOTREADY');
      assert.ok(!alive(info.pid), 'pause is gone');
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
      await d.client.removePodSandbox({ pod_sandbox_id: podId }); // idempotent
      await assert.rejects(d.client.podSandboxStatus({ pod_sandbox_id: podId }), (e: ServiceError) => e.code === GrpcStatus.NOT_FOUND);
      assert.deepEqual(await readdir(join(d.state, 'netns')).catch(() => []), []);
      const mounts = await readFile('/proc/self/mountinfo', 'utf8');
      assert.ok(!mounts.includes(d.state), 'no mount left under the state dir');
    });
  }

  test('a container that exits 0 is Completed; RunPodSandbox retried with the same request returns the same id', async () => {
    const pod = podConfig('batch', logDir);
    const a = await d.client.runPodSandbox({ config: pod });
    const b = await d.client.runPodSandbox({ config: pod });
    assert.equal(a.pod_sandbox_id, b.pod_sandbox_id);
    await assert.rejects(d.client.runPodSandbox({ config: { ...pod, labels: { other: 'x' } } }), (e: ServiceError) => e.code === GrpcStatus.ALREADY_EXISTS);
    const { container_id: id } = await d.client.createContainer({ pod_sandbox_id: a.pod_sandbox_id, config: containerConfig('once', image, ['true']), sandbox_config: pod });
    await d.client.startContainer({ container_id: id });
    const done = await waitFor('the exit', async () => {
      const s = await d.client.containerStatus({ container_id: id });
      return s.status?.state === 'CONTAINER_EXITED' ? s : undefined;
    });
    assert.equal(done.status?.exit_code, 0);
    assert.equal(done.status?.reason, 'Completed');
    assert.ok(BigInt(done.status.finished_at) >= BigInt(done.status.started_at));
    await d.client.removePodSandbox({ pod_sandbox_id: a.pod_sandbox_id });
  });

  test('ExecSync past its timeout answers DEADLINE_EXCEEDED and leaves no process behind', async () => {
    const pod = podConfig('probe', logDir);
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod });
    const { container_id: id } = await d.client.createContainer({ pod_sandbox_id: podId, config: containerConfig('app', image, ['sleep', '3600']), sandbox_config: pod });
    await d.client.startContainer({ container_id: id });
    const t0 = Date.now();
    await assert.rejects(d.client.execSync({ container_id: id, cmd: ['sh', '-c', 'sleep 30 & sleep 31'], timeout: '1' }), (e: ServiceError) => e.code === GrpcStatus.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 < 5000);
    // A command that leaves a background child holding its stdout returns when it exits, with its
    // output and code, not when the child is done — and that is not a timeout.
    const t1 = Date.now();
    const bg = await d.client.execSync({ container_id: id, cmd: ['sh', '-c', 'sleep 20 & echo hi'], timeout: '5' });
    assert.equal(Buffer.from(bg.stdout).toString(), 'hi\n');
    assert.equal(bg.exit_code, 0);
    assert.ok(Date.now() - t1 < 4000, `returned after ${Date.now() - t1} ms`);
    const ps = await d.client.execSync({ container_id: id, cmd: ['busybox', 'ps', '-o', 'args'], timeout: '5' });
    assert.doesNotMatch(Buffer.from(ps.stdout).toString(), /sleep 3[01]/);
    await d.client.execSync({ container_id: id, cmd: ['busybox', 'pkill', 'sleep 20'], timeout: '5' }).catch(() => undefined);
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('bad input gets a precise status and leaves nothing', async () => {
    const pod = podConfig('bad', logDir);
    const bundlesBefore = await readdir(join(d.state, 'containers')).catch(() => [] as string[]);
    await assert.rejects(d.client.runPodSandbox({ config: { ...pod, metadata: { ...pod.metadata!, name: '' } } }), (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT);
    await assert.rejects(d.client.runPodSandbox({ config: { ...pod, metadata: { ...pod.metadata!, name: 'x'.repeat(300) } } }), (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT);
    await assert.rejects(d.client.runPodSandbox({ config: pod, runtime_handler: 'kata' }), (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT && /kata/.test(e.details));
    const escape = { ...pod, linux: { cgroup_parent: '/../../../tmp/evil' } };
    await assert.rejects(d.client.runPodSandbox({ config: escape }), (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT && /cgroup_parent/.test(e.details));
    const longName = { ...pod, metadata: { ...pod.metadata!, name: 'n'.repeat(70) }, hostname: '' };
    await assert.rejects(d.client.runPodSandbox({ config: longName }), (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT && /hostname/.test(e.details));
    const dnsInjection = { ...pod, dns_config: { servers: [], searches: ['a\nnameserver 6.6.6.6'], options: [] } };
    await assert.rejects(d.client.runPodSandbox({ config: dnsInjection }), (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT);
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod });
    await assert.rejects(
      d.client.createContainer({ pod_sandbox_id: podId, config: containerConfig('c', `${reg.host}/nope:1`, ['true']), sandbox_config: pod }),
      (e: ServiceError) => e.code === GrpcStatus.NOT_FOUND,
    );
    await assert.rejects(
      d.client.createContainer({ pod_sandbox_id: 'f'.repeat(64), config: containerConfig('c', image, ['true']), sandbox_config: pod }),
      (e: ServiceError) => e.code === GrpcStatus.NOT_FOUND,
    );
    await assert.rejects(
      d.client.createContainer({ pod_sandbox_id: podId, config: containerConfig('c', image, ['true'], { mounts: [{ container_path: 'relative', host_path: '/tmp', readonly: false, selinux_relabel: false, propagation: 'PROPAGATION_PRIVATE', uidMappings: [], gidMappings: [], recursive_read_only: false, image: null, image_sub_path: '' } as unknown as v1.Mount] }), sandbox_config: pod }),
      (e: ServiceError) => e.code === GrpcStatus.INVALID_ARGUMENT,
    );
    assert.deepEqual((await d.client.listContainers({})).containers.filter((c) => c.pod_sandbox_id === podId), []);
    await assert.rejects(d.client.containerStatus({ container_id: 'e'.repeat(64) }), (e: ServiceError) => e.code === GrpcStatus.NOT_FOUND);
    await d.client.stopContainer({ container_id: 'e'.repeat(64), timeout: '0' });
    await d.client.removeContainer({ container_id: 'e'.repeat(64) });
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
    assert.deepEqual(await readdir(join(d.state, 'containers')).catch(() => [] as string[]), bundlesBefore, 'no bundle left');
  });

  test('skiffd killed and restarted: every answer is the same and the container still runs and logs', async () => {
    const pod = podConfig('survivor', logDir);
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod });
    const { container_id: id } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: containerConfig('ticker', image, ['sh', '-c', 'while true; do echo tick; sleep 0.1; done']),
      sandbox_config: pod,
    });
    await d.client.startContainer({ container_id: id });
    const before = {
      pods: byId((await d.client.listPodSandbox({})).items),
      containers: byId((await d.client.listContainers({})).containers),
      status: (await d.client.containerStatus({ container_id: id })).status,
    };
    await d.kill();
    const logBefore = (await readFile(join(logDir, 'ticker.log'), 'utf8')).length;
    await sleep(500);
    await d.launch();
    const afterRestart = {
      pods: byId((await d.client.listPodSandbox({})).items),
      containers: byId((await d.client.listContainers({})).containers),
      status: (await d.client.containerStatus({ container_id: id })).status,
    };
    assert.deepEqual(afterRestart, before);
    assert.ok((await readFile(join(logDir, 'ticker.log'), 'utf8')).length > logBefore, 'the container went on logging while skiffd was down');
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('a container whose monitor died can still be stopped and removed, and its pod too', async () => {
    const pod = podConfig('orphaned', logDir);
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod });
    const { container_id: id } = await d.client.createContainer({ pod_sandbox_id: podId, config: containerConfig('app', image, ['sleep', '3600']), sandbox_config: pod });
    await d.client.startContainer({ container_id: id });
    const info = JSON.parse((await d.client.containerStatus({ container_id: id, verbose: true })).info.info) as { pid: number; monitorPid: number };
    // Both are processes this test made skiffd start, killed by pid.
    process.kill(info.monitorPid, 'SIGKILL');
    process.kill(info.pid, 'SIGKILL');
    await d.client.stopContainer({ container_id: id, timeout: '1' });
    const st = await d.client.containerStatus({ container_id: id });
    assert.equal(st.status?.state, 'CONTAINER_EXITED');
    assert.equal(st.status?.exit_code, 255);
    assert.match(st.status?.message ?? '', /monitor died/);
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
    await assert.rejects(d.client.containerStatus({ container_id: id }), (e: ServiceError) => e.code === GrpcStatus.NOT_FOUND);
  });

  test('an image removed while a container runs keeps the container files until the container goes', async () => {
    const pod = podConfig('imagegone', logDir);
    const tagged = (await pushImage(reg, 'busybox', 'doomed', { layers: [await busyboxLayer('gzip')], format: 'docker', config: { Env: ['DOOMED=1'] } })).ref;
    await d.client.pullImage({ image: { image: tagged } });
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod });
    const { container_id: id } = await d.client.createContainer({ pod_sandbox_id: podId, config: containerConfig('app', tagged, ['sleep', '3600']), sandbox_config: pod });
    await d.client.startContainer({ container_id: id });
    await d.client.removeImage({ image: { image: tagged } });
    const ex = await d.client.execSync({ container_id: id, cmd: ['sh', '-c', 'echo still-here'], timeout: '5' });
    assert.equal(Buffer.from(ex.stdout).toString(), 'still-here\n');
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });
});
