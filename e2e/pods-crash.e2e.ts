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
    // Wait until the monitor is recorded: the record is on disk with its pid.
    const recordsDir = join(d.root, 'container-records');
    let record: { id: string; phase: string; monitorPid?: number; bundle: string } | undefined;
    for (let i = 0; i < 200 && !record?.monitorPid; i++) {
      await sleep(20);
      for (const f of await readdir(recordsDir).catch(() => [] as string[])) {
        if (f.endsWith('.json') && !f.startsWith('.')) record = JSON.parse(await readFile(join(recordsDir, f), 'utf8')) as typeof record;
      }
    }
    assert.ok(record?.monitorPid, 'the monitor was started and recorded');
    assert.equal(record.phase, 'creating');
    assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(join(record.bundle, 'rootfs')), 'rootfs is mounted');
    await d.kill();
    await creating;
    await d.launch();

    assert.deepEqual((await readdir(recordsDir)).filter((f) => f.endsWith('.json')), [], 'no container record');
    assert.ok(!alive(record.monitorPid), 'the monitor is gone');
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
});
