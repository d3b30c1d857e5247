import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContainerSpec } from './index.js';
import { specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import { parseGroup, parsePasswd } from './user.js';

const passwd = ['root:x:0:0:root:/root:/bin/sh', '# comment', 'nobody:x:65534:65534::/:/sbin/nologin', 'app:x:1000:1001::/home/app:/bin/sh', 'broken:x:notanumber:1', ''].join('\n');
const group = ['root:x:0:', 'wheel:x:10:root,app', 'app:x:1001:app', 'audio:x:29: app ', 'staff:x:50:', 'nogroup:x:65534:'].join('\n');
const files = { passwd, group };
const id = (value: string) => ({ value });

const rows: { name: string; o: FixtureOptions; want: { uid: number; gid: number; additionalGids: number[] } }[] = [
  { name: 'root by default, with root\'s /etc/group memberships', o: { imageFiles: files }, want: { uid: 0, gid: 0, additionalGids: [0, 10] } },
  { name: 'run_as_user takes the primary gid from passwd', o: { imageFiles: files, sc: { run_as_user: id('1000') } }, want: { uid: 1000, gid: 1001, additionalGids: [10, 29, 1001] } },
  { name: 'run_as_group replaces the primary gid', o: { imageFiles: files, sc: { run_as_user: id('1000'), run_as_group: id('50') } }, want: { uid: 1000, gid: 50, additionalGids: [10, 29, 50] } },
  { name: 'run_as_username resolves through passwd', o: { imageFiles: files, sc: { run_as_username: 'app' } }, want: { uid: 1000, gid: 1001, additionalGids: [10, 29, 1001] } },
  { name: 'run_as_username wins over run_as_user', o: { imageFiles: files, sc: { run_as_user: id('65534'), run_as_username: 'app' } }, want: { uid: 1000, gid: 1001, additionalGids: [10, 29, 1001] } },
  { name: 'image USER by name', o: { imageFiles: files, image: { Cmd: ['sh'], User: 'app' } }, want: { uid: 1000, gid: 1001, additionalGids: [10, 29, 1001] } },
  { name: 'image USER uid:groupname', o: { imageFiles: files, image: { Cmd: ['sh'], User: '1000:staff' } }, want: { uid: 1000, gid: 50, additionalGids: [10, 29, 50] } },
  { name: 'image USER name:gid', o: { imageFiles: files, image: { Cmd: ['sh'], User: 'app:10' } }, want: { uid: 1000, gid: 10, additionalGids: [10, 29] } },
  { name: 'image USER uid:gid needs no files', o: { image: { Cmd: ['sh'], User: '123:456' } }, want: { uid: 123, gid: 456, additionalGids: [456] } },
  { name: 'a numeric uid missing from passwd gets gid 0 and no groups', o: { imageFiles: files, image: { Cmd: ['sh'], User: '4000' } }, want: { uid: 4000, gid: 0, additionalGids: [0] } },
  { name: 'a numeric uid without any passwd file', o: { image: { Cmd: ['sh'], User: '1000' } }, want: { uid: 1000, gid: 0, additionalGids: [0] } },
  { name: 'the CRI user overrides the image USER', o: { imageFiles: files, image: { Cmd: ['sh'], User: 'app' }, sc: { run_as_user: id('65534') } }, want: { uid: 65534, gid: 65534, additionalGids: [65534] } },
  {
    name: 'supplemental_groups merge with memberships, deduplicated and sorted',
    o: { imageFiles: files, sc: { run_as_user: id('1000'), supplemental_groups: ['5000', '10', '2'] } },
    want: { uid: 1000, gid: 1001, additionalGids: [2, 10, 29, 1001, 5000] },
  },
  {
    name: 'policy Strict leaves /etc/group memberships out',
    o: { imageFiles: files, sc: { run_as_user: id('1000'), supplemental_groups: ['5000'], supplemental_groups_policy: 'Strict' } },
    want: { uid: 1000, gid: 1001, additionalGids: [1001, 5000] },
  },
  {
    name: 'policy Strict with run_as_group: the primary gid and the requested groups only',
    o: { imageFiles: files, sc: { run_as_user: id('1000'), run_as_group: id('50'), supplemental_groups: ['5000', '50'], supplemental_groups_policy: 'Strict' } },
    want: { uid: 1000, gid: 50, additionalGids: [50, 5000] },
  },
  { name: 'policy Strict for the image USER by name', o: { imageFiles: files, image: { Cmd: ['sh'], User: 'app' }, sc: { supplemental_groups_policy: 'Strict' } }, want: { uid: 1000, gid: 1001, additionalGids: [1001] } },
  { name: 'run_as_user 0 with run_as_group 0', o: { imageFiles: files, sc: { run_as_user: id('0'), run_as_group: id('0') } }, want: { uid: 0, gid: 0, additionalGids: [0, 10] } },
];

for (const r of rows) {
  test(`user: ${r.name}`, () => assert.deepEqual(buildContainerSpec(specInput(r.o)).process.user, r.want));
}

const errorRows: { name: string; o: FixtureOptions; message: RegExp }[] = [
  { name: 'an unknown run_as_username', o: { imageFiles: files, sc: { run_as_username: 'ghost' } }, message: /no users found for "ghost"/ },
  { name: 'an image USER name without /etc/passwd', o: { image: { Cmd: ['sh'], User: 'nobody' } }, message: /no users found for "nobody"/ },
  { name: 'an unknown group name', o: { imageFiles: files, image: { Cmd: ['sh'], User: '1000:nosuch' } }, message: /no groups found for "nosuch"/ },
  { name: 'run_as_group without a user', o: { imageFiles: files, sc: { run_as_group: id('50') } }, message: /run_as_group 50 is specified without run_as_user/ },
  { name: 'a USER with two colons', o: { image: { Cmd: ['sh'], User: 'a:b:c' } }, message: /invalid user "a:b:c"/ },
  { name: 'a uid above 2^31-1', o: { image: { Cmd: ['sh'], User: '4294967296' } }, message: /uid 4294967296 is out of range/ },
  { name: 'a supplemental_groups_policy skiff does not know', o: { sc: { supplemental_groups_policy: 7 as unknown as 'Merge' } }, message: /supplemental_groups_policy 7 is not supported/ },
  { name: 'a supplemental group out of range', o: { sc: { supplemental_groups: ['99999999999'] } }, message: /supplemental group 99999999999 is out of range/ },
];

for (const r of errorRows) {
  test(`user: ${r.name} is INVALID_ARGUMENT`, () => throwsSkiff(() => buildContainerSpec(specInput(r.o)), 'SKIFF_INVALID_ARGUMENT', r.message));
}

test('parsePasswd and parseGroup skip comments and malformed lines', () => {
  assert.deepEqual(
    parsePasswd(passwd).map((u) => u.name),
    ['root', 'nobody', 'app'],
  );
  assert.deepEqual(parseGroup(group).find((g) => g.name === 'audio'), { name: 'audio', gid: 29, members: ['app'] });
  assert.deepEqual(parsePasswd(undefined), []);
});
