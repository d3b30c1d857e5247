import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Mount } from './oci-spec.js';
import { buildContainerSpec, hostPathsToCreate } from './index.js';
import { mount, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';

const build = (o: FixtureOptions) => buildContainerSpec(specInput(o));
const dests = (o: FixtureOptions) => build(o).mounts.map((m) => m.destination);
const at = (o: FixtureOptions, dest: string): Mount | undefined => build(o).mounts.find((m) => m.destination === dest);

test('mounts: defaults, then the pod files and /dev/shm bind (which replaces the default tmpfs)', () => {
  assert.deepEqual(dests({}), ['/proc', '/dev', '/dev/pts', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/dev/shm']);
  assert.deepEqual(at({}, '/sys'), { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
  assert.deepEqual(at({}, '/sys/fs/cgroup')?.options, ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']);
});

const podFileRows: { name: string; o: FixtureOptions; dest: string; want: Mount | undefined }[] = [
  { name: '/etc/hosts is a private rw bind of the pod file', o: {}, dest: '/etc/hosts', want: { destination: '/etc/hosts', type: 'bind', source: '/pods/s/hosts', options: ['rbind', 'rprivate', 'rw'] } },
  { name: 'pod files are ro with a readonly rootfs', o: { sc: { readonly_rootfs: true } }, dest: '/etc/resolv.conf', want: { destination: '/etc/resolv.conf', type: 'bind', source: '/pods/s/resolv.conf', options: ['rbind', 'rprivate', 'ro'] } },
  { name: '/dev/shm stays rw with a readonly rootfs', o: { sc: { readonly_rootfs: true } }, dest: '/dev/shm', want: { destination: '/dev/shm', type: 'bind', source: '/pods/s/shm', options: ['rbind', 'rprivate', 'rw'] } },
  { name: 'host IPC binds the host /dev/shm', o: { sandbox: { hostIPC: true, shmPath: undefined } }, dest: '/dev/shm', want: { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate', 'rw'] } },
  {
    name: 'without a pod shm the container keeps a private tmpfs',
    o: { sandbox: { shmPath: undefined } },
    dest: '/dev/shm',
    want: { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  },
  { name: 'a pod file given as "" is not mounted', o: { sandbox: { files: { hostname: '', hosts: '/h', resolvConf: '/r' } } }, dest: '/etc/hostname', want: undefined },
];

for (const r of podFileRows) {
  test(`mounts: ${r.name}`, () => assert.deepEqual(at(r.o, r.dest), r.want));
}

const criRows: { name: string; o: FixtureOptions; want: string[]; rootfsPropagation?: string }[] = [
  { name: 'a plain CRI mount is a private rw rbind', o: { config: { mounts: [mount('/data', '/srv/data')] } }, want: ['rbind', 'rprivate', 'rw'] },
  { name: 'readonly gives ro', o: { config: { mounts: [mount('/data', '/srv/data', { readonly: true })] } }, want: ['rbind', 'rprivate', 'ro'] },
  {
    name: 'HOST_TO_CONTAINER gives rslave and an rslave rootfs',
    o: { config: { mounts: [mount('/data', '/srv/data', { propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] } },
    want: ['rbind', 'rslave', 'rw'],
    rootfsPropagation: 'rslave',
  },
  {
    name: 'BIDIRECTIONAL gives rshared and an rshared rootfs',
    o: { config: { mounts: [mount('/data', '/srv/data', { propagation: 'PROPAGATION_BIDIRECTIONAL' })] } },
    want: ['rbind', 'rshared', 'rw'],
    rootfsPropagation: 'rshared',
  },
  {
    name: 'rshared rootfs wins over a later rslave mount',
    o: { config: { mounts: [mount('/data', '/srv/data', { propagation: 'PROPAGATION_BIDIRECTIONAL' }), mount('/other', '/srv/other', { propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] } },
    want: ['rbind', 'rshared', 'rw'],
    rootfsPropagation: 'rshared',
  },
  { name: 'selinux_relabel changes nothing', o: { config: { mounts: [mount('/data', '/srv/data', { selinux_relabel: true })] } }, want: ['rbind', 'rprivate', 'rw'] },
  { name: 'recursive_read_only gives rro', o: { config: { mounts: [mount('/data', '/srv/data', { readonly: true, recursive_read_only: true })] } }, want: ['rbind', 'rprivate', 'rro'] },
  {
    name: 'propagation is allowed when the host mount is shared',
    o: { config: { mounts: [mount('/data', '/srv/data', { propagation: 'PROPAGATION_BIDIRECTIONAL' })] }, propagation: { '/srv/data': 'shared' } },
    want: ['rbind', 'rshared', 'rw'],
    rootfsPropagation: 'rshared',
  },
  {
    name: 'HOST_TO_CONTAINER is allowed on a slave host mount',
    o: { config: { mounts: [mount('/data', '/srv/data', { propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }, propagation: { '/srv/data': 'slave' } },
    want: ['rbind', 'rslave', 'rw'],
    rootfsPropagation: 'rslave',
  },
];

for (const r of criRows) {
  test(`mounts: ${r.name}`, () => {
    const spec = build(r.o);
    assert.deepEqual(spec.mounts.find((m) => m.destination === '/data'), { destination: '/data', type: 'bind', source: '/srv/data', options: r.want });
    assert.equal(spec.linux.rootfsPropagation, r.rootfsPropagation);
  });
}

test('mounts: a CRI mount at /etc/hosts replaces the pod file', () => {
  const spec = build({ config: { mounts: [mount('/etc/hosts', '/my/hosts', { readonly: true })] } });
  assert.deepEqual(
    spec.mounts.filter((m) => m.destination === '/etc/hosts'),
    [{ destination: '/etc/hosts', type: 'bind', source: '/my/hosts', options: ['rbind', 'rprivate', 'ro'] }],
  );
});

test('mounts: a CRI mount replaces a default at the same path, trailing slash or not', () => {
  const spec = build({ config: { mounts: [mount('/sys/', '/sys')] } });
  assert.deepEqual(spec.mounts.filter((m) => m.destination.replace(/\/$/, '') === '/sys').map((m) => m.type), ['bind']);
});

test('mounts: a CRI /dev drops every default under /dev but keeps the pod /dev/shm', () => {
  assert.deepEqual(dests({ config: { mounts: [mount('/dev', '/dev')] } }), ['/proc', '/sys', '/sys/fs/cgroup', '/dev', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/dev/shm']);
});

test('mounts: requested binds are ordered by depth so a parent never hides a child', () => {
  const o = { config: { mounts: [mount('/a/b/c', '/h/c'), mount('/a', '/h/a'), mount('/a/b', '/h/b')] }, sandbox: { files: { hostname: '', hosts: '', resolvConf: '' }, shmPath: undefined } };
  assert.deepEqual(dests(o).slice(-3), ['/a', '/a/b', '/a/b/c']);
});

const badRows: { name: string; o: FixtureOptions; code?: 'SKIFF_UNIMPLEMENTED'; message: RegExp }[] = [
  { name: 'a relative container_path', o: { config: { mounts: [mount('data', '/srv/data')] } }, message: /container_path "data" is not an absolute path/ },
  { name: 'an empty host_path', o: { config: { mounts: [mount('/data', '')] } }, message: /mount "\/data" has no host_path/ },
  { name: 'a missing host path', o: { config: { mounts: [mount('/data', '/srv/missing')] }, existing: [] }, message: /mount "\/data": host path "\/srv\/missing" does not exist/ },
  {
    name: 'BIDIRECTIONAL from a private host mount',
    o: { config: { mounts: [mount('/data', '/srv/data', { propagation: 'PROPAGATION_BIDIRECTIONAL' })] }, propagation: { '/srv/data': 'slave' } },
    message: /host path "\/srv\/data" is not on a shared mount \(it is slave\)/,
  },
  {
    name: 'HOST_TO_CONTAINER from a private host mount',
    o: { config: { mounts: [mount('/data', '/srv/data', { propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }, propagation: { '/srv/data': 'private' } },
    message: /not on a shared or slave mount/,
  },
  { name: 'recursive_read_only on a rw mount', o: { config: { mounts: [mount('/data', '/srv/data', { recursive_read_only: true })] } }, message: /mount "\/data": recursive read-only \(rro\) requires readonly and private propagation: the mount is read-write/ },
  {
    name: 'recursive_read_only with rslave',
    o: { config: { mounts: [mount('/data', '/srv/data', { readonly: true, recursive_read_only: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] } },
    message: /requires readonly and private propagation: propagation is PROPAGATION_HOST_TO_CONTAINER/,
  },
  {
    name: 'recursive_read_only with rslave on a private host mount (the rro reason, not the host propagation)',
    o: { config: { mounts: [mount('/data', '/srv/data', { readonly: true, recursive_read_only: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }, propagation: { '/srv/data': 'private' } },
    message: /requires readonly and private propagation: propagation is PROPAGATION_HOST_TO_CONTAINER/,
  },
  {
    name: 'recursive_read_only with rshared',
    o: { config: { mounts: [mount('/data', '/srv/data', { readonly: true, recursive_read_only: true, propagation: 'PROPAGATION_BIDIRECTIONAL' })] } },
    message: /requires readonly and private propagation: propagation is PROPAGATION_BIDIRECTIONAL/,
  },
  {
    name: 'an image volume that is not read-only (containerd: readonly must be true)',
    o: { config: { mounts: [mount('/data', '', { image: { image: 'busybox', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' } })] } },
    message: /image volume "\/data": readonly must be true for an image mount/,
  },
];

for (const r of badRows) {
  test(`mounts: ${r.name} is ${r.code ?? 'SKIFF_INVALID_ARGUMENT'}`, () => throwsSkiff(() => build(r.o), r.code ?? 'SKIFF_INVALID_ARGUMENT', r.message));
}

test('hostPathsToCreate lists the missing CRI host paths once, for the caller to mkdir like containerd', () => {
  const input = specInput({ config: { mounts: [mount('/a', '/srv/a'), mount('/b', '/srv/b'), mount('/c', '/srv/a'), mount('/d', 'relative')] } });
  assert.deepEqual(hostPathsToCreate(input.config, (p) => p === '/srv/b'), ['/srv/a']);
});

const POD_USERNS = { path: '/run/skiff/sandboxes/s/user.ns', uid: { containerID: 0, hostID: 300000, size: 65536 }, gid: { containerID: 0, hostID: 300000, size: 65536 } };
const idmapping = (container_id: number, host_id: number, length: number) => ({ container_id, host_id, length });

test('mounts: a CRI mount with the pod user namespace mappings carries them for staging', () => {
  const m = mount('/data', '/srv/data', { uidMappings: [idmapping(0, 300000, 65536)], gidMappings: [idmapping(0, 300000, 65536)] });
  const got = at({ sandbox: { userns: POD_USERNS }, config: { mounts: [m] } }, '/data');
  assert.deepEqual(got?.uidMappings, [POD_USERNS.uid]);
  assert.deepEqual(got?.gidMappings, [POD_USERNS.gid]);
  assert.equal(at({ sandbox: { userns: POD_USERNS }, config: { mounts: [mount('/plain', '/srv/plain')] } }, '/plain')?.uidMappings, undefined);
});

test('mounts: idmapped mounts outside a pod user namespace, or with other mappings, are refused', () => {
  const own = [idmapping(0, 300000, 65536)];
  throwsSkiff(() => build({ config: { mounts: [mount('/data', '/srv/data', { uidMappings: own, gidMappings: own })] } }), 'SKIFF_INVALID_ARGUMENT', /mount "\/data": uidMappings\/gidMappings need a pod user namespace/);
  const other = [idmapping(0, 400000, 65536)];
  throwsSkiff(
    () => build({ sandbox: { userns: POD_USERNS }, config: { mounts: [mount('/data', '/srv/data', { uidMappings: other, gidMappings: own })] } }),
    'SKIFF_UNIMPLEMENTED',
    /mount "\/data": UID mappings \[0:400000:65536\] differ from the pod's \(0:300000:65536\)/,
  );
  throwsSkiff(
    () => build({ sandbox: { userns: POD_USERNS }, config: { mounts: [mount('/data', '/srv/data', { uidMappings: own, gidMappings: [] })] } }),
    'SKIFF_UNIMPLEMENTED',
    /GID mappings \[\] differ/,
  );
});
