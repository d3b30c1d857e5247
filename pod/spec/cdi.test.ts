import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContainerSpec } from './index.js';
import type { CdiContainerEdits, CdiInjection } from './cdi.js';
import { defaultDeviceRules } from './devices.js';
import { env, mount, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import type { DeviceInfo } from './types.js';

const gpu: DeviceInfo = { type: 'c', major: 195, minor: 0, mode: 0o666, uid: 0, gid: 0 };
const nul: DeviceInfo = { type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0 };
const disk: DeviceInfo = { type: 'b', major: 8, minor: 0, mode: 0o660, uid: 0, gid: 6 };
const devices = { '/dev/nvidia0': gpu, '/dev/null': nul, '/dev/sda': disk };

function build(edits: CdiContainerEdits[], o: FixtureOptions = {}) {
  const cdi: CdiInjection = { devices: ['vendor.com/gpu=0'], edits };
  return buildContainerSpec(specInput({ devices, ...o, extra: { cdi, ...o.extra } }));
}

test('cdi: no injection leaves the spec as it was', () => {
  const plain = buildContainerSpec(specInput({ devices }));
  assert.deepEqual(build([]), plain);
});

const nodeRows: { name: string; edits: CdiContainerEdits; device: object; rule?: object }[] = [
  {
    name: 'a device node without numbers takes type, major and minor from its own path on the host',
    edits: { deviceNodes: [{ path: '/dev/nvidia0' }] },
    device: { path: '/dev/nvidia0', type: 'c', major: 195, minor: 0 },
    rule: { allow: true, type: 'c', major: 195, minor: 0, access: 'rwm' },
  },
  {
    name: 'hostPath names the host node; path is where it appears',
    edits: { deviceNodes: [{ path: '/dev/skiff-test', hostPath: '/dev/null' }] },
    device: { path: '/dev/skiff-test', type: 'c', major: 1, minor: 3 },
    rule: { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  },
  {
    name: 'type and major given: the host is not asked, and permissions narrow the rule',
    edits: { deviceNodes: [{ path: '/dev/fake', type: 'c', major: 240, minor: 7, permissions: 'rw', fileMode: 0o640, uid: 5, gid: 6 }] },
    device: { path: '/dev/fake', type: 'c', major: 240, minor: 7, fileMode: 0o640, uid: 5, gid: 6 },
    rule: { allow: true, type: 'c', major: 240, minor: 7, access: 'rw' },
  },
  {
    name: 'permissions "none" gives a rule without access',
    edits: { deviceNodes: [{ path: '/dev/sda', permissions: 'none' }] },
    device: { path: '/dev/sda', type: 'b', major: 8, minor: 0 },
    rule: { allow: true, type: 'b', major: 8, minor: 0, access: '' },
  },
  {
    name: 'a fifo needs no numbers and no cgroup rule',
    edits: { deviceNodes: [{ path: '/dev/pipe', type: 'p' }] },
    device: { path: '/dev/pipe', type: 'p', major: 0, minor: 0 },
  },
];

for (const r of nodeRows) {
  test(`cdi: ${r.name}`, () => {
    const spec = build([r.edits]);
    assert.deepEqual(spec.linux.devices?.at(-1), r.device);
    const rules = spec.linux.resources?.devices ?? [];
    if (r.rule) assert.deepEqual(rules.at(-1), r.rule);
    else assert.deepEqual(rules, defaultDeviceRules());
  });
}

test('cdi: a device node replaces a CRI device at the same path, and takes the container user as owner', () => {
  const spec = build([{ deviceNodes: [{ path: '/dev/x', hostPath: '/dev/nvidia0' }] }], {
    config: { devices: [{ host_path: '/dev/null', container_path: '/dev/x', permissions: 'rw' }] },
    sc: { run_as_user: { value: '1000' }, run_as_group: { value: '1001' } },
  });
  assert.deepEqual(spec.linux.devices, [{ path: '/dev/x', type: 'c', major: 195, minor: 0, uid: 1000, gid: 1001 }]);
});

test('cdi: env replaces a variable of the same name and adds the others; spec edits come first', () => {
  const spec = build([{ env: ['VENDOR=1', 'MODE=spec'] }, { env: ['MODE=device', 'GPU=0'] }], { config: { envs: [env('MODE', 'cri')] } });
  const e = spec.process.env;
  assert.ok(e.includes('VENDOR=1') && e.includes('GPU=0'));
  assert.deepEqual(e.filter((x) => x.startsWith('MODE=')), ['MODE=device']);
});

test('cdi: mounts replace one at the same path and are sorted by depth, stably', () => {
  const spec = build([{ mounts: [{ hostPath: '/opt/lib', containerPath: '/usr/lib/vendor', options: ['ro', 'nosuid', 'nodev', 'bind'] }, { hostPath: '/srv/other', containerPath: '/data' }] }], {
    config: { mounts: [mount('/data', '/srv/data')] },
  });
  const data = spec.mounts.filter((m) => m.destination === '/data');
  assert.deepEqual(data, [{ destination: '/data', source: '/srv/other' }]);
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/usr/lib/vendor'), { destination: '/usr/lib/vendor', source: '/opt/lib', options: ['ro', 'nosuid', 'nodev', 'bind'] });
  const depths = spec.mounts.map((m) => m.destination.split('/').length);
  assert.deepEqual(depths, [...depths].sort((a, b) => a - b));
  assert.equal(spec.mounts[0].destination, '/proc', 'equal depth keeps its order');
});

test('cdi: hooks go to their OCI hook lists in order', () => {
  const spec = build([
    {
      hooks: [
        { hookName: 'createRuntime', path: '/usr/bin/vendor-hook', args: ['vendor-hook', 'create'], env: ['A=1'], timeout: 5 },
        { hookName: 'createContainer', path: '/usr/bin/ldconfig' },
        { hookName: 'poststop', path: '/usr/bin/vendor-hook' },
        { hookName: 'createRuntime', path: '/usr/bin/second' },
      ],
    },
  ]);
  assert.deepEqual(spec.hooks, {
    createRuntime: [{ path: '/usr/bin/vendor-hook', args: ['vendor-hook', 'create'], env: ['A=1'], timeout: 5 }, { path: '/usr/bin/second' }],
    createContainer: [{ path: '/usr/bin/ldconfig' }],
    poststop: [{ path: '/usr/bin/vendor-hook' }],
  });
});

test('cdi: additional gids are added once, never gid 0', () => {
  const before = buildContainerSpec(specInput({ devices })).process.user.additionalGids ?? [];
  const spec = build([{ additionalGids: [0, 44, 44] }, { additionalGids: [107] }]);
  assert.deepEqual(spec.process.user.additionalGids, [...before, 44, 107]);
});

const badRows: { name: string; edits: CdiContainerEdits; code?: 'SKIFF_UNIMPLEMENTED'; message: RegExp }[] = [
  { name: 'a host device that does not exist', edits: { deviceNodes: [{ path: '/dev/missing' }] }, message: /CDI device injection failed: failed to stat CDI host device "\/dev\/missing"/ },
  { name: 'a type that does not match the host node', edits: { deviceNodes: [{ path: '/dev/sda', type: 'c' }] }, message: /host type mismatch \(c, b\)/ },
  { name: 'a relative device path', edits: { deviceNodes: [{ path: 'dev/x', type: 'c', major: 1 }] }, message: /device node path "dev\/x" is not an absolute path/ },
  { name: 'a relative mount path', edits: { mounts: [{ hostPath: '/a', containerPath: 'a' }] }, message: /mount containerPath "a" is not an absolute path/ },
  { name: 'intelRdt edits', edits: { intelRdt: { closID: 'x' } }, code: 'SKIFF_UNIMPLEMENTED', message: /vendor.com\/gpu=0: intelRdt edits are not supported/ },
];

for (const r of badRows) {
  test(`cdi: ${r.name} is ${r.code ?? 'SKIFF_INVALID_ARGUMENT'} naming the container`, () =>
    throwsSkiff(() => build([r.edits]), r.code ?? 'SKIFF_INVALID_ARGUMENT', new RegExp(`^container "app": .*${r.message.source}`)));
}
