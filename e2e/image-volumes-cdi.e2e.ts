// e2e: image volumes (CRI Mount.image, image_sub_path) and CDI devices, with crun and runc. An
// image volume's content is visible read-only, a sub path mounts only that dir, the image cannot
// be removed while the container exists; a CDI spec in the test's own dir puts /dev/null at
// /dev/skiff-test with an env var and a mount. Bad input gets a precise status and leaves nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as v1 from '../cri/gen/v1.js';
import { buildLayer } from './harness/layer.js';
import { pushImage } from './harness/push.js';
import type { TestDaemon } from './harness/daemon.js';
import { startPodWorld, type PodWorld } from './harness/pod-world.js';

const HANDLERS = ['crun', 'runc'] as const;
type GrpcError = Error & { code?: number };
const status = (code: number, re: RegExp) => (err: GrpcError) => err.code === code && re.test(err.message);

describe('image volumes and CDI devices', () => {
  let w: PodWorld;
  let d: TestDaemon;
  let volImage = '';
  let oneImage = '';

  before(async () => {
    w = await startPodWorld({
      toml: async (dir) => {
        await mkdir(join(dir, 'cdi-etc'), { recursive: true });
        await mkdir(join(dir, 'cdi-run'), { recursive: true });
        return `[cdi]\nspec_dirs = [${JSON.stringify(join(dir, 'cdi-etc'))}, ${JSON.stringify(join(dir, 'cdi-run'))}]\n`;
      },
    });
    d = w.d;
    // Two layers: the top one replaces a file of the bottom one and adds a symlink to a dir.
    const bottom = await buildLayer(
      [
        { path: '/etc', type: 'dir' },
        { path: '/etc/conf', type: 'dir' },
        { path: '/etc/conf/a', type: 'file', content: 'bottom\n' },
        { path: '/share', type: 'dir' },
        { path: '/share/x', type: 'file', content: 'shared x\n' },
      ],
      'gzip',
    );
    const top = await buildLayer(
      [
        { path: '/etc', type: 'dir' },
        { path: '/etc/conf', type: 'dir' },
        { path: '/etc/conf/a', type: 'file', content: 'top\n' },
        { path: '/link', type: 'symlink', linkname: '/share' },
        { path: '/file', type: 'file', content: 'f\n' },
      ],
      'gzip',
    );
    volImage = (await pushImage(w.reg, 'vol', '1', { layers: [bottom, top] })).ref;
    oneImage = (await pushImage(w.reg, 'one', '1', { layers: [await buildLayer([{ path: '/only', type: 'file', content: 'one layer\n' }], 'gzip')] })).ref;
    await d.client.pullImage({ image: { image: oneImage } });
    await mkdir(join(w.dir, 'cdi-data'));
    await writeFile(join(w.dir, 'cdi-data', 'hello'), 'from the host\n');
    await writeFile(
      join(w.dir, 'cdi-run', 'skiff-test.yaml'),
      [
        'cdiVersion: "0.5.0"',
        'kind: skiff.test/dev',
        'containerEdits:',
        '  env: ["SKIFF_CDI_SPEC=1"]',
        'devices:',
        '  - name: null0',
        '    containerEdits:',
        '      deviceNodes:',
        '        - path: /dev/skiff-test',
        '          hostPath: /dev/null',
        '      env: ["SKIFF_CDI=null0"]',
        '      mounts:',
        `        - hostPath: ${join(w.dir, 'cdi-data')}`,
        '          containerPath: /cdi-data',
        '          options: ["ro", "nosuid", "nodev", "rbind"]',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await w?.close();
  });

  const pod = (name: string): v1.PodSandboxConfig => ({
    metadata: { name, namespace: 'imgvol-cdi', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: join(w.dir, name),
    linux: { cgroup_parent: w.cgroupParent },
  });

  async function create(podId: string, cfg: v1.PodSandboxConfig, name: string, extra: Partial<v1.ContainerConfig>): Promise<string> {
    const { container_id: id } = await d.client.createContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name, attempt: 0 }, image: { image: w.image }, command: ['sleep', '3600'], log_path: `${name}.log`, ...extra },
      sandbox_config: cfg,
    });
    return id;
  }

  async function sh(id: string, script: string): Promise<{ out: string; err: string; code: number }> {
    const r = await d.client.execSync({ container_id: id, cmd: ['sh', '-c', script], timeout: '10' });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code };
  }

  const volume = (containerPath: string, image: string, over: Partial<v1.Mount> = {}): v1.Mount => ({ container_path: containerPath, image: { image }, readonly: true, ...over });

  /** Mounts, bundles, writable layers and container records: what a failed create must not leave. */
  async function leftovers(podId: string): Promise<{ mounts: string[]; bundles: string[]; layers: string[]; containers: number }> {
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    const mounts = mountinfo.split('\n').filter((l) => l.includes(join(d.state, 'containers')));
    const ls = (p: string) => readdir(p).catch(() => [] as string[]);
    const containers = (await d.client.listContainers({ filter: { pod_sandbox_id: podId } })).containers.length;
    return { mounts, bundles: await ls(join(d.state, 'containers')), layers: await ls(join(d.root, 'containers')), containers };
  }

  for (const handler of HANDLERS) {
    test(`${handler}: an image volume is visible read-only, image_sub_path mounts only that dir, and its image cannot be removed meanwhile`, async () => {
      await d.client.pullImage({ image: { image: volImage } });
      const cfg = pod(`vol-${handler}`);
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const id = await create(podId, cfg, 'app', {
        mounts: [volume('/vol', volImage), volume('/sub', volImage, { image_sub_path: 'link' }), volume('/one', oneImage)],
      });
      await d.client.startContainer({ container_id: id });
      assert.equal((await sh(id, 'cat /vol/etc/conf/a /vol/share/x /vol/file')).out, 'top\nshared x\nf\n');
      assert.equal((await sh(id, 'ls /sub')).out, 'x\n', 'the symlink resolved inside the image: only /share is mounted');
      assert.equal((await sh(id, 'cat /one/only')).out, 'one layer\n');
      for (const path of ['/vol/new', '/sub/new', '/one/new', '/vol/etc/conf/a']) {
        const r = await sh(id, `echo x > ${path}`);
        assert.notEqual(r.code, 0, path);
        assert.match(r.err, /Read-only file system/, path);
      }
      assert.match((await sh(id, 'busybox grep " /vol " /proc/self/mountinfo')).out, / ro[, ]/);

      await assert.rejects(d.client.removeImage({ image: { image: volImage } }), status(9, new RegExp(`image "${volImage}" \\(sha256:[0-9a-f]{64}\\) is in use by container ${id} \\(image volume "/vol"\\)`)));
      assert.equal((await d.client.imageStatus({ image: { image: volImage } })).image?.id.startsWith('sha256:'), true);
      const mounted = (await leftovers(podId)).mounts.filter((l) => l.includes('image-volumes'));
      assert.equal(mounted.length, 3, 'one read-only overlay per image volume, under the bundle');

      await d.client.stopContainer({ container_id: id, timeout: '0' });
      await d.client.removeContainer({ container_id: id });
      assert.deepEqual(await leftovers(podId), { mounts: [], bundles: [], layers: [], containers: 0 });
      await d.client.removeImage({ image: { image: volImage } });
      assert.equal((await d.client.imageStatus({ image: { image: volImage } })).image, null);
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
    });

    test(`${handler}: a CDI device node, env and mount from a spec file in the configured dirs`, async () => {
      const cfg = pod(`cdi-${handler}`);
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const id = await create(podId, cfg, 'dev', { CDI_devices: [{ name: 'skiff.test/dev=null0' }] });
      await d.client.startContainer({ container_id: id });
      assert.match((await sh(id, 'ls -l /dev/skiff-test')).out, /^c.* 1, +3 .*\/dev\/skiff-test\n$/);
      assert.equal((await sh(id, 'echo discard > /dev/skiff-test && echo ok')).out, 'ok\n', 'the device cgroup allows it');
      const env = (await sh(id, 'busybox env')).out;
      assert.match(env, /^SKIFF_CDI=null0$/m);
      assert.match(env, /^SKIFF_CDI_SPEC=1$/m);
      assert.equal((await sh(id, 'cat /cdi-data/hello')).out, 'from the host\n');
      assert.match((await sh(id, 'echo x > /cdi-data/new')).err, /Read-only file system/);
      // The older annotation form (cdi.k8s.io/*) asks for the same device.
      const viaAnnotation = await create(podId, cfg, 'annotated', { annotations: { 'cdi.k8s.io/test': 'skiff.test/dev=null0' } });
      await d.client.startContainer({ container_id: viaAnnotation });
      assert.match((await sh(viaAnnotation, 'ls -l /dev/skiff-test')).out, /^c.* 1, +3 /);
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
    });

    test(`${handler}: bad image volumes and unknown CDI devices get a precise status and leave nothing behind`, async () => {
      await d.client.pullImage({ image: { image: volImage } });
      const cfg = pod(`bad-${handler}`);
      const { pod_sandbox_id: podId } = await d.client.runPodSandbox({ config: cfg, runtime_handler: handler });
      const rows: [string, Partial<v1.ContainerConfig>, number, RegExp][] = [
        ['unpulled', { mounts: [volume('/v', `${w.reg.host}/never:pulled`)] }, 5, /container "unpulled": image volume "\/v": image ".*never:pulled" not found: pull it first/],
        ['missing-sub', { mounts: [volume('/v', volImage, { image_sub_path: 'no/such/dir' })] }, 3, /image_sub_path "no\/such\/dir" does not exist in image/],
        ['escaping-sub', { mounts: [volume('/v', volImage, { image_sub_path: '../../etc' })] }, 3, /image_sub_path "..\/..\/etc" must not contain ".."/],
        ['file-sub', { mounts: [volume('/v', volImage, { image_sub_path: 'file' })] }, 3, /image_sub_path "file" in image .* is not a directory/],
        ['rw', { mounts: [volume('/v', volImage, { readonly: false })] }, 3, /readonly must be true for an image mount/],
        ['unknown-cdi', { CDI_devices: [{ name: 'skiff.test/dev=null0' }, { name: 'skiff.test/dev=nope' }] }, 3, /container "unknown-cdi": CDI device injection failed: unresolvable CDI devices skiff.test\/dev=nope$/],
        ['bad-cdi-annotation', { annotations: { 'cdi.k8s.io/x': 'null0' } }, 3, /invalid CDI device name "null0"/],
      ];
      for (const [name, extra, code, re] of rows) {
        await assert.rejects(create(podId, cfg, name, extra), status(code, re), name);
        assert.deepEqual(await leftovers(podId), { mounts: [], bundles: [], layers: [], containers: 0 }, name);
      }
      // The name is free again: a good create under it works.
      await create(podId, cfg, 'missing-sub', { mounts: [volume('/v', volImage, { image_sub_path: 'etc' })] });
      await d.client.removePodSandbox({ pod_sandbox_id: podId });
      assert.deepEqual((await leftovers(podId)).mounts, []);
      await d.client.removeImage({ image: { image: volImage } });
    });
  }
});
