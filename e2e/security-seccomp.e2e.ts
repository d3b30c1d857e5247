// e2e: seccomp, AppArmor and SELinux requests, checked from inside containers by skiff-probe
// (native/probe.c, bind-mounted read-only at /probe), on crun and runc: RuntimeDefault blocks
// unshare and keyctl but not chmod, a Localhost profile that denies chmod does, Unconfined and
// privileged containers have no filter, the deprecated profile strings work; on crun the filter
// comes precompiled by skiffd (run.oci.seccomp_bpf_data), on runc from linux.seccomp; bad requests fail
// with INVALID_ARGUMENT and leave no container, bundle, layer or mount behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type * as v1 from '../cri/gen/v1.js';
import { nativeBinary } from '../native/native.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

const PROBE = nativeBinary('skiff-probe');
const HANDLERS = ['crun', 'runc'] as const;

const DENY_CHMOD = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [{ names: ['chmod', 'fchmod', 'fchmodat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

describe('seccomp, AppArmor and SELinux', () => {
  let w: PodWorld;
  let denyChmod = '';
  before(async () => {
    w = await startPodWorld();
    denyChmod = join(w.dir, 'deny-chmod.json');
    await writeFile(denyChmod, JSON.stringify(DENY_CHMOD));
    await writeFile(join(w.dir, 'malformed.json'), '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [');
  });
  after(async () => {
    await w?.close();
  });

  const pod = (name: string, handler: string, sc: v1.LinuxSandboxSecurityContext = {}): v1.PodSandboxConfig => ({
    metadata: { name: `${name}-${handler}`, namespace: 'seccomp', uid: `uid-${name}-${handler}`, attempt: 0 },
    hostname: name,
    log_directory: join(w.dir, `${name}-${handler}`),
    linux: { cgroup_parent: w.cgroupParent, security_context: sc },
  });

  const probeMount: v1.Mount = { container_path: '/probe', host_path: PROBE, readonly: true };

  async function create(podId: string, cfg: v1.PodSandboxConfig, name: string, sc: v1.LinuxContainerSecurityContext): Promise<string> {
    const { container_id: id } = await w.d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name, attempt: 0 }, image: { image: w.image }, command: ['sleep', '3600'], mounts: [probeMount], linux: { security_context: sc } },
      sandbox_config: cfg,
    });
    return id;
  }

  async function run(podId: string, cfg: v1.PodSandboxConfig, name: string, sc: v1.LinuxContainerSecurityContext): Promise<string> {
    const id = await create(podId, cfg, name, sc);
    await w.d.client.startContainer({ container_id: id });
    return id;
  }

  async function probe(id: string, ...args: string[]): Promise<string> {
    const r = await w.d.client.execSync({ container_id: id, cmd: ['/probe', ...args], timeout: '10' });
    assert.equal(r.exit_code, 0, Buffer.from(r.stderr).toString());
    return Buffer.from(r.stdout).toString().trim();
  }

  async function seccompMode(id: string): Promise<string> {
    return /^Seccomp:\s+(\d)/m.exec(await probe(id, 'status'))?.[1] ?? '?';
  }

  /**
   * crun gets linux.seccomp precompiled by skiffd in run.oci.seccomp_bpf_data, and keeps linux.seccomp
   * for its flags; the program crun loaded (its state dir's seccomp.bpf) is that one. runc: no annotation.
   */
  async function checkPrecompiled(id: string, handler: string): Promise<void> {
    const config = JSON.parse(await readFile(join(w.d.state, 'containers', id, 'config.json'), 'utf8')) as { annotations?: Record<string, string>; linux: { seccomp?: unknown } };
    assert.ok(config.linux.seccomp, 'linux.seccomp stays');
    const bpf = config.annotations?.['run.oci.seccomp_bpf_data'];
    if (handler !== 'crun') {
      assert.equal(bpf, undefined, `no annotation for ${handler}`);
      return;
    }
    assert.ok(bpf, 'run.oci.seccomp_bpf_data is set for crun');
    const program = Buffer.from(bpf, 'base64');
    assert.ok(program.length > 0 && program.length % 8 === 0, `${program.length} bytes of BPF`);
    assert.deepEqual(await readFile(join(w.d.state, 'runtime', handler, id, 'seccomp.bpf')), program, 'crun loaded the precompiled program');
  }

  /** What a failed CreateContainer or RunPodSandbox could have left: records, dirs, mounts. */
  async function leftovers(): Promise<Record<string, unknown>> {
    const ls = (dir: string) => readdir(dir).then((n) => n.sort(), () => [] as string[]);
    const mountinfo = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(w.d.dir));
    return {
      containers: (await w.d.client.listContainers({})).containers.map((c) => c.id).sort(),
      sandboxes: (await w.d.client.listPodSandbox({})).items.map((s) => s.id).sort(),
      bundles: await ls(join(w.d.state, 'containers')),
      sandboxDirs: await ls(join(w.d.state, 'sandboxes')),
      layers: await ls(join(w.d.root, 'containers')),
      mounts: mountinfo.length,
    };
  }

  for (const handler of HANDLERS) {
    test(`RuntimeDefault, Localhost, Unconfined and the deprecated strings, seen from inside [${handler}]`, async () => {
      const cfg = pod('profiles', handler);
      const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: cfg, runtime_handler: handler });

      const rd = await run(podId, cfg, 'runtime-default', { seccomp: { profile_type: 'RuntimeDefault' } });
      assert.equal(await seccompMode(rd), '2', 'filter mode');
      assert.match(await probe(rd, 'status'), /Seccomp_filters:\s+[1-9]/);
      assert.equal(await probe(rd, 'unshare-user'), 'EPERM', 'unshare without CAP_SYS_ADMIN');
      assert.equal(await probe(rd, 'keyctl'), 'EPERM', 'keyctl is never allowed');
      assert.equal(await probe(rd, 'mount', '/mnt'), 'EPERM');
      assert.equal(await probe(rd, 'chmod', '/bin', '755'), 'ok', 'chmod is allowed');
      await checkPrecompiled(rd, handler);

      const old = await run(podId, cfg, 'deprecated-string', { seccomp_profile_path: 'runtime/default' });
      assert.equal(await seccompMode(old), '2');
      assert.equal(await probe(old, 'keyctl'), 'EPERM');

      const local = await run(podId, cfg, 'localhost', { seccomp: { profile_type: 'Localhost', localhost_ref: denyChmod } });
      assert.equal(await seccompMode(local), '2');
      assert.equal(await probe(local, 'chmod', '/bin', '755'), 'EPERM', 'the Localhost profile denies chmod');
      assert.equal(await probe(local, 'keyctl'), 'ok', 'and nothing else');
      await checkPrecompiled(local, handler);

      const oldLocal = await run(podId, cfg, 'localhost-string', { seccomp_profile_path: `localhost/${denyChmod}` });
      assert.equal(await probe(oldLocal, 'chmod', '/bin', '755'), 'EPERM');

      const free = await run(podId, cfg, 'unconfined', { seccomp: { profile_type: 'Unconfined' } });
      assert.equal(await seccompMode(free), '0');
      assert.equal(await probe(free, 'keyctl'), 'ok');
      const none = await run(podId, cfg, 'no-request', {});
      assert.equal(await seccompMode(none), '0', 'nothing asked ("" from kubelet): unconfined');
      await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
    });

    test(`a privileged container has no filter, even when RuntimeDefault is asked (containerd) [${handler}]`, async () => {
      const cfg = pod('privileged', handler, { privileged: true });
      const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const plain = await run(podId, cfg, 'plain', { privileged: true });
      assert.equal(await seccompMode(plain), '0');
      const asked = await run(podId, cfg, 'asked', { privileged: true, seccomp: { profile_type: 'RuntimeDefault' } });
      assert.equal(await seccompMode(asked), '0');
      await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
    });

    test(`bad requests fail CreateContainer with INVALID_ARGUMENT and leave nothing behind [${handler}]`, async () => {
      const cfg = pod('bad', handler);
      const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const before = await leftovers();
      const rows: { name: string; sc: v1.LinuxContainerSecurityContext; message: RegExp }[] = [
        { name: 'unknown-type', sc: { seccomp: { profile_type: 7 as unknown as 'Localhost' } }, message: /container "unknown-type": seccomp profile type 7 is not one of RuntimeDefault, Unconfined, Localhost/ },
        { name: 'missing-file', sc: { seccomp: { profile_type: 'Localhost', localhost_ref: join(w.dir, 'gone.json') } }, message: new RegExp(`seccomp profile ${join(w.dir, 'gone.json')}: cannot read it: ENOENT`) },
        { name: 'malformed', sc: { seccomp: { profile_type: 'Localhost', localhost_ref: join(w.dir, 'malformed.json') } }, message: /seccomp profile .*malformed.json: not JSON: / },
        { name: 'bad-string', sc: { seccomp_profile_path: 'strict' }, message: /seccomp profile "strict" is not runtime\/default/ },
        { name: 'apparmor', sc: { apparmor: { profile_type: 'RuntimeDefault' } }, message: /apparmor is not supported on this node/ },
        { name: 'apparmor-string', sc: { apparmor_profile: 'localhost/k8s-nginx' }, message: /apparmor is not supported on this node .* localhost\/k8s-nginx/ },
      ];
      for (const r of rows) {
        await assert.rejects(create(podId, cfg, r.name, r.sc), (e: ServiceError) => {
          assert.equal(e.code, GrpcStatus.INVALID_ARGUMENT, `${r.name}: ${e.message}`);
          assert.match(e.message, r.message);
          return true;
        });
        assert.deepEqual(await leftovers(), before, `${r.name}: nothing left behind`);
      }
      // SELinux labels on a node without SELinux are ignored, as containerd does.
      const labelled = await run(podId, cfg, 'selinux', { selinux_options: { user: 'system_u', role: 'system_r', type: 'container_t', level: 's0:c1,c2' } });
      assert.equal(await seccompMode(labelled), '0');
      await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
    });
  }

  test('bad sandbox requests fail RunPodSandbox with INVALID_ARGUMENT and leave nothing behind', async () => {
    const before = await leftovers();
    const rows: { name: string; sc: v1.LinuxSandboxSecurityContext; message: RegExp }[] = [
      { name: 'sb-apparmor', sc: { apparmor: { profile_type: 'RuntimeDefault' } }, message: /^3 INVALID_ARGUMENT: RunPodSandbox: apparmor is not supported on this node/ },
      { name: 'sb-type', sc: { seccomp: { profile_type: 5 as unknown as 'Localhost' } }, message: /RunPodSandbox: seccomp profile type 5 is not one of/ },
      { name: 'sb-missing', sc: { seccomp: { profile_type: 'Localhost', localhost_ref: '/nonexistent/profile.json' } }, message: /RunPodSandbox: seccomp profile \/nonexistent\/profile.json: cannot read it: ENOENT/ },
    ];
    for (const r of rows) {
      await assert.rejects(w.d.client.runPodSandbox({ config: pod(r.name, 'crun', r.sc) }), (e: ServiceError) => {
        assert.equal(e.code, GrpcStatus.INVALID_ARGUMENT, `${r.name}: ${e.message}`);
        assert.match(e.message, r.message);
        return true;
      });
      assert.deepEqual(await leftovers(), before, `${r.name}: nothing left behind`);
    }
  });

  test('the sandbox profile is loaded into skiff-pause (with no_new_privs); Unconfined and privileged sandboxes run unfiltered', async () => {
    const pauseStatus = async (sc: Partial<v1.LinuxSandboxSecurityContext>, name: string): Promise<{ seccomp: string; nnp: string; filters: string }> => {
      const { pod_sandbox_id: podId } = await w.d.client.runPodSandbox({ config: pod(name, 'crun', sc) });
      try {
        const pid = Number((await readFile(join(w.d.state, 'sandboxes', podId, 'pause.pid'), 'utf8')).trim());
        const status = await readFile(`/proc/${pid}/status`, 'utf8');
        const field = (k: string): string => new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? '?';
        return { seccomp: field('Seccomp'), nnp: field('NoNewPrivs'), filters: field('Seccomp_filters') };
      } finally {
        await w.d.client.removePodSandbox({ pod_sandbox_id: podId });
      }
    };
    assert.deepEqual(await pauseStatus({ seccomp: { profile_type: 'RuntimeDefault' } }, 'sb-default'), { seccomp: '2', nnp: '1', filters: '1' });
    const path = join(w.dir, 'sb-deny-chmod.json');
    await writeFile(path, JSON.stringify(DENY_CHMOD));
    assert.deepEqual(await pauseStatus({ seccomp: { profile_type: 'Localhost', localhost_ref: path } }, 'sb-local'), { seccomp: '2', nnp: '1', filters: '1' });
    assert.equal((await pauseStatus({ seccomp: { profile_type: 'Unconfined' } }, 'sb-unconfined')).seccomp, '0');
    assert.equal((await pauseStatus({ seccomp: { profile_type: 'RuntimeDefault' }, privileged: true }, 'sb-priv')).seccomp, '0');
  });
});
