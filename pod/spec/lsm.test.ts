import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as v1 from '../../cri/gen/v1.js';
import { buildContainerSpec } from './index.js';
import { specInput, throwsSkiff, type FixtureOptions } from './fixture.js';
import { APPARMOR_DEFAULT_PROFILE } from './lsm.js';
import { NO_HOST } from './seccomp/index.js';
import type { SecurityHost } from './security-host.js';

const profile = (type: v1.SecurityProfile__Output['profile_type'], ref = ''): v1.SecurityProfile__Output => ({ profile_type: type, localhost_ref: ref });
const label = (over: Partial<v1.SELinuxOption__Output>): v1.SELinuxOption__Output => ({ user: '', role: '', type: '', level: '', ...over });
const withAppArmor: SecurityHost = { ...NO_HOST, apparmorEnabled: true, apparmorProfileLoaded: (n) => n === 'my-profile' };
const build = (o: FixtureOptions, host: SecurityHost = NO_HOST) => buildContainerSpec(specInput({ ...o, extra: { securityHost: host } }));

const enabledRows: { name: string; o: FixtureOptions; want: string | undefined }[] = [
  { name: 'nothing asked: skiff\'s default profile (kubernetes#51746)', o: {}, want: APPARMOR_DEFAULT_PROFILE },
  { name: 'RuntimeDefault', o: { sc: { apparmor: profile('RuntimeDefault') } }, want: APPARMOR_DEFAULT_PROFILE },
  { name: '"runtime/default"', o: { sc: { apparmor_profile: 'runtime/default' } }, want: APPARMOR_DEFAULT_PROFILE },
  { name: 'Localhost', o: { sc: { apparmor: profile('Localhost', 'my-profile') } }, want: 'my-profile' },
  { name: '"localhost/<name>"', o: { sc: { apparmor_profile: 'localhost/my-profile' } }, want: 'my-profile' },
  { name: 'Unconfined', o: { sc: { apparmor: profile('Unconfined') } }, want: undefined },
  { name: '"unconfined"', o: { sc: { apparmor_profile: 'unconfined' } }, want: undefined },
  { name: 'privileged, nothing asked: none', o: { sandboxPrivileged: true, sc: { privileged: true } }, want: undefined },
  { name: 'privileged with Localhost: that profile', o: { sandboxPrivileged: true, sc: { privileged: true, apparmor: profile('Localhost', 'my-profile') } }, want: 'my-profile' },
];
for (const r of enabledRows) {
  test(`AppArmor enabled: ${r.name}`, () => {
    assert.equal(build(r.o, withAppArmor).process.apparmorProfile, r.want);
  });
}

test('AppArmor enabled: a Localhost profile that is not loaded is INVALID_ARGUMENT', () => {
  throwsSkiff(() => build({ sc: { apparmor: profile('Localhost', 'other') } }, withAppArmor), 'SKIFF_INVALID_ARGUMENT', /apparmor profile "other" is not loaded on this node/);
});

const disabledRows: { name: string; o: FixtureOptions; message?: RegExp }[] = [
  { name: 'nothing asked: nothing applied', o: {} },
  { name: 'Unconfined: nothing applied', o: { sc: { apparmor: profile('Unconfined') } } },
  { name: '"unconfined": nothing applied', o: { sc: { apparmor_profile: 'unconfined' } } },
  { name: 'RuntimeDefault refused', o: { sc: { apparmor: profile('RuntimeDefault') } }, message: /container "app": apparmor is not supported on this node \(AppArmor is not enabled in the kernel\), but profile RuntimeDefault was requested/ },
  { name: '"localhost/x" refused', o: { sc: { apparmor_profile: 'localhost/x' } }, message: /apparmor is not supported on this node .* profile localhost\/x was requested/ },
  { name: 'a malformed string refused as such', o: { sc: { apparmor_profile: 'x' } }, message: /apparmor profile "x" is not runtime\/default, docker\/default, unconfined or localhost\/<name>/ },
];
for (const r of disabledRows) {
  test(`AppArmor disabled: ${r.name}`, () => {
    if (r.message) return throwsSkiff(() => build(r.o), 'SKIFF_INVALID_ARGUMENT', r.message);
    assert.equal(build(r.o).process.apparmorProfile, undefined);
  });
}

test('SELinux disabled: labels asked for are ignored, as containerd does', () => {
  const spec = build({ sc: { selinux_options: label({ user: 'system_u', role: 'system_r', type: 'container_t', level: 's0:c1,c2' }) } });
  assert.equal(spec.process.selinuxLabel, undefined);
  assert.equal(spec.linux.mountLabel, undefined);
});

test('SELinux enabled: a label asked for is UNIMPLEMENTED; an empty option is fine', () => {
  const selinux = { ...NO_HOST, selinuxEnabled: true };
  throwsSkiff(() => build({ sc: { selinux_options: label({ level: 's0:c1,c2' }) } }, selinux), 'SKIFF_UNIMPLEMENTED', /SELinux labels are not supported by skiff yet/);
  assert.equal(build({ sc: { selinux_options: label({}) } }, selinux).process.selinuxLabel, undefined);
});
