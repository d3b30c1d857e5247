import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as v1 from '../../cri/gen/v1.js';
import { buildContainerSpec } from './index.js';
import { device, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, capabilitiesOfMask } from './security.js';

const build = (o: FixtureOptions) => buildContainerSpec(specInput(o));
const caps = (add: string[], drop: string[] = []): v1.Capability__Output => ({ add_capabilities: add, drop_capabilities: drop, add_ambient_capabilities: [] });
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
];

for (const r of capRows) {
  test(`capabilities: ${r.name}`, () => {
    const got = build(r.o).process.capabilities;
    assert.deepEqual(got, { bounding: r.want, effective: r.want, permitted: r.want });
  });
}

test('capabilities: an unknown name is INVALID_ARGUMENT', () => {
  throwsSkiff(() => build({ sc: { capabilities: caps(['SYS_EVERYTHING']) } }), 'SKIFF_INVALID_ARGUMENT', /unknown capability "SYS_EVERYTHING" to add/);
});

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

const pathRows: { name: string; o: FixtureOptions; masked: readonly string[]; readonly: readonly string[] }[] = [
  { name: 'defaults when the request has none', o: {}, masked: DEFAULT_MASKED_PATHS, readonly: DEFAULT_READONLY_PATHS },
  { name: 'the CRI lists when given', o: { sc: { masked_paths: ['/proc/kcore'], readonly_paths: ['/proc/sys'] } }, masked: ['/proc/kcore'], readonly: ['/proc/sys'] },
  { name: 'each list on its own', o: { sc: { masked_paths: ['/proc/kcore'] } }, masked: ['/proc/kcore'], readonly: DEFAULT_READONLY_PATHS },
];

for (const r of pathRows) {
  test(`masked paths: ${r.name}`, () => {
    const spec = build(r.o);
    assert.deepEqual(spec.linux.maskedPaths, r.masked);
    assert.deepEqual(spec.linux.readonlyPaths, r.readonly);
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
