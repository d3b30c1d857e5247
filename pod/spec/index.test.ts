import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Annotation, buildContainerSpec, type Spec } from './index.js';
import { CONTAINER_ID, PAUSE_PID, SANDBOX_ID, specInput, throwsSkiff } from './fixture.js';
import { DEFAULT_PATH } from './process.js';
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './security.js';
import { defaultDeviceRules } from './devices.js';

test('a plain container: the whole config.json', () => {
  const spec = buildContainerSpec(specInput({ image: { Cmd: ['sh'], Env: ['A=1'] }, resources: { oom_score_adj: '-997' } }));
  const caps = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP'];
  assert.equal(caps.length, DEFAULT_CAPABILITIES.length);
  const want: Spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0, additionalGids: [0] },
      args: ['sh'],
      env: [DEFAULT_PATH, 'HOSTNAME=web', 'A=1'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: false,
      oomScoreAdj: -997,
    },
    root: { path: '/run/skiff/bundles/c/rootfs', readonly: false },
    hostname: 'web',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      { destination: '/etc/hostname', type: 'bind', source: '/pods/s/hostname', options: ['rbind', 'rprivate', 'rw'] },
      { destination: '/etc/hosts', type: 'bind', source: '/pods/s/hosts', options: ['rbind', 'rprivate', 'rw'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: '/pods/s/resolv.conf', options: ['rbind', 'rprivate', 'rw'] },
      { destination: '/dev/shm', type: 'bind', source: '/pods/s/shm', options: ['rbind', 'rprivate', 'rw'] },
    ],
    annotations: {
      [Annotation.CONTAINER_TYPE]: 'container',
      [Annotation.SANDBOX_ID]: SANDBOX_ID,
      [Annotation.SANDBOX_NAME]: 'web',
      [Annotation.SANDBOX_NAMESPACE]: 'default',
      [Annotation.SANDBOX_UID]: 'uid-1',
      [Annotation.CONTAINER_NAME]: 'app',
      [Annotation.IMAGE_NAME]: 'docker.io/library/busybox:1.36',
    },
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'network', path: '/run/skiff/netns/pod1' },
        { type: 'ipc', path: `/proc/${PAUSE_PID}/ns/ipc` },
        { type: 'uts', path: `/proc/${PAUSE_PID}/ns/uts` },
        { type: 'mount' },
        { type: 'cgroup' },
      ],
      devices: [],
      resources: { devices: defaultDeviceRules() },
      cgroupsPath: '/kubepods/pod1/' + CONTAINER_ID,
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  assert.deepEqual(spec, want);
});

test('annotations: the container\'s CRI annotations, and the io.kubernetes.cri keys win', () => {
  const spec = buildContainerSpec(specInput({ config: { annotations: { 'example.com/a': '1', [Annotation.SANDBOX_ID]: 'forged' } } }));
  assert.equal(spec.annotations?.['example.com/a'], '1');
  assert.equal(spec.annotations?.[Annotation.SANDBOX_ID], SANDBOX_ID);
});

test('the spec serializes to JSON without undefined holes', () => {
  const spec = buildContainerSpec(specInput({ sandbox: { hostNetwork: true, netnsPath: undefined } }));
  const round = JSON.parse(JSON.stringify(spec)) as Spec;
  assert.equal('hostname' in round, false);
  assert.equal('rootfsPropagation' in round.linux, false);
  assert.equal('sysctl' in round.linux, false);
});

test('options run in the order given, and a custom list replaces the default one', () => {
  const spec = buildContainerSpec(specInput({}), [
    (s) => (s.process.args = ['first']),
    (s) => s.process.args.push('second'),
  ]);
  assert.deepEqual(spec.process.args, ['first', 'second']);
  assert.deepEqual(spec.mounts, []);
});

test('errors name the container, or its id when it has no name', () => {
  throwsSkiff(() => buildContainerSpec(specInput({ image: {} })), 'SKIFF_INVALID_ARGUMENT', /^container "app": /);
  throwsSkiff(() => buildContainerSpec(specInput({ image: {}, config: { metadata: null } })), 'SKIFF_INVALID_ARGUMENT', new RegExp(`^container ${CONTAINER_ID}: `));
});
