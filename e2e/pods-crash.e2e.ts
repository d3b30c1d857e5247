// e2e: skiffd SIGKILLed inside CreateContainer. A stand-in runtime handler ("slow": runc behind a
// script that sleeps in `create`, containerd's runc-fp idea) holds the call open; the daemon dies
// with the record in phase "creating", the rootfs mounted and the monitor running. After the
// restart nothing may be left: no record, mount, monitor, runtime container or bundle.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync } from 'node:child_process';
import type { TestDaemon } from './harness/daemon.js';
import { alive, startPodWorld, type PodWorld } from './harness/pod-world.js';
import { findMonitors } from '../pod/host.js';


describe('a crash inside CreateContainer leaks nothing', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let dir: string;
  let image: string;
  let cgroupParent: string;

  before(async () => {
    w = await startPodWorld({
      toml: async (tmp) => {
        const slow = join(tmp, 'slow-runc');
        await writeFile(slow, '#!/bin/sh\ncase " $* " in *" create "*) sleep 4 ;; esac\nexec /usr/bin/runc "$@"\n');
        await chmod(slow, 0o755);
        return `[runtime.handlers.slow]\nkind = "runc"\npath = "${slow}"\n`;
      },
    });
    ({ d, dir, image, cgroupParent } = w);
  });

  after(async () => {
    await w?.close();
  });

  test('SIGKILL while the runtime creates; the restart rolls everything back', async () => {
    const pod = {
      metadata: { name: 'crashy', namespace: 'e2e', uid: 'uid-crashy', attempt: 0 },
      hostname: 'crashy',
      log_directory: dir,
      linux: { cgroup_parent: cgroupParent },
    };
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod, runtime_handler: 'slow' });
    const creating = d.client
      .createContainer({ pod_sandbox_id: podId, config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['sleep', '3600'], log_path: 'c.log' }, sandbox_config: pod })
      .catch((e: unknown) => e);
    // Wait until the record is on disk and its monitor runs (the record does not name the
    // monitor until the create is done: the restart must find it by its command line).
    const recordsDir = join(d.root, 'container-records');
    let record: { id: string; phase: string; bundle: string } | undefined;
    let monitorPid: number | undefined;
    for (let i = 0; i < 200 && !monitorPid; i++) {
      await sleep(20);
      for (const f of await readdir(recordsDir).catch(() => [] as string[])) {
        if (f.endsWith('.json') && !f.startsWith('.')) record = JSON.parse(await readFile(join(recordsDir, f), 'utf8')) as typeof record;
      }
      if (record) monitorPid = (await findMonitors(join(d.state, 'containers'))).get(record.id);
    }
    assert.ok(record && monitorPid, 'the container record is written and its monitor runs');
    assert.equal(record.phase, 'creating');
    assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(join(record.bundle, 'rootfs')), 'rootfs is mounted');
    await d.kill();
    await creating;
    await d.launch();

    assert.deepEqual((await readdir(recordsDir)).filter((f) => f.endsWith('.json')), [], 'no container record');
    assert.ok(!alive(monitorPid), 'the monitor is gone');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(join(d.state, 'containers')), 'no container mount left');
    assert.deepEqual(await readdir(join(d.state, 'containers')).catch(() => []), [], 'no bundle');
    await sleep(4500); // past the stand-in's sleep: a create that survived would exist by now
    const listed = execFileSync('runc', ['--root', join(d.state, 'runtime', 'slow'), 'list', '-q']).toString().trim();
    assert.equal(listed, '', 'no runtime container');
    assert.deepEqual((await d.client.listContainers({})).containers, []);
    // The pod itself survived the crash and still works.
    assert.equal((await d.client.podSandboxStatus({ pod_sandbox_id: podId })).status?.state, 'SANDBOX_READY');
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('SIGKILL inside RunPodSandbox after pause started; the restart removes pause, pins, mounts and cgroups', async () => {
    await d.kill();
    await d.launch({ SKIFF_FAILPOINTS: 'sandbox-before-ready' });
    const pod = { metadata: { name: 'half', namespace: 'e2e', uid: 'uid-half', attempt: 0 }, hostname: 'half', linux: { cgroup_parent: cgroupParent } };
    const running = d.client.runPodSandbox({ config: pod }).catch((e: unknown) => e);
    const recordsDir = join(d.root, 'sandboxes');
    let id = '';
    let pausePid = 0;
    for (let i = 0; i < 250 && !pausePid; i++) {
      await sleep(20);
      const f = (await readdir(recordsDir).catch(() => [] as string[])).find((n) => /^[a-f0-9]{64}\.json$/.test(n));
      if (!f) continue;
      id = f.slice(0, 64);
      pausePid = Number((await readFile(join(d.state, 'sandboxes', id, 'pause.pid'), 'utf8').catch(() => '')).trim());
    }
    assert.ok(pausePid > 0 && alive(pausePid), 'pause runs while the record still says creating');
    const rec = JSON.parse(await readFile(join(recordsDir, `${id}.json`), 'utf8')) as { phase: string };
    assert.equal(rec.phase, 'creating');
    const pins = [join(d.state, 'netns', id), join(d.state, 'sandboxes', id, 'ipc.ns'), join(d.state, 'sandboxes', id, 'uts.ns')];
    const mounts = (): string[] => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(id));
    assert.equal(mounts().length, 4, 'netns, ipc and uts pins and /dev/shm are mounted');
    const cgroups = (): string[] => execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '3', '-type', 'd', '-name', id]).toString().split('\n').filter(Boolean);
    assert.ok(cgroups().length > 0, 'the pod cgroup exists');

    await d.kill();
    await running;
    await d.launch();
    assert.deepEqual((await readdir(recordsDir)).filter((f) => f.endsWith('.json')), [], 'no sandbox record');
    assert.ok(!alive(pausePid), 'pause is gone');
    assert.deepEqual(mounts(), [], 'no pin or shm mount left');
    for (const pin of pins) await assert.rejects(readFile(pin), { code: 'ENOENT' }, `${pin} removed`);
    await assert.rejects(readdir(join(d.state, 'sandboxes', id)), { code: 'ENOENT' }, 'sandbox dir removed');
    assert.deepEqual(cgroups(), [], 'pod cgroup removed');
    // The name is free again: kubelet's retry gets a new, working pod.
    const { pod_sandbox_id: again } = await d.client.runPodSandbox({ config: pod });
    assert.notEqual(again, id);
    assert.equal((await d.client.podSandboxStatus({ pod_sandbox_id: again })).status?.state, 'SANDBOX_READY');
    await d.client.stopPodSandbox({ pod_sandbox_id: again });
    await d.client.removePodSandbox({ pod_sandbox_id: again });
  });

  test('SIGKILL inside StartContainer after the runtime started it; the restart records it running', async () => {
    await d.kill();
    await d.launch({ SKIFF_FAILPOINTS: 'container-after-start' });
    const pod = { metadata: { name: 'started', namespace: 'e2e', uid: 'uid-started', attempt: 0 }, hostname: 'started', linux: { cgroup_parent: cgroupParent } };
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: pod });
    const { container_id: id } = await d.client.createContainer({ pod_sandbox_id: podId, config: { metadata: { name: 'c' }, image: { image }, command: ['sleep', '3600'] }, sandbox_config: pod });
    const before = (await d.client.containerStatus({ container_id: id })).status!;
    assert.equal(before.state, 'CONTAINER_CREATED');
    const pid = (JSON.parse((await d.client.containerStatus({ container_id: id, verbose: true })).info.info) as { pid: number }).pid;
    const startCalled = BigInt(Date.now()) * 1_000_000n;
    const starting = d.client.startContainer({ container_id: id }).catch((e: unknown) => e);
    let comm = '';
    for (let i = 0; i < 250 && comm !== 'sleep'; i++) {
      await sleep(20);
      comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    }
    assert.equal(comm, 'sleep', 'the runtime started the container');
    const record = JSON.parse(await readFile(join(d.root, 'container-records', `${id}.json`), 'utf8')) as { phase: string };
    assert.equal(record.phase, 'created', 'killed before the record said running');

    await d.kill();
    await starting;
    await d.launch();
    const after = (await d.client.containerStatus({ container_id: id })).status!;
    assert.equal(after.state, 'CONTAINER_RUNNING');
    // The runtime's state dir mtime, a coarse (jiffy) clock: a few ms of slack.
    assert.ok(BigInt(after.started_at) >= startCalled - 10_000_000n, `started_at ${after.started_at} is after StartContainer was called (${startCalled})`);
    assert.ok(BigInt(after.started_at) <= BigInt(Date.now()) * 1_000_000n);
    assert.ok(alive(pid), 'still running');
    const r = await d.client.execSync({ container_id: id, cmd: ['echo', 'ok'], timeout: 10 });
    assert.equal(Buffer.from(r.stdout).toString(), 'ok\n');
    await d.client.stopPodSandbox({ pod_sandbox_id: podId });
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
    assert.ok(!alive(pid));
  });
});
