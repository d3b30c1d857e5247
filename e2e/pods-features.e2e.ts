// e2e: what a container's spec applies, checked from inside with busybox: namespaces shared
// through the pod, user and group resolution, a read-only rootfs, masked /proc paths, a
// bidirectional (rshared) bind mount, long log lines, list filters, the streaming list forms,
// container events, and the skiff CLI driving a pod end to end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as v1 from '../cri/gen/v1.js';
import type { TestRegistry } from './harness/registry.js';
import { pushImage } from './harness/push.js';
import { busyboxLayer } from './harness/layer.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

let cgroupParent = '';

describe('container features', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  let image: string;
  let dir: string;

  const pod = (name: string, extra: Partial<v1.PodSandboxConfig> = {}): v1.PodSandboxConfig => ({
    metadata: { name, namespace: 'features', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: join(dir, name),
    labels: { pod: name },
    linux: { cgroup_parent: cgroupParent },
    ...extra,
  });

  async function run(podId: string, podCfg: v1.PodSandboxConfig, name: string, command: string[], extra: Partial<v1.ContainerConfig> = {}): Promise<string> {
    const { container_id: id } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}.log`, labels: { name }, ...extra },
      sandbox_config: podCfg,
    });
    await d.client.startContainer({ container_id: id });
    return id;
  }

  async function sh(id: string, script: string): Promise<{ out: string; err: string; code: number }> {
    const r = await d.client.execSync({ container_id: id, cmd: ['sh', '-c', script], timeout: '10' });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code };
  }

  let w: PodWorld;
  before(async () => {
    w = await startPodWorld();
    ({ reg, d, image, dir } = w);
    cgroupParent = w.cgroupParent;
  });

  after(async () => {
    await w?.close();
  });

  test('two containers of a pod share net, ipc and uts; pid too in POD mode, not in CONTAINER mode', async () => {
    for (const mode of ['POD', 'CONTAINER'] as const) {
      const cfg = pod(`share-${mode.toLowerCase()}`, { linux: { cgroup_parent: cgroupParent, security_context: { namespace_options: { network: 'POD', pid: mode, ipc: 'POD' } } } });
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
      const a = await run(podId, cfg, 'a', ['sleep', '3600']);
      const b = await run(podId, cfg, 'b', ['sleep', '3600']);
      const ns = async (id: string): Promise<Record<string, string>> => {
        const out = (await sh(id, 'for n in net ipc uts pid; do echo "$n $(busybox readlink /proc/self/ns/$n)"; done')).out;
        return Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
      };
      const [na, nb] = [await ns(a), await ns(b)];
      assert.equal(na.net, nb.net);
      assert.equal(na.ipc, nb.ipc);
      assert.equal(na.uts, nb.uts);
      if (mode === 'POD') assert.equal(na.pid, nb.pid);
      else assert.notEqual(na.pid, nb.pid);
      assert.equal((await sh(a, 'busybox hostname')).out.trim(), `share-${mode.toLowerCase()}`);
      // /dev/shm is the pod's: a file written by one container is seen by the other.
      await sh(a, 'echo shared > /dev/shm/x');
      assert.equal((await sh(b, 'cat /dev/shm/x')).out, 'shared\n');
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
    }
  });

  test('pid TARGET (ephemeral containers) joins the target container’s pid namespace; a target not running is refused', async () => {
    const cfg = pod('target', { linux: { cgroup_parent: cgroupParent, security_context: { namespace_options: { pid: 'CONTAINER' } } } });
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    const app = await run(podId, cfg, 'app', ['sleep', '3600']);
    const debug = await run(podId, cfg, 'debug', ['sleep', '3601'], { linux: { security_context: { namespace_options: { pid: 'TARGET', target_id: app } } } });
    const pidns = async (id: string): Promise<string> => (await sh(id, 'busybox readlink /proc/self/ns/pid')).out.trim();
    assert.equal(await pidns(debug), await pidns(app));
    // The debug container sees the app's PID 1.
    assert.equal((await sh(debug, 'tr "\\0" " " < /proc/1/cmdline')).out.trim(), 'sleep 3600');
    await d.client.stopContainer({ container_id: app, timeout: '0' });
    await assert.rejects(
      run(podId, cfg, 'debug2', ['true'], { linux: { security_context: { namespace_options: { pid: 'TARGET', target_id: app } } } }),
      (err: Error & { code?: number }) => err.code === 3 && /target container "[a-f0-9]+" for the pid namespace is not running/.test(err.message),
    );
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('users: run_as_user/group, image user names, supplemental groups', async () => {
    const cfg = pod('users');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    const byUid = await run(podId, cfg, 'uid', ['sleep', '3600'], { linux: { security_context: { run_as_user: { value: '1000' }, run_as_group: { value: '1000' }, supplemental_groups: ['4242'] } } });
    assert.match((await sh(byUid, 'id')).out, /^uid=1000\(skiff\) gid=1000\(skiff\) groups=1000\(skiff\),4242/);
    const byName = await run(podId, cfg, 'name', ['sleep', '3600'], { linux: { security_context: { run_as_username: 'skiff' } } });
    assert.match((await sh(byName, 'id -u; id -g')).out, /^1000\n1000\n$/);
    await assert.rejects(run(podId, cfg, 'nobody', ['true'], { linux: { security_context: { run_as_username: 'no-such-user' } } }), /no-such-user/);
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('read-only rootfs refuses writes; masked /proc paths read empty; no_new_privs is set', async () => {
    const cfg = pod('locked');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    const id = await run(podId, cfg, 'ro', ['sleep', '3600'], { linux: { security_context: { readonly_rootfs: true, no_new_privs: true } } });
    const w = await sh(id, 'echo x > /written');
    assert.notEqual(w.code, 0);
    assert.match(w.err, /Read-only file system/);
    assert.equal((await sh(id, 'echo ok > /dev/shm/ok && cat /dev/shm/ok')).out, 'ok\n', '/dev/shm stays writable');
    assert.equal((await sh(id, 'cat /proc/timer_list | busybox wc -c')).out.trim(), '0', '/proc/timer_list is masked');
    assert.match((await sh(id, 'grep NoNewPrivs /proc/self/status')).out, /NoNewPrivs:\s+1/);
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('a bidirectional (rshared) bind mount propagates a mount made inside back to the host (runc)', async () => {
    const shared = join(dir, 'shared');
    await mkdir(shared, { recursive: true });
    execFileSync('mount', ['--bind', shared, shared]);
    execFileSync('mount', ['--make-rshared', shared]);
    try {
      const cfg = pod('propagation', { linux: { cgroup_parent: cgroupParent, security_context: { privileged: true } } });
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg, runtime_handler: 'runc' });
      const id = await run(podId, cfg, 'mounter', ['sleep', '3600'], {
        mounts: [{ container_path: '/mnt/shared', host_path: shared, readonly: false, selinux_relabel: false, propagation: 'PROPAGATION_BIDIRECTIONAL' }],
        linux: { security_context: { privileged: true } },
      });
      const r = await sh(id, 'mkdir -p /mnt/shared/sub && busybox mount -t tmpfs inner /mnt/shared/sub && echo hi > /mnt/shared/sub/file');
      assert.equal(r.code, 0, r.err);
      assert.equal(await readFile(join(shared, 'sub', 'file'), 'utf8'), 'hi\n', 'the host sees the mount made in the container');
      execFileSync('umount', [join(shared, 'sub')]);
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
    } finally {
      execFileSync('umount', ['-R', shared]);
    }
  });

  test('tty: the container gets a terminal and its output is logged as stdout; stdin: an open pipe, else /dev/null', async () => {
    const cfg = pod('tty');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    const tty = await run(podId, cfg, 'tty', ['sh', '-c', 'tty; [ -t 1 ] && echo is-a-tty; sleep 3600'], { tty: true });
    // stdin true: cat waits on a pipe nobody writes to yet; stdin false: cat reads /dev/null and ends.
    const open = await run(podId, cfg, 'stdin', ['cat'], { stdin: true });
    const closed = await run(podId, cfg, 'nostdin', ['cat']);
    const log = async (): Promise<string> => readFile(join(dir, 'tty', 'tty.log'), 'utf8').catch(() => '');
    for (let i = 0; i < 100 && !(await log()).includes('is-a-tty'); i++) await sleep(20);
    const lines = (await log()).split('\n').filter(Boolean);
    assert.match(lines[0] ?? '', /^\S+ stdout F \/dev\/pts\/\d+\r?$/, 'tty(1) names a pty, logged as stdout');
    assert.match(lines[1] ?? '', /^\S+ stdout F is-a-tty\r?$/);
    for (let i = 0; i < 100 && (await d.client.containerStatus({ container_id: closed })).status?.state !== 'CONTAINER_EXITED'; i++) await sleep(20);
    const st = (await d.client.containerStatus({ container_id: closed })).status!;
    assert.deepEqual([st.state, st.exit_code], ['CONTAINER_EXITED', 0], 'cat without stdin reads EOF at once');
    assert.equal((await d.client.containerStatus({ container_id: open })).status?.state, 'CONTAINER_RUNNING', 'cat with stdin waits for input');
    assert.equal((await d.client.containerStatus({ container_id: tty })).status?.state, 'CONTAINER_RUNNING');
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('an OOM-killed container reports reason OOMKilled and exit code 137 (from its monitor)', async () => {
    const cfg = pod('oom');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    // Memory limits come with the resources issue: the test sets the cgroup's limit itself while
    // the container sleeps, then the container's init allocates without bound.
    const id = await run(podId, cfg, 'hog', ['sh', '-c', 'sleep 1; exec tail /dev/zero']);
    const memcg = join('/sys/fs/cgroup/memory', cgroupParent, id);
    await writeFile(join(memcg, 'memory.limit_in_bytes'), String(16 << 20));
    await writeFile(join(memcg, 'memory.memsw.limit_in_bytes'), String(16 << 20)).catch(() => undefined);
    let st = (await d.client.containerStatus({ container_id: id })).status!;
    for (let i = 0; i < 250 && st.state !== 'CONTAINER_EXITED'; i++) {
      await sleep(20);
      st = (await d.client.containerStatus({ container_id: id })).status!;
    }
    assert.deepEqual([st.state, st.exit_code, st.reason], ['CONTAINER_EXITED', 137, 'OOMKilled']);
    const exit = JSON.parse(await readFile(join(d.state, 'containers', id, 'exit.json'), 'utf8')) as { oom_killed?: boolean };
    assert.equal(exit.oom_killed, true, 'the monitor recorded it');
    // The pod itself lives on.
    assert.equal((await d.client.podSandboxStatus({ pod_sandbox_id: podId })).status?.state, 'SANDBOX_READY');
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('a line longer than 16 KiB is logged as P records and a final F record', async () => {
    const cfg = pod('longline');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    const id = await run(podId, cfg, 'long', ['sh', '-c', 'busybox head -c 40000 /dev/zero | busybox tr "\\0" a; echo; echo short; sleep 3600']);
    const logPath = join(dir, 'longline', 'long.log');
    let text = '';
    for (let i = 0; i < 200 && !text.includes('short'); i++) {
      await sleep(25);
      text = await readFile(logPath, 'utf8').catch(() => '');
    }
    const records = text.trim().split('\n').map((l) => /^(\S+) (stdout|stderr) ([PF]) (.*)$/.exec(l)!);
    const tags = records.map((m) => m[3]).join('');
    assert.match(tags, /^P+FF$/, `tags ${tags}`);
    assert.ok(records.every((m) => Buffer.byteLength(m[4]) <= 16 * 1024));
    assert.equal(records.slice(0, -1).map((m) => m[4]).join(''), 'a'.repeat(40000));
    await d.client.removeContainer({ container_id: id });
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('list filters, the streaming list forms and container events', async () => {
    const events: v1.ContainerEventResponse__Output[] = [];
    let watched = '';
    const reading = (async () => {
      // Leaving the loop cancels the stream.
      for await (const ev of d.client.getContainerEvents({})) {
        events.push(ev);
        if (ev.container_id === watched && ev.container_event_type === 'CONTAINER_DELETED_EVENT') break;
      }
    })();
    await sleep(100); // the stream is open before the first event
    const cfg = pod('filters');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    watched = podId; // the stream ends with the sandbox's deletion, the last event of this test
    const other = pod('filters-other');
    const { pod_sandbox_id: otherId } = await d.client.runPodSandbox({ config: other });
    const running = await run(podId, cfg, 'running', ['sleep', '3600']);
    const { container_id: created } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name: 'created', attempt: 0 }, image: { image }, command: ['true'], labels: { name: 'created' } },
      sandbox_config: cfg,
    });
    const ids = async (f: v1.ContainerFilter): Promise<string[]> => (await d.client.listContainers({ filter: f })).containers.map((c) => c.id).sort();
    assert.deepEqual(await ids({ pod_sandbox_id: podId }), [running, created].sort());
    assert.deepEqual(await ids({ id: running.slice(0, 12) }), [running]);
    assert.deepEqual(await ids({ state: { state: 'CONTAINER_CREATED' } }), [created]);
    assert.deepEqual(await ids({ label_selector: { name: 'running' } }), [running]);
    assert.deepEqual(await ids({ pod_sandbox_id: otherId }), []);
    const pods = async (f: v1.PodSandboxFilter): Promise<string[]> => (await d.client.listPodSandbox({ filter: f })).items.map((p) => p.id).sort();
    assert.deepEqual(await pods({ label_selector: { pod: 'filters' } }), [podId]);
    assert.deepEqual(await pods({ id: otherId.slice(0, 10) }), [otherId]);
    await d.client.stopPodSandbox({ pod_sandbox_id: otherId });
    assert.deepEqual(await pods({ state: { state: 'SANDBOX_NOTREADY' } }), [otherId]);
    const streamedPods: string[] = [];
    for await (const r of d.client.streamPodSandboxes({ filter: { label_selector: { pod: 'filters' } } })) streamedPods.push(...r.pod_sandboxes.map((p) => p.id));
    assert.deepEqual(streamedPods, [podId]);
    const streamed: string[] = [];
    for await (const r of d.client.streamContainers({ filter: { pod_sandbox_id: podId } })) streamed.push(...r.containers.map((c) => c.id));
    assert.deepEqual(streamed.sort(), [running, created].sort());

    await d.client.removePodSandbox({ pod_sandbox_id: podId });
    await d.client.removePodSandbox({ pod_sandbox_id: otherId });
    await reading;
    const seen = events.filter((e) => e.container_id === running).map((e) => e.container_event_type);
    assert.deepEqual(seen, ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    const started = events.find((e) => e.container_id === running && e.container_event_type === 'CONTAINER_STARTED_EVENT');
    assert.equal(started?.pod_sandbox_status?.id, podId);
    // The sandbox's own lifecycle, keyed by its id.
    assert.deepEqual(
      events.filter((e) => e.container_id === podId).map((e) => e.container_event_type),
      ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'],
    );
  });

  test('the skiff CLI runs a pod end to end with crictl command names', async () => {
    const podFile = join(dir, 'pod.json');
    const ctrFile = join(dir, 'ctr.yaml');
    await writeFile(podFile, JSON.stringify({ metadata: { name: 'cli', namespace: 'features', uid: 'uid-cli' }, log_directory: join(dir, 'cli'), linux: { cgroup_parent: cgroupParent } }));
    await writeFile(ctrFile, `metadata: {name: web}\nimage: {image: "${image}"}\ncommand: [sh, -c, "echo from-cli; exec sleep 3600"]\nenvs: [{key: GREETING, value: hello}]\nlog_path: web.log\n`);
    const cli = async (...args: string[]): Promise<string> => {
      const r = await d.cli(args);
      assert.equal(r.code, 0, `skiff ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const podId = (await cli('runp', podFile)).trim();
    assert.match(podId, /^[a-f0-9]{64}$/);
    const ctrId = (await cli('create', podId, ctrFile, podFile)).trim();
    await cli('start', ctrId);
    assert.match(await cli('ps'), new RegExp(`${ctrId.slice(0, 13)}.*Running.*web`));
    assert.match(await cli('pods', '--name', 'cli'), /Ready\s+cli\s+features/);
    assert.equal((await cli('exec', '-s', ctrId, 'sh', '-c', 'echo $GREETING')).trim(), 'hello');
    const inspect = JSON.parse(await cli('inspect', ctrId)) as { status: { state: string } };
    assert.equal(inspect.status.state, 'CONTAINER_RUNNING');
    let logs = '';
    for (let i = 0; i < 100 && !logs.includes('from-cli'); i++) {
      logs = (await d.cli(['logs', ctrId])).stdout;
      await sleep(20);
    }
    assert.equal(logs, 'from-cli\n');
    await cli('stop', '-t', '1', ctrId);
    await cli('rm', ctrId);
    await cli('stopp', podId);
    await cli('rmp', podId);
    assert.doesNotMatch(await cli('pods', '-q'), new RegExp(podId));
  });

  test('the stop signal comes from the image when the config has none; ReopenContainerLog moves logging to a new file', async () => {
    const trapImage = (
      await pushImage(reg, 'trap', '1', { layers: [await busyboxLayer('gzip')], format: 'docker', config: { StopSignal: 'SIGUSR1' } })
    ).ref;
    await d.client.pullImage({ image: { image: trapImage } });
    const cfg = pod('signals');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    const { container_id: id } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: {
        metadata: { name: 'trap', attempt: 0 },
        image: { image: trapImage },
        command: ['sh', '-c', 'trap "echo got-usr1; exit 0" USR1; echo ready; while true; do sleep 0.1; done'],
        log_path: 'trap.log',
      },
      sandbox_config: cfg,
    });
    await d.client.startContainer({ container_id: id });
    const logPath = join(dir, 'signals', 'trap.log');
    for (let i = 0; i < 200 && !(await readFile(logPath, 'utf8').catch(() => '')).includes('ready'); i++) await sleep(20);
    // Rotate as kubelet does: rename, then ask the runtime to reopen.
    await rename(logPath, logPath + '.1');
    await d.client.reopenContainerLog({ container_id: id });
    await d.client.stopContainer({ container_id: id, timeout: '10' });
    const st = await d.client.containerStatus({ container_id: id });
    assert.equal(st.status?.exit_code, 0, 'the trap ran: SIGUSR1 was the stop signal');
    assert.equal(st.status?.reason, 'Completed');
    assert.match(await readFile(logPath, 'utf8'), /stdout F got-usr1/);
    assert.doesNotMatch(await readFile(logPath + '.1', 'utf8'), /got-usr1/);
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });

  test('host namespaces and DNS: hostNetwork, hostIPC and hostPID pods use the node namespaces; DNSConfig becomes resolv.conf', async () => {
    const hostCfg = pod('hostns', {
      linux: { cgroup_parent: cgroupParent, security_context: { namespace_options: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } },
    });
    const { pod_sandbox_id: hostPod } = await d.client.runPodSandbox({ config: hostCfg });
    const h = await run(hostPod, hostCfg, 'h', ['sleep', '3600']);
    const mine = (ns: string): string => readlinkSync(`/proc/self/ns/${ns}`);
    const theirs = (await sh(h, 'for n in net ipc pid; do busybox readlink /proc/self/ns/$n; done')).out.trim().split('\n');
    assert.deepEqual(theirs, [mine('net'), mine('ipc'), mine('pid')]);
    await d.client.removePodSandbox({ pod_sandbox_id: hostPod });

    const dnsCfg = pod('dns', { dns_config: { servers: ['10.96.0.10'], searches: ['dns.svc.cluster.local'], options: ['ndots:5'] } });
    const { pod_sandbox_id: dnsPod } = await d.client.runPodSandbox({ config: dnsCfg });
    const c = await run(dnsPod, dnsCfg, 'c', ['sleep', '3600']);
    assert.equal((await sh(c, 'cat /etc/resolv.conf')).out, 'search dns.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
    assert.notEqual((await sh(c, 'busybox readlink /proc/self/ns/net')).out.trim(), mine('net'));
    await d.client.removePodSandbox({ pod_sandbox_id: dnsPod });
  });

  test('pod sysctls apply inside; a missing hostPath directory is made, as containerd does', async () => {
    const cfg = pod('sysctl', { linux: { cgroup_parent: cgroupParent, sysctls: { 'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel.shm_rmid_forced': '1' } } });
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    const missing = join(dir, 'made-by-skiff', 'data');
    const id = await run(podId, cfg, 's', ['sleep', '3600'], {
      mounts: [{ container_path: '/data', host_path: missing, readonly: false, selinux_relabel: false, propagation: 'PROPAGATION_PRIVATE' }],
    });
    assert.equal((await sh(id, 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced')).out, '1024\n1\n');
    await sh(id, 'echo from-container > /data/f');
    assert.equal(await readFile(join(missing, 'f'), 'utf8'), 'from-container\n');
    await assert.rejects(
      d.client.runPodSandbox({ config: pod('badsysctl', { linux: { cgroup_parent: cgroupParent, sysctls: { 'vm.swappiness': '1' } } }) }).then(async (r) => {
        const c = await run(r.pod_sandbox_id, pod('badsysctl'), 'x', ['true']).finally(() => d.client.removePodSandbox({ pod_sandbox_id: r.pod_sandbox_id }));
        return c;
      }),
      /vm.swappiness/,
    );
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });
});
