// e2e: the process-security knobs of a container, read back by the kernel from inside it with crun
// (the default handler) and runc: capability sets (CapEff/CapPrm/CapBnd/CapInh/CapAmb of the
// container's PID 1) for containerd's default set, add/drop with ALL on either side, ambient for a
// non-root user and privileged; no_new_privs against a setuid-root probe; supplemental groups
// Merge vs Strict and ContainerStatus.user; ProcMount Default vs Unmasked; pod sysctls; and bad
// input (a non-namespaced sysctl, an unknown capability) refused with INVALID_ARGUMENT, nothing kept.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type * as v1 from '../cri/gen/v1.js';
import { nativeBinary } from '../native/native.js';
import { buildLayer, busyboxEntries } from './harness/layer.js';
import { pushImage } from './harness/push.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

/** containerd's default set (pkg/oci defaultUnixCaps), as /proc/PID/status prints it. */
const DEFAULT_MASK = 0xa80425fbn;
const bit = (n: number): bigint => 1n << BigInt(n);
const CAP = { NET_BIND_SERVICE: 10, NET_ADMIN: 12, SYS_ADMIN: 21 } as const;
const hex = (m: bigint): string => m.toString(16).padStart(16, '0');

/** kubelet's DefaultMaskedPaths / DefaultReadonlyPaths (pkg/securitycontext), sent for ProcMount Default. */
const KUBELET_MASKED = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'];
const KUBELET_READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];


describe('security contexts: capabilities, no_new_privs, groups, ProcMount, sysctls', () => {
  let w: PodWorld;
  let image: string;
  /** skiffd's own bounding set: what "all capabilities" means here. */
  let hostBnd: bigint;

  before(async () => {
    w = await startPodWorld();
    {
      const base = (await busyboxEntries()).filter((e) => e.path !== '/etc/group');
      const layer = await buildLayer([
        ...base,
        // skiff (uid 1000) is a member of "extra" only through /etc/group: Merge adds it, Strict not.
        { path: '/etc/group', type: 'file', content: 'root:x:0:\nskiff:x:1000:\nextra:x:4000:skiff\n' },
        // `skiff-probe euid` prints the effective uid; busybox will not do (it drops a setuid root).
        { path: '/bin/euid', type: 'file', content: await readFile(nativeBinary('skiff-probe')), mode: 0o4755, uid: 0, gid: 0 },
      ], 'gzip');
      image = (await pushImage(w.reg, 'security', '1', { layers: [layer], format: 'docker', config: { Cmd: ['sh'] } })).ref;
    }
    await w.d.client.pullImage({ image: { image } });
    hostBnd = BigInt('0x' + /^CapBnd:\s*(\w+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  });
  after(async () => {
    await w?.close();
  });

  const pod = (name: string, handler: string, linux: Partial<v1.LinuxPodSandboxConfig> = {}): v1.PodSandboxConfig => ({
    metadata: { name: `${name}-${handler}`, namespace: 'security', uid: `uid-${name}-${handler}`, attempt: 0 },
    hostname: name,
    log_directory: join(w.dir, `${name}-${handler}`),
    linux: { cgroup_parent: w.cgroupParent, ...linux },
  });

  async function runPod(name: string, handler: string, linux: Partial<v1.LinuxPodSandboxConfig> = {}): Promise<{ podId: string; cfg: v1.PodSandboxConfig }> {
    const cfg = pod(name, handler, linux);
    const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
    return { podId, cfg };
  }

  async function run(podId: string, cfg: v1.PodSandboxConfig, name: string, sc: v1.LinuxContainerSecurityContext, command = ['sleep', '3600']): Promise<string> {
    const { container_id: id } = await w.d.client.createContainer({
      pod_sandbox_id: podId,
      // pid CONTAINER, as kubelet sends it without shareProcessNamespace: PID 1 is the container's.
      config: { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}.log`, linux: { security_context: { ...sc, namespace_options: { pid: 'CONTAINER', ...sc.namespace_options } } } },
      sandbox_config: cfg,
    });
    await w.d.client.startContainer({ container_id: id });
    return id;
  }

  async function sh(id: string, script: string): Promise<string> {
    const r = await w.d.client.execSync({ container_id: id, cmd: ['sh', '-c', script], timeout: '10' });
    assert.equal(r.exit_code, 0, `${script}: ${Buffer.from(r.stderr).toString()}`);
    return Buffer.from(r.stdout).toString();
  }

  /** The capability sets and NoNewPrivs of the container's PID 1 (its own pid namespace). */
  async function pid1(id: string): Promise<Record<string, string>> {
    const out = await sh(id, 'grep -E "^(Cap|NoNewPrivs)" /proc/1/status');
    return Object.fromEntries(out.trim().split('\n').map((l) => l.split(/:\s+/) as [string, string]));
  }

  const rejectsWith = (p: Promise<unknown>, code: number, details: RegExp): Promise<void> =>
    assert.rejects(p, (e: ServiceError) => {
      assert.equal(e.code, code, `${e.code} ${e.details}`);
      assert.match(e.details, details);
      return true;
    });

  const caps = (add: string[], drop: string[] = [], ambient: string[] = []): v1.Capability => ({ add_capabilities: add, drop_capabilities: drop, add_ambient_capabilities: ambient });

  for (const handler of ['crun', 'runc']) {
    describe(handler, () => {
      test(`capability sets: containerd's default, add/drop with ALL on either side, privileged = all [${handler}]`, async () => {
        const { podId, cfg } = await runPod('caps', handler, { security_context: { privileged: true } });
        const rows: { name: string; sc: v1.LinuxContainerSecurityContext; want: bigint }[] = [
          { name: 'default', sc: {}, want: DEFAULT_MASK },
          { name: 'add-net-admin', sc: { capabilities: caps(['NET_ADMIN']) }, want: DEFAULT_MASK | bit(CAP.NET_ADMIN) },
          { name: 'drop-all', sc: { capabilities: caps([], ['ALL']) }, want: 0n },
          { name: 'drop-all-add-one', sc: { capabilities: caps(['NET_ADMIN'], ['ALL']) }, want: bit(CAP.NET_ADMIN) },
          { name: 'all-but-sys-admin', sc: { capabilities: caps(['ALL'], ['SYS_ADMIN']) }, want: hostBnd & ~bit(CAP.SYS_ADMIN) },
          { name: 'privileged', sc: { privileged: true }, want: hostBnd },
        ];
        for (const r of rows) {
          const s = await pid1(await run(podId, cfg, r.name, r.sc));
          // Root's permitted set after execve is its bounding set; inheritable and ambient stay empty.
          assert.deepEqual([s.CapEff, s.CapPrm, s.CapBnd, s.CapInh, s.CapAmb], [hex(r.want), hex(r.want), hex(r.want), hex(0n), hex(0n)], r.name);
        }
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      test(`ambient capabilities reach a non-root process; added ones without ambient do not [${handler}]`, async () => {
        const { podId, cfg } = await runPod('ambient', handler);
        const amb = await pid1(await run(podId, cfg, 'ambient', { run_as_user: { value: '1000' }, capabilities: caps([], ['ALL'], ['NET_BIND_SERVICE']) }));
        const nb = hex(bit(CAP.NET_BIND_SERVICE));
        assert.deepEqual([amb.CapEff, amb.CapPrm, amb.CapBnd, amb.CapInh, amb.CapAmb], [nb, nb, nb, nb, nb]);
        const plain = await pid1(await run(podId, cfg, 'plain', { run_as_user: { value: '1000' }, capabilities: caps(['NET_ADMIN']) }));
        assert.deepEqual([plain.CapEff, plain.CapPrm, plain.CapAmb], [hex(0n), hex(0n), hex(0n)], 'a non-root execve drops what is not ambient');
        assert.equal(plain.CapBnd, hex(DEFAULT_MASK | bit(CAP.NET_ADMIN)));
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      test(`no_new_privs keeps a setuid-root binary at uid 1000; without it the binary runs as root [${handler}]`, async () => {
        const { podId, cfg } = await runPod('nnp', handler);
        // The main process runs the probe at start (the init path), then an exec runs it again.
        const probe = ['sh', '-c', '/bin/euid euid > /tmp/euid; sleep 3600'];
        const locked = await run(podId, cfg, 'locked', { run_as_user: { value: '1000' }, no_new_privs: true }, probe);
        const open = await run(podId, cfg, 'open', { run_as_user: { value: '1000' }, no_new_privs: false }, probe);
        assert.equal((await pid1(locked)).NoNewPrivs, '1');
        assert.equal((await pid1(open)).NoNewPrivs, '0');
        assert.equal(await sh(locked, 'id -u; cat /tmp/euid; /bin/euid euid'), '1000\n1000\n1000\n');
        assert.equal(await sh(open, 'id -u; cat /tmp/euid; /bin/euid euid'), '1000\n0\n0\n');
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      test(`supplemental groups: Merge adds the image's /etc/group memberships, Strict does not; ContainerStatus.user [${handler}]`, async () => {
        const { podId, cfg } = await runPod('groups', handler);
        const groups = async (id: string): Promise<string[]> => (await sh(id, 'id -G')).trim().split(/\s+/);
        const merge = await run(podId, cfg, 'merge', { run_as_user: { value: '1000' }, supplemental_groups: ['5000'], supplemental_groups_policy: 'Merge' });
        const strict = await run(podId, cfg, 'strict', { run_as_user: { value: '1000' }, supplemental_groups: ['5000'], supplemental_groups_policy: 'Strict' });
        assert.deepEqual(await groups(merge), ['1000', '4000', '5000']);
        assert.deepEqual(await groups(strict), ['1000', '5000']);
        const user = async (id: string) => (await w.d.client.containerStatus({ container_id: id })).status!.user?.linux;
        assert.deepEqual(await user(merge), { uid: '1000', gid: '1000', supplemental_groups: ['1000', '4000', '5000'] });
        assert.deepEqual(await user(strict), { uid: '1000', gid: '1000', supplemental_groups: ['1000', '5000'] });
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      // /proc/kcore does not exist on this kernel (no CONFIG_PROC_KCORE): /proc/timer_list does.
      const masked = async (id: string): Promise<{ timerList: boolean; sysRo: boolean }> => {
        const mi = await sh(id, 'cat /proc/self/mountinfo');
        const line = (p: string) => mi.split('\n').find((l) => l.split(' ')[4] === p);
        return { timerList: line('/proc/timer_list') !== undefined, sysRo: /(^|,)ro(,|$)/.test(line('/proc/sys')?.split(' ')[5] ?? '') };
      };

      test(`ProcMount Default: kubelet's lists mask /proc/timer_list and make /proc/sys read-only; no lists outside a user namespace, the same [${handler}]`, async () => {
        const { podId, cfg } = await runPod('procmount', handler);
        const def = await run(podId, cfg, 'default', { masked_paths: KUBELET_MASKED, readonly_paths: KUBELET_READONLY });
        assert.deepEqual(await masked(def), { timerList: true, sysRo: true });
        assert.equal(await sh(def, 'cat /proc/timer_list | wc -c'), '0\n');
        assert.deepEqual(await masked(await run(podId, cfg, 'nolists', { run_as_user: { value: '0' } })), { timerList: true, sysRo: true });
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      test(`ProcMount Unmasked (both lists empty) in a user-namespaced pod masks nothing [${handler}]`, async (t) => {
        const st = await w.d.client.status({ verbose: false });
        if (!st.runtime_handlers.find((h) => h.name === handler)?.features?.user_namespaces) {
          t.skip(`${handler}: no user namespace support reported, and kubelet sends Unmasked only with hostUsers: false`);
          return;
        }
        const map = [{ container_id: 0, host_id: 1_000_000, length: 65536 }];
        const userns = { namespace_options: { userns_options: { mode: 'POD' as const, uids: map, gids: map } } };
        const { podId, cfg } = await runPod('unmasked', handler, { security_context: userns });
        try {
          const un = await run(podId, cfg, 'unmasked', { ...userns, masked_paths: [], readonly_paths: [] });
          assert.deepEqual(await masked(un), { timerList: false, sysRo: false });
        } finally {
          await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
        }
      });

      test(`pod sysctls are set in the pod's namespaces [${handler}]`, async () => {
        const sysctls = { 'net.ipv4.ip_unprivileged_port_start': '80', 'kernel.shmmax': '123456789', 'fs.mqueue.msg_max': '20' };
        const { podId, cfg } = await runPod('sysctl', handler, { sysctls });
        const id = await run(podId, cfg, 's', {});
        assert.equal(await sh(id, 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max'), '80\n123456789\n20\n');
        assert.notEqual(readFileSync('/proc/sys/kernel/shmmax', 'utf8').trim(), '123456789', 'not the host');
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });

      test(`bad input: a non-namespaced sysctl and an unknown capability are INVALID_ARGUMENT, nothing left [${handler}]`, async () => {
        const podsBefore = (await w.d.client.listPodSandbox({})).items.length;
        const netnsBefore = readdirSync(join(w.d.state, 'netns')).join(' ');
        await rejectsWith(runPod('panic', handler, { sysctls: { 'kernel.panic': '1' } }), GrpcStatus.INVALID_ARGUMENT, /sysctl "kernel\.panic" is not namespaced/);
        await rejectsWith(runPod('hostname', handler, { sysctls: { 'kernel.hostname': 'x' } }), GrpcStatus.INVALID_ARGUMENT, /kernel\.hostname/);
        await rejectsWith(
          runPod('hostnet', handler, { sysctls: { 'net.core.somaxconn': '1024' }, security_context: { namespace_options: { network: 'NODE' } } }),
          GrpcStatus.INVALID_ARGUMENT,
          /sysctl "net\.core\.somaxconn" is not allowed with host network/,
        );
        assert.equal((await w.d.client.listPodSandbox({})).items.length, podsBefore);
        assert.equal(readdirSync(join(w.d.state, 'netns')).join(' '), netnsBefore);

        const { podId, cfg } = await runPod('badcap', handler);
        await rejectsWith(run(podId, cfg, 'fly', { capabilities: caps(['CAP_FLY']) }), GrpcStatus.INVALID_ARGUMENT, /unknown capability "CAP_FLY" to add/);
        await rejectsWith(run(podId, cfg, 'amball', { capabilities: caps([], [], ['ALL']) }), GrpcStatus.INVALID_ARGUMENT, /"ALL" is not allowed in add_ambient_capabilities/);
        assert.deepEqual((await w.d.client.listContainers({ filter: { pod_sandbox_id: podId } })).containers, []);
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      });
    });
  }
});
