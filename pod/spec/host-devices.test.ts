import { test } from 'node:test';
import assert from 'node:assert/strict';
import { propagationInMountinfo, splitDev, statDevice } from './host-devices.js';

const devRows: { rdev: bigint; want: { major: number; minor: number } }[] = [
  { rdev: 0x103n, want: { major: 1, minor: 3 } }, // /dev/null
  { rdev: 0x8800n, want: { major: 136, minor: 0 } }, // /dev/pts/0
  { rdev: 0x1000_0000_0000n | 0x0103n, want: { major: 0x1001, minor: 3 } }, // major above 12 bits
  { rdev: 0x0ab0_0000n | 0x0001n, want: { major: 0, minor: 0xab01 } }, // minor above 8 bits
];

for (const r of devRows) {
  test(`splitDev 0x${r.rdev.toString(16)}`, () => assert.deepEqual(splitDev(r.rdev), r.want));
}

const mountinfo = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '30 22 0:26 / /run rw,nosuid shared:5 - tmpfs tmpfs rw',
  '40 30 0:40 / /run/private rw - tmpfs tmpfs rw',
  '41 22 0:41 / /mnt/slave rw master:7 - tmpfs tmpfs rw',
  '42 22 0:42 / /mnt/with\\040space rw - tmpfs tmpfs rw',
].join('\n');

const propRows: { path: string; want: string }[] = [
  { path: '/srv/data', want: 'shared' },
  { path: '/run/x', want: 'shared' },
  { path: '/run/private/x', want: 'private' },
  { path: '/run/privatex', want: 'shared' },
  { path: '/mnt/slave/a/b', want: 'slave' },
  { path: '/mnt/with space/a', want: 'private' },
];

for (const r of propRows) {
  test(`propagationInMountinfo ${r.path} is ${r.want}`, () => assert.equal(propagationInMountinfo(mountinfo, r.path), r.want));
}

test('statDevice reads /dev/null as c 1:3, and nothing for a file or a missing path', () => {
  const nul = statDevice('/dev/null');
  assert.deepEqual(nul && { type: nul.type, major: nul.major, minor: nul.minor }, { type: 'c', major: 1, minor: 3 });
  assert.equal(statDevice('/proc/self/status'), undefined);
  assert.equal(statDevice('/nonexistent/device'), undefined);
});
