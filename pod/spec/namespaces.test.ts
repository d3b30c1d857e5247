import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContainerSpec } from './index.js';
import { PAUSE_PID, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import { dotSysctlName, sysctlProblem } from './namespaces.js';

const build = (o: FixtureOptions) => buildContainerSpec(specInput(o));
const ns = (o: FixtureOptions) => build(o).linux.namespaces;
const p = (kind: string) => `/proc/${PAUSE_PID}/ns/${kind}`;

const rows: { name: string; o: FixtureOptions; want: object[] }[] = [
  {
    name: 'pid CONTAINER: new pid ns; joins the pinned netns and the pause ipc/uts; new mount and cgroup ns',
    o: {},
    want: [{ type: 'pid' }, { type: 'network', path: '/run/skiff/netns/pod1' }, { type: 'ipc', path: p('ipc') }, { type: 'uts', path: p('uts') }, { type: 'mount' }, { type: 'cgroup' }],
  },
  {
    name: 'pid POD joins the pause pid ns',
    o: { sandbox: { pidMode: 'POD' } },
    want: [{ type: 'pid', path: p('pid') }, { type: 'network', path: '/run/skiff/netns/pod1' }, { type: 'ipc', path: p('ipc') }, { type: 'uts', path: p('uts') }, { type: 'mount' }, { type: 'cgroup' }],
  },
  {
    name: 'pid NODE stays in the host pid ns',
    o: { sandbox: { pidMode: 'NODE' } },
    want: [{ type: 'network', path: '/run/skiff/netns/pod1' }, { type: 'ipc', path: p('ipc') }, { type: 'uts', path: p('uts') }, { type: 'mount' }, { type: 'cgroup' }],
  },
  {
    name: 'pid TARGET joins the target container',
    o: { sandbox: { pidMode: 'TARGET', targetPid: 777 } },
    want: [{ type: 'pid', path: '/proc/777/ns/pid' }, { type: 'network', path: '/run/skiff/netns/pod1' }, { type: 'ipc', path: p('ipc') }, { type: 'uts', path: p('uts') }, { type: 'mount' }, { type: 'cgroup' }],
  },
  {
    name: 'host network and host IPC: no network or ipc entry',
    o: { sandbox: { hostNetwork: true, netnsPath: undefined, hostIPC: true, shmPath: undefined } },
    want: [{ type: 'pid' }, { type: 'uts', path: p('uts') }, { type: 'mount' }, { type: 'cgroup' }],
  },
  {
    name: 'pod network without a pinned path joins the pause netns',
    o: { sandbox: { netnsPath: undefined } },
    want: [{ type: 'pid' }, { type: 'network', path: p('net') }, { type: 'ipc', path: p('ipc') }, { type: 'uts', path: p('uts') }, { type: 'mount' }, { type: 'cgroup' }],
  },
  {
    name: 'pinned ipc and uts namespaces are joined by their pins, not through the pause pid',
    o: { sandbox: { ipcPath: '/run/skiff/sandboxes/pod1/ipc.ns', utsPath: '/run/skiff/sandboxes/pod1/uts.ns' } },
    want: [
      { type: 'pid' },
      { type: 'network', path: '/run/skiff/netns/pod1' },
      { type: 'ipc', path: '/run/skiff/sandboxes/pod1/ipc.ns' },
      { type: 'uts', path: '/run/skiff/sandboxes/pod1/uts.ns' },
      { type: 'mount' },
      { type: 'cgroup' },
    ],
  },
  {
    name: 'cgroup v1: no cgroup ns',
    o: { cgroupV2: false },
    want: [{ type: 'pid' }, { type: 'network', path: '/run/skiff/netns/pod1' }, { type: 'ipc', path: p('ipc') }, { type: 'uts', path: p('uts') }, { type: 'mount' }],
  },
];

for (const r of rows) {
  test(`namespaces: ${r.name}`, () => assert.deepEqual(ns(r.o), r.want));
}

test('namespaces: pid TARGET without a running target is INVALID_ARGUMENT', () => {
  throwsSkiff(() => build({ sandbox: { pidMode: 'TARGET' } }), 'SKIFF_INVALID_ARGUMENT', /target container .*is not running/);
});

test('hostname: the pod hostname in the pod UTS ns; none with host network', () => {
  assert.equal(build({}).hostname, 'web');
  assert.equal(build({ sandbox: { hostNetwork: true, netnsPath: undefined, hostname: 'node-1' } }).hostname, undefined);
  assert.ok(build({ sandbox: { hostNetwork: true, netnsPath: undefined, hostname: 'node-1' } }).process.env.includes('HOSTNAME=node-1'));
});

const sysctlRows: { name: string; sysctls: Record<string, string>; want: Record<string, string> | undefined }[] = [
  { name: 'none', sysctls: {}, want: undefined },
  { name: 'net and ipc sysctls pass', sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shm_rmid_forced': '1', 'fs.mqueue.msg_max': '20' }, want: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shm_rmid_forced': '1', 'fs.mqueue.msg_max': '20' } },
  { name: 'kernel.domainname in the pod UTS namespace', sysctls: { 'kernel.domainname': 'example.test' }, want: { 'kernel.domainname': 'example.test' } },
  { name: 'every IPC sysctl runc accepts', sysctls: { 'kernel.msgmax': '1', 'kernel.msgmnb': '1', 'kernel.msgmni': '1', 'kernel.sem': '1 2 3 4', 'kernel.shmall': '1', 'kernel.shmmax': '1', 'kernel.shmmni': '1' }, want: { 'kernel.msgmax': '1', 'kernel.msgmnb': '1', 'kernel.msgmni': '1', 'kernel.sem': '1 2 3 4', 'kernel.shmall': '1', 'kernel.shmmax': '1', 'kernel.shmmni': '1' } },
  { name: 'slash names become dotted', sysctls: { 'net/ipv4/conf/eth0.100/rp_filter': '1' }, want: { 'net.ipv4.conf.eth0/100.rp_filter': '1' } },
];

for (const r of sysctlRows) {
  test(`sysctls: ${r.name}`, () => assert.deepEqual(build({ sysctls: r.sysctls }).linux.sysctl, r.want));
}

const badSysctls: { name: string; o: FixtureOptions; message: RegExp }[] = [
  { name: 'a sysctl that is not namespaced', o: { sysctls: { 'kernel.panic': '1' } }, message: /sysctl "kernel.panic" is not namespaced/ },
  { name: 'a net sysctl with host network', o: { sysctls: { 'net.core.somaxconn': '1024' }, sandbox: { hostNetwork: true, netnsPath: undefined } }, message: /not allowed with host network/ },
  { name: 'kernel.hostname, which conflicts with the pod hostname (runc)', o: { sysctls: { 'kernel.hostname': 'x' } }, message: /sysctl "kernel.hostname" is not allowed: it conflicts with the pod's hostname/ },
  { name: 'kernel.shm_next_id, which kubelet\'s prefix lets through and runc refuses', o: { sysctls: { 'kernel.shm_next_id': '1' } }, message: /sysctl "kernel.shm_next_id" is not namespaced/ },
  { name: 'a slash-named sysctl that is not namespaced, named dotted', o: { sysctls: { 'vm/swappiness': '1' } }, message: /sysctl "vm.swappiness" is not namespaced/ },
  { name: 'kernel.domainname with host network', o: { sysctls: { 'kernel.domainname': 'x' }, sandbox: { hostNetwork: true, netnsPath: undefined } }, message: /"kernel.domainname" is not allowed with host network/ },
  { name: 'an IPC sysctl with host IPC', o: { sysctls: { 'kernel.msgmax': '1' }, sandbox: { hostIPC: true, shmPath: undefined } }, message: /not allowed with host IPC/ },
];

for (const r of badSysctls) {
  test(`sysctls: ${r.name} is INVALID_ARGUMENT`, () => throwsSkiff(() => build(r.o), 'SKIFF_INVALID_ARGUMENT', r.message));
}

test('sysctlProblem: RunPodSandbox\'s check, by the pod\'s own namespaces', () => {
  const pod = { hostNetwork: false, hostIPC: false };
  assert.equal(sysctlProblem('net.ipv4.ip_unprivileged_port_start', pod), undefined);
  assert.equal(sysctlProblem('fs.mqueue.msg_max', pod), undefined);
  assert.match(sysctlProblem('kernel.panic', pod)!, /^sysctl "kernel.panic" is not namespaced/);
  assert.match(sysctlProblem('fs.mqueue.msg_max', { hostNetwork: false, hostIPC: true })!, /not allowed with host IPC/);
  assert.equal(sysctlProblem('kernel.shmmax', { hostNetwork: true, hostIPC: false }), undefined);
});

test('dotSysctlName keeps dotted names as they are', () => {
  assert.equal(dotSysctlName('net.ipv4.ip_forward'), 'net.ipv4.ip_forward');
  assert.equal(dotSysctlName('kernel/shmmax'), 'kernel.shmmax');
});

test('cgroupsPath is written when the caller gives one', () => {
  assert.equal(build({}).linux.cgroupsPath, '/kubepods/pod1/' + 'c'.repeat(64));
  assert.equal(build({ extra: { cgroupsPath: '' } }).linux.cgroupsPath, undefined);
});
