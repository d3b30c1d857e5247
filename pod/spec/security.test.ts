import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as v1 from '../../cri/gen/v1.js';
import { buildContainerSpec } from './index.js';
import { device, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, capabilitiesOfMask } from './security.js';

const build = (o: FixtureOptions) => buildContainerSpec(specInput(o));
const caps = (add: string[], drop: string[] = [], ambient: string[] = []): v1.Capability__Output => ({ add_capabilities: add, drop_capabilities: drop, add_ambient_capabilities: ambient });
const defaults = [...DEFAULT_CAPABILITIES];
const byKernelOrder = (list: string[]) => [...list].sort((a, b) => ALL_CAPABILITIES.indexOf(a) - ALL_CAPABILITIES.indexOf(b));

const capRows: { name: string; o: FixtureOptions; want: string[] }[] = [
  { name: 'containerd\'s default set', o: {}, want: byKernelOrder(defaults) },
  { name: 'add one', o: { sc: { capabilities: caps(['NET_ADMIN']) } }, want: byKernelOrder([...defaults, 'CAP_NET_ADMIN']) },
  { name: 'drop one', o: { sc: { capabilities: caps([], ['CHOWN']) } }, want: byKernelOrder(defaults.filter((c) => c !== 'CAP_CHOWN')) },
  { name: 'add ALL', o: { sc: { capabilities: caps(['ALL']) } }, want: [...ALL_CAPABILITIES] },
  { name: 'add ALL, drop one', o: { sc: { capabilities: caps(['ALL'], ['SYS_ADMIN']) } }, want: ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN') },
  { name: 'drop ALL, add one', o: { sc: { capabilities: caps(['NET_BIND_SERVICE'], ['ALL']) } }, want: ['CAP_NET_BIND_SERVICE'] },
  { name: 'drop ALL', o: { sc: { capabilities: caps([], ['all']) } }, want: [] },
  { name: 'drop wins over add of the same capability', o: { sc: { capabilities: caps(['SYS_TIME'], ['SYS_TIME']) } }, want: byKernelOrder(defaults) },
  { name: 'names in any case, with or without CAP_', o: { sc: { capabilities: caps(['cap_sys_ptrace', 'Bpf'], ['cap_kill']) } }, want: byKernelOrder([...defaults.filter((c) => c !== 'CAP_KILL'), 'CAP_SYS_PTRACE', 'CAP_BPF']) },
  { name: 'privileged gets every capability whatever the lists say', o: { sandboxPrivileged: true, sc: { privileged: true, capabilities: caps([], ['ALL']) } }, want: [...ALL_CAPABILITIES] },
  { name: 'ALL in lower case, on both sides: drop ALL is applied after add ALL', o: { sc: { capabilities: caps(['all', 'NET_ADMIN'], ['All']) } }, want: ['CAP_NET_ADMIN'] },
  { name: 'add ALL, drop several', o: { sc: { capabilities: caps(['ALL'], ['SYS_ADMIN', 'NET_ADMIN', 'SYS_MODULE']) } }, want: ALL_CAPABILITIES.filter((c) => !['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_MODULE'].includes(c)) },
  { name: 'duplicates collapse', o: { sc: { capabilities: caps(['NET_ADMIN', 'net_admin', 'CAP_NET_ADMIN']) } }, want: byKernelOrder([...defaults, 'CAP_NET_ADMIN']) },
];

for (const r of capRows) {
  test(`capabilities: ${r.name}`, () => {
    const got = build(r.o).process.capabilities;
    assert.deepEqual(got, { bounding: r.want, effective: r.want, permitted: r.want });
  });
}

test('capabilities: the default set is containerd\'s, CapEff 00000000a80425fb', () => {
  const mask = build({}).process.capabilities!.effective!.reduce((m, c) => m | (1n << BigInt(ALL_CAPABILITIES.indexOf(c))), 0n);
  assert.equal(mask.toString(16).padStart(16, '0'), '00000000a80425fb');
  assert.equal(DEFAULT_CAPABILITIES.length, 14);
});

const ambientRows: { name: string; o: FixtureOptions; want: string[]; ambient: string[] }[] = [
  {
    name: 'ambient adds to all five sets; inheritable holds only the ambient ones',
    o: { sc: { capabilities: caps([], [], ['NET_BIND_SERVICE', 'cap_net_admin']) } },
    want: byKernelOrder([...defaults, 'CAP_NET_ADMIN']),
    ambient: ['CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN'],
  },
  { name: 'drop ALL with one ambient: only that one', o: { sc: { capabilities: caps([], ['ALL'], ['NET_BIND_SERVICE']) } }, want: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] },
  { name: 'an ambient capability wins over a drop of the same name', o: { sc: { capabilities: caps([], ['NET_RAW'], ['NET_RAW']) } }, want: byKernelOrder(defaults), ambient: ['CAP_NET_RAW'] },
];

for (const r of ambientRows) {
  test(`capabilities: ${r.name}`, () => {
    assert.deepEqual(build(r.o).process.capabilities, { bounding: r.want, effective: r.want, permitted: r.want, inheritable: r.ambient, ambient: r.ambient });
  });
}

test('capabilities: no ambient, no inheritable set (CVE-2022-24769)', () => {
  const got = build({ sc: { capabilities: caps(['ALL']) } }).process.capabilities!;
  assert.equal(got.inheritable, undefined);
  assert.equal(got.ambient, undefined);
});

test('capabilities: an ambient capability skiffd does not hold is left out with the rest', () => {
  const input = { ...specInput({ sc: { capabilities: caps([], ['ALL'], ['SYS_ADMIN', 'NET_BIND_SERVICE']) } }), hostCapabilities: ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN') };
  assert.deepEqual(buildContainerSpec(input).process.capabilities, { bounding: ['CAP_NET_BIND_SERVICE'], effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'], inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] });
});

const badCaps: { name: string; c: v1.Capability__Output; message: RegExp }[] = [
  { name: 'an unknown name to add', c: caps(['SYS_EVERYTHING']), message: /unknown capability "SYS_EVERYTHING" to add/ },
  { name: 'an unknown name to drop', c: caps([], ['CAP_NOPE']), message: /unknown capability "CAP_NOPE" to drop/ },
  { name: 'an unknown ambient name', c: caps([], [], ['FLY']), message: /unknown capability "FLY" to ambient/ },
  { name: 'ALL as ambient', c: caps([], [], ['ALL']), message: /"ALL" is not allowed in add_ambient_capabilities/ },
  { name: 'an empty name', c: caps(['']), message: /unknown capability "" to add/ },
];

for (const r of badCaps) {
  test(`capabilities: ${r.name} is INVALID_ARGUMENT`, () => throwsSkiff(() => build({ sc: { capabilities: r.c } }), 'SKIFF_INVALID_ARGUMENT', r.message));
}

test('privileged: refused in a sandbox that is not privileged', () => {
  throwsSkiff(() => build({ sc: { privileged: true } }), 'SKIFF_INVALID_ARGUMENT', /privileged container in a sandbox that is not privileged/);
});

test('privileged: no masked or readonly paths, writable /sys and cgroup, every device allowed, host nodes added', () => {
  const spec = build({
    sandboxPrivileged: true,
    sc: { privileged: true, masked_paths: ['/proc/kcore'] },
    devices: { '/dev/fuse': { type: 'c', major: 10, minor: 229, mode: 0o666, uid: 0, gid: 0 } },
    config: { devices: [device('/dev/fuse')] },
    extra: {
      privilegedDevices: [
        { path: '/dev/fuse', type: 'c', major: 99, minor: 99, mode: 0o600, uid: 0, gid: 0 },
        { path: '/dev/sda', type: 'b', major: 8, minor: 0, mode: 0o660, uid: 0, gid: 6 },
      ],
    },
  });
  assert.equal(spec.linux.maskedPaths, undefined);
  assert.equal(spec.linux.readonlyPaths, undefined);
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/sys')?.options, ['nosuid', 'noexec', 'nodev', 'rw']);
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options, ['nosuid', 'noexec', 'nodev', 'relatime', 'rw']);
  assert.deepEqual(spec.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(
    spec.linux.devices?.map((d) => `${d.path} ${d.major}:${d.minor}`),
    ['/dev/fuse 10:229', '/dev/sda 8:0'],
  );
  assert.ok(!spec.linux.namespaces.some((n) => n.type === 'cgroup'), 'no cgroup namespace when privileged');
});

const podUserns = { userns: { path: '/run/skiff/sandboxes/pod1/user.ns', uid: { containerID: 0, hostID: 100000, size: 65536 }, gid: { containerID: 0, hostID: 100000, size: 65536 } } };

const pathRows: { name: string; o: FixtureOptions; masked: readonly string[] | undefined; readonly: readonly string[] | undefined }[] = [
  { name: 'defaults without a security context', o: {}, masked: DEFAULT_MASKED_PATHS, readonly: DEFAULT_READONLY_PATHS },
  { name: 'defaults when a security context sends no lists, outside a user namespace', o: { sc: { run_as_user: { value: '1000' } } }, masked: DEFAULT_MASKED_PATHS, readonly: DEFAULT_READONLY_PATHS },
  { name: 'ProcMount Default: kubelet\'s lists as sent', o: { sc: { masked_paths: ['/proc/kcore', '/proc/keys'], readonly_paths: ['/proc/sys'] } }, masked: ['/proc/kcore', '/proc/keys'], readonly: ['/proc/sys'] },
  { name: 'one list given: the other is as sent, empty (containerd)', o: { sc: { masked_paths: ['/proc/kcore'] } }, masked: ['/proc/kcore'], readonly: [] },
  { name: 'ProcMount Unmasked: both empty in a user namespace means none', o: { sandbox: podUserns, sc: { run_as_user: { value: '0' } } }, masked: undefined, readonly: undefined },
  { name: 'ProcMount Default in a user namespace keeps the lists', o: { sandbox: podUserns, sc: { masked_paths: ['/proc/kcore'], readonly_paths: ['/proc/sys'] } }, masked: ['/proc/kcore'], readonly: ['/proc/sys'] },
];

for (const r of pathRows) {
  test(`masked paths: ${r.name}`, () => {
    const spec = build(r.o);
    assert.deepEqual(spec.linux.maskedPaths, r.masked && [...r.masked]);
    assert.deepEqual(spec.linux.readonlyPaths, r.readonly && [...r.readonly]);
  });
}

test('noNewPrivileges follows no_new_privs', () => {
  assert.equal(build({ sc: { no_new_privs: true } }).process.noNewPrivileges, true);
  assert.equal(build({}).process.noNewPrivileges, false);
});

test('readonly_rootfs makes root.readonly', () => {
  assert.equal(build({ sc: { readonly_rootfs: true } }).root.readonly, true);
  assert.equal(build({}).root.readonly, false);
});

test('privileged means every capability skiffd holds, no more', () => {
  assert.deepEqual(capabilitiesOfMask('0000000000000005'), ['CAP_CHOWN', 'CAP_DAC_READ_SEARCH']);
  const held = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');
  const input = { ...specInput({ sandboxPrivileged: true, sc: { privileged: true } }), hostCapabilities: held };
  const caps = buildContainerSpec(input).process.capabilities!;
  assert.ok(!caps.bounding!.includes('CAP_SYS_RESOURCE'));
  assert.ok(caps.bounding!.includes('CAP_SYS_ADMIN'));
  assert.deepEqual(caps.bounding, held);
});
