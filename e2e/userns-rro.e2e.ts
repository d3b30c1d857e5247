// e2e: pod user namespaces and recursive read-only mounts, with crun and runc. A user-namespaced
// pod sees root inside and runs as the mapped uid on the host, writes its idmapped rootfs (files
// land in the upper dir owned by the mapped uid); an rro bind of a host dir with a tmpfs submount
// refuses writes in the submount where a plain readonly bind does not. Bad input fails with a
// precise status and leaves no pin, mount or record behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { mount, unmount } from '../native/sys.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

const HOSTBASE = 1_000_000 + 65536 * (process.pid % 64);
const MAPPING = [{ container_id: 0, host_id: HOSTBASE, length: 65536 }];
const mountinfo = (): string => readFileSync('/proc/self/mountinfo', 'utf8');

describe('user namespaces and recursive read-only mounts', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let image: string;
  let host: string;

  const pod = (name: string, userns?: v1.UserNamespace, ns: Partial<v1.NamespaceOption> = {}): v1.PodSandboxConfig => ({
    metadata: { name, namespace: 'userns', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: join(w.dir, name),
    linux: { cgroup_parent: w.cgroupParent, security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD', ...ns, ...(userns ? { userns_options: userns } : {}) } } },
  });

  async function run(podId: string, cfg: v1.PodSandboxConfig, name: string, command: string[], extra: Partial<v1.ContainerConfig> = {}): Promise<string> {
    const { container_id: id } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}.log`, ...extra },
      sandbox_config: cfg,
    });
    await d.client.startContainer({ container_id: id });
    return id;
  }

  async function sh(id: string, script: string): Promise<{ out: string; err: string; code: number }> {
    const r = await d.client.execSync({ container_id: id, cmd: ['sh', '-c', script], timeout: '10' });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code };
  }

  /** The host pid of the process whose command line is exactly `argv`. */
  function findPid(argv: string[]): number | undefined {
    const want = argv.join('\0') + '\0';
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        if (readFileSync(`/proc/${e}/cmdline`, 'utf8') === want) return Number(e);
      } catch {
        // gone
      }
    }
    return undefined;
  }

  /** What a failed run left: pins under the state dir, records, mounts naming the state dir. */
  function leftovers(): string[] {
    const state = d.state;
    const left: string[] = [];
    for (const sub of ['netns', 'sandboxes', 'containers']) {
      try {
        left.push(...readdirSync(join(state, sub)).map((e) => `${sub}/${e}`));
      } catch {
        // none
      }
    }
    left.push(...mountinfo().split('\n').filter((l) => l.includes(state)));
    return left;
  }

  before(async () => {
    w = await startPodWorld();
    ({ d, image } = w);
    host = join(w.dir, 'host');
    mkdirSync(join(host, 'sub'), { recursive: true });
    mount('tmpfs', join(host, 'sub'), 'tmpfs', 0, 'size=1m');
  });

  after(async () => {
    if (host) unmount(join(host, 'sub'));
    await w?.close();
  });

  test('Status reports recursive read-only mounts and user namespaces for crun and runc, not userns with host network', async () => {
    const s = await d.client.status({ verbose: false });
    for (const name of ['crun', 'runc']) {
      const h = s.runtime_handlers.find((x) => x.name === name);
      assert.deepEqual(h?.features, { recursive_read_only_mounts: true, user_namespaces: true }, name);
    }
    assert.equal(s.features?.user_namespaces_host_network, false);
  });

  for (const handler of ['crun', 'runc']) {
    test(`${handler}: a user-namespaced pod is root inside and ${HOSTBASE} on the host; its rootfs writes land owned by ${HOSTBASE}`, async () => {
      const cfg = pod(`userns-${handler}`, { mode: 'POD', uids: MAPPING, gids: MAPPING });
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const marker = handler === 'crun' ? '7771' : '7772';
      const id = await run(podId, cfg, 'app', ['sleep', marker]);
      assert.equal((await sh(id, 'cat /proc/self/uid_map')).out.trim().split(/\s+/).join(' '), `0 ${HOSTBASE} 65536`);
      assert.equal((await sh(id, 'cat /proc/self/gid_map')).out.trim().split(/\s+/).join(' '), `0 ${HOSTBASE} 65536`);
      assert.equal((await sh(id, 'id -u')).out.trim(), '0');
      const pid = findPid(['sleep', marker]);
      assert.ok(pid, 'the container process is found on the host');
      const uids = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      assert.equal(uids, String(HOSTBASE), 'on the host it runs as the mapped uid');
      // The image's root-owned files are the pod root's (idmapped layers): root may change them.
      const w1 = await sh(id, 'echo hi > /etc/written-by-root && ls -ln /etc/written-by-root /bin/busybox');
      assert.equal(w1.code, 0, w1.err);
      assert.match(w1.out, /\s0\s+0\s.*\/bin\/busybox/);
      const upper = join(d.root, 'containers', id, 'upper', 'etc', 'written-by-root');
      assert.equal(statSync(upper).uid, HOSTBASE, 'the upper dir file belongs to the mapped host uid');
      await d.client.stopPodSandbox({ pod_sandbox_id: podId });
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
      assert.ok(!mountinfo().includes(join(d.state, 'containers', id)), 'no idmapped layer left mounted');
      assert.deepEqual(readdirSync(join(d.state, 'sandboxes')).filter((e) => e === podId), []);
    });

    test(`${handler}: a volume with the pod's mappings is idmapped (root's files on both sides), a plain one is not`, async () => {
      const cfg = pod(`idvol-${handler}`, { mode: 'POD', uids: MAPPING, gids: MAPPING });
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const vols = { mapped: join(w.dir, `mapped-${handler}`), plain: join(w.dir, `plain-${handler}`) };
      for (const v of Object.values(vols)) {
        mkdirSync(v, { recursive: true });
        chmodSync(v, 0o777); // the pod's root is an unprivileged uid on the host
        writeFileSync(join(v, 'host-root-file'), 'x'); // owned by host root
      }
      const id = await run(podId, cfg, 'vols', ['sleep', '3600'], {
        mounts: [
          { container_path: '/mapped', host_path: vols.mapped, uidMappings: MAPPING, gidMappings: MAPPING },
          { container_path: '/plain', host_path: vols.plain },
        ],
      });
      const r = await sh(id, 'touch /mapped/by-root /plain/by-root && stat -c %u /mapped/host-root-file /plain/host-root-file');
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, '0\n65534\n', 'host root is the pod root only through the idmapped volume');
      assert.equal(statSync(join(vols.mapped, 'by-root')).uid, 0, 'container root writes as host root through the idmap');
      assert.equal(statSync(join(vols.plain, 'by-root')).uid, HOSTBASE, 'and as the mapped uid through a plain bind');
      const bad = await d.client
        .createContainer({
          pod_sandbox_id: podId,
          config: { metadata: { name: 'other-map', attempt: 0 }, image: { image }, command: ['true'], log_path: 'x.log', mounts: [{ container_path: '/m', host_path: vols.mapped, uidMappings: [{ container_id: 0, host_id: 5000, length: 10 }], gidMappings: MAPPING }] },
          sandbox_config: cfg,
        })
        .then(
          () => undefined,
          (e: { code: number; details: string }) => e,
        );
      assert.equal(bad?.code, 12, `UNIMPLEMENTED for mappings other than the pod's: ${bad?.details ?? 'created'}`);
      await d.client.stopPodSandbox({ pod_sandbox_id: podId });
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
      assert.ok(!mountinfo().includes('idmap-mounts'), 'no idmapped volume copy left mounted');
    });

    test(`${handler}: rro makes a submount read-only where plain readonly does not`, async () => {
      const cfg = pod(`rro-${handler}`);
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const ro = { container_path: '/ro', host_path: host, readonly: true, propagation: 'PROPAGATION_PRIVATE' as const };
      const id = await run(podId, cfg, 'app', ['sleep', '3600'], {
        mounts: [ro, { ...ro, container_path: '/rro', recursive_read_only: true }],
      });
      const plain = await sh(id, 'echo x > /ro/sub/plain && echo written');
      assert.equal(plain.out.trim(), 'written', 'a plain readonly bind leaves the submount writable');
      const rro = await sh(id, 'echo x > /rro/sub/rro');
      assert.notEqual(rro.code, 0);
      assert.match(rro.err, /Read-only file system/);
      const mi = (await sh(id, 'cat /proc/self/mountinfo')).out.split('\n');
      for (const mp of ['/rro', '/rro/sub']) {
        const line = mi.find((l) => l.split(' ')[4] === mp);
        assert.match(line ?? '', /^\S+ \S+ \S+ \S+ \S+ ro[, ]/, `${mp} is mounted ro: ${line}`);
      }
      await d.client.stopPodSandbox({ pod_sandbox_id: podId });
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
    });
  }

  const badPods: { name: string; userns: v1.UserNamespace; ns?: Partial<v1.NamespaceOption>; message: RegExp }[] = [
    { name: 'mode POD without mappings', userns: { mode: 'POD' }, message: /can't use user namespace mode "POD" without UID and GID mappings/ },
    { name: 'two uid mapping lines', userns: { mode: 'POD', uids: [...MAPPING, { container_id: 65536, host_id: 0, length: 1 }], gids: MAPPING }, message: /only one mapping line supported, got 2/ },
    { name: 'a zero-length mapping', userns: { mode: 'POD', uids: [{ container_id: 0, host_id: HOSTBASE, length: 0 }], gids: MAPPING }, message: /invalid mapping length: 0/ },
    { name: 'mode NODE with mappings', userns: { mode: 'NODE', uids: MAPPING, gids: MAPPING }, message: /can't use user namespace mode "NODE" with mappings/ },
    { name: 'host network', userns: { mode: 'POD', uids: MAPPING, gids: MAPPING }, ns: { network: 'NODE' }, message: /cannot be combined with the host network namespace/ },
  ];
  for (const r of badPods) {
    test(`RunPodSandbox with a user namespace and ${r.name} is INVALID_ARGUMENT and leaves nothing`, async () => {
      const before = leftovers();
      await assert.rejects(d.client.runPodSandbox({ config: pod(`bad-${r.name.replace(/\W+/g, '-')}`, r.userns, r.ns) }), (err: { code?: number; details?: string }) => {
        assert.equal(err.code, 3, String(err.details));
        assert.match(err.details ?? '', r.message);
        return true;
      });
      assert.deepEqual(leftovers(), before);
    });
  }

  const badMounts: { name: string; m: Partial<v1.Mount>; message: RegExp }[] = [
    { name: 'rro without readonly', m: { recursive_read_only: true }, message: /recursive read-only \(rro\) requires readonly and private propagation: the mount is read-write/ },
    { name: 'rro with rslave', m: { recursive_read_only: true, readonly: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }, message: /requires readonly and private propagation: propagation is PROPAGATION_HOST_TO_CONTAINER/ },
  ];
  test('CreateContainer with bad rro mounts is INVALID_ARGUMENT and leaves nothing', async () => {
    const cfg = pod('rro-bad');
    const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg });
    for (const r of badMounts) {
      const before = leftovers();
      await assert.rejects(
        d.client.createContainer({ pod_sandbox_id: podId, config: { metadata: { name: 'bad', attempt: 0 }, image: { image }, command: ['true'], mounts: [{ container_path: '/x', host_path: host, ...r.m }] }, sandbox_config: cfg }),
        (err: { code?: number; details?: string }) => {
          assert.equal(err.code, 3, String(err.details));
          assert.match(err.details ?? '', r.message);
          return true;
        },
        r.name,
      );
      assert.deepEqual(leftovers(), before, r.name);
    }
    assert.equal((await d.client.listContainers({})).containers.filter((c) => c.pod_sandbox_id === podId).length, 0);
    await d.client.stopPodSandbox({ pod_sandbox_id: podId });
    await d.client.removePodSandbox({ pod_sandbox_id: podId });
  });
});
