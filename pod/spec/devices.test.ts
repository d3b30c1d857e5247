import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContainerSpec } from './index.js';
import { defaultDeviceRules } from './devices.js';
import { device, specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import type { DeviceInfo } from './types.js';

const fuse: DeviceInfo = { type: 'c', major: 10, minor: 229, mode: 0o666, uid: 0, gid: 0 };
const sda: DeviceInfo = { type: 'b', major: 8, minor: 0, mode: 0o660, uid: 0, gid: 6 };
const devices = { '/dev/fuse': fuse, '/dev/sda': sda };
const build = (o: FixtureOptions) => buildContainerSpec(specInput({ devices, ...o }));

test('devices: deny all, then allow mknod and the standard pseudo-devices', () => {
  const spec = build({});
  assert.deepEqual(spec.linux.resources?.devices, defaultDeviceRules());
  assert.deepEqual(defaultDeviceRules().slice(0, 4), [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', access: 'm' },
    { allow: true, type: 'b', access: 'm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  ]);
  assert.deepEqual(defaultDeviceRules().at(-1), { allow: true, type: 'c', major: 136, access: 'rwm' });
  assert.deepEqual(spec.linux.devices, []);
});

const rows: { name: string; dev: ReturnType<typeof device>; node: object; rule: object }[] = [
  {
    name: 'a CRI device becomes a node with the host numbers, mode and owner',
    dev: device('/dev/fuse', '/dev/fuse', 'rwm'),
    node: { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    rule: { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
  },
  {
    name: 'an empty container_path means the host path',
    dev: device('/dev/fuse'),
    node: { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    rule: { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
  },
  {
    name: 'a block device at another path with "mr"',
    dev: device('/dev/sda', '/dev/xvda', 'mr'),
    node: { path: '/dev/xvda', type: 'b', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
    rule: { allow: true, type: 'b', major: 8, minor: 0, access: 'mr' },
  },
];

for (const r of rows) {
  test(`devices: ${r.name}`, () => {
    const spec = build({ config: { devices: [r.dev] } });
    assert.deepEqual(spec.linux.devices, [r.node]);
    assert.deepEqual(spec.linux.resources?.devices?.at(-1), r.rule);
  });
}

const badRows: { name: string; dev: ReturnType<typeof device>; message: RegExp }[] = [
  { name: 'an unknown host device', dev: device('/dev/nope'), message: /device "\/dev\/nope" does not exist or is not a device node/ },
  { name: 'permissions outside r, w, m', dev: device('/dev/fuse', '', 'rwx'), message: /permissions "rwx" are not a combination of r, w, m/ },
  { name: 'repeated permissions', dev: device('/dev/fuse', '', 'rr'), message: /permissions "rr"/ },
  { name: 'a relative container_path', dev: device('/dev/fuse', 'fuse'), message: /device container_path "fuse" is not an absolute path/ },
  { name: 'no host_path', dev: device(''), message: /device without host_path/ },
];

for (const r of badRows) {
  test(`devices: ${r.name} is INVALID_ARGUMENT`, () => throwsSkiff(() => build({ config: { devices: [r.dev] } }), 'SKIFF_INVALID_ARGUMENT', r.message));
}
