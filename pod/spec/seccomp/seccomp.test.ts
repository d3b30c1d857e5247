import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as v1 from '../../../cri/gen/v1.js';
import { buildContainerSpec } from '../index.js';
import { specInput, throwsSkiff, type FixtureOptions } from '../fixture.js';
import type { LinuxSeccomp } from '../oci-spec.js';
import { DEFAULT_CAPABILITIES } from '../security.js';
import type { SecurityHost } from '../security-host.js';
import { DEFAULT_SECCOMP_PROFILE, NO_HOST, parseSeccompProfile, resolveSeccomp } from './index.js';
import { compareKernel } from './profile.js';

const facts = (caps: readonly string[], arch = 'x64', kernel = '6.18.0') => ({ capabilities: caps, arch, kernel });
const resolve = (caps: readonly string[] = DEFAULT_CAPABILITIES, arch?: string, kernel?: string) => resolveSeccomp(DEFAULT_SECCOMP_PROFILE, facts(caps, arch, kernel));
const allowed = (s: LinuxSeccomp) => new Set(s.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
const rulesFor = (s: LinuxSeccomp, name: string) => s.syscalls.filter((r) => r.names.includes(name));

test('RuntimeDefault: every other syscall fails with EPERM, as Docker\'s SCMP_ACT_ERRNO with defaultErrnoRet 1', () => {
  const s = resolve();
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(s.defaultErrnoRet, 1);
});

const capRows: { syscalls: string[]; cap: string }[] = [
  { syscalls: ['unshare', 'mount', 'umount2', 'setns', 'bpf', 'fsopen', 'sethostname'], cap: 'CAP_SYS_ADMIN' },
  { syscalls: ['ptrace', 'kcmp', 'pidfd_getfd'], cap: 'CAP_SYS_PTRACE' },
  { syscalls: ['reboot'], cap: 'CAP_SYS_BOOT' },
  { syscalls: ['chroot'], cap: 'CAP_SYS_CHROOT' },
  { syscalls: ['init_module', 'finit_module', 'delete_module'], cap: 'CAP_SYS_MODULE' },
  { syscalls: ['settimeofday', 'clock_settime'], cap: 'CAP_SYS_TIME' },
  { syscalls: ['open_by_handle_at'], cap: 'CAP_DAC_READ_SEARCH' },
  { syscalls: ['perf_event_open'], cap: 'CAP_PERFMON' },
];
for (const r of capRows) {
  test(`RuntimeDefault: ${r.syscalls.join(', ')} only with ${r.cap}`, () => {
    const without = allowed(resolve(DEFAULT_CAPABILITIES.filter((c) => c !== r.cap)));
    const withCap = allowed(resolve([...DEFAULT_CAPABILITIES, r.cap]));
    for (const name of r.syscalls) {
      if (name !== 'ptrace') assert.ok(!without.has(name), `${name} absent without ${r.cap}`);
      assert.ok(withCap.has(name), `${name} present with ${r.cap}`);
    }
  });
}

test('RuntimeDefault: keyctl, add_key and request_key are never allowed (the keyring is not namespaced)', () => {
  const s = allowed(resolve([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']));
  for (const name of ['keyctl', 'add_key', 'request_key', 'kexec_load', 'userfaultfd']) assert.ok(!s.has(name), name);
  for (const name of ['chmod', 'read', 'openat', 'execve', 'arch_prctl']) assert.ok(s.has(name), name);
});

test('RuntimeDefault: process_vm_readv and ptrace without CAP_SYS_PTRACE only from kernel 4.8', () => {
  assert.ok(allowed(resolve(DEFAULT_CAPABILITIES, 'x64', '4.8.0')).has('ptrace'));
  assert.ok(!allowed(resolve(DEFAULT_CAPABILITIES, 'x64', '4.4.0-210-generic')).has('ptrace'));
  assert.ok(compareKernel('6.18.0-1-amd64', '4.8') > 0);
  assert.equal(compareKernel('4.8', '4.8.0'), 0);
});

test('RuntimeDefault: clone may not make namespaces without CAP_SYS_ADMIN; clone3 is ENOSYS then', () => {
  const s = resolve();
  assert.deepEqual(rulesFor(s, 'clone'), [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0x7e020000, valueTwo: 0 }] }]);
  assert.deepEqual(rulesFor(s, 'clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  const admin = resolve([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']);
  assert.ok(allowed(admin).has('clone') && allowed(admin).has('clone3'), 'plain allow with CAP_SYS_ADMIN');
  assert.ok(!rulesFor(admin, 'clone').some((r) => r.args), 'no flag filter with CAP_SYS_ADMIN');
  assert.ok(!rulesFor(admin, 'clone3').some((r) => r.action === 'SCMP_ACT_ERRNO'));
  // s390 passes the flags second.
  assert.equal(rulesFor(resolve(DEFAULT_CAPABILITIES, 's390x'), 'clone')[0]?.args?.[0]?.index, 1);
});

test('RuntimeDefault: socket but not AF_VSOCK; personality with known personas only', () => {
  const s = resolve();
  assert.deepEqual(rulesFor(s, 'socket').map((r) => r.args), [[{ index: 0, op: 'SCMP_CMP_NE', value: 40 }]]);
  assert.deepEqual(rulesFor(s, 'personality').map((r) => r.args?.[0]?.value), [0, 8, 0x20000, 0x20008, 0xffffffff]);
});

test('RuntimeDefault: architectures x86-64 + x86 + x32 on x64, aarch64 + arm on arm64; arch-only calls', () => {
  assert.deepEqual(resolve().architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const arm = resolve(DEFAULT_CAPABILITIES, 'arm64');
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.ok(allowed(arm).has('set_tls') && !allowed(arm).has('arch_prctl'));
  assert.ok(!allowed(resolve()).has('set_tls'));
  assert.equal(resolve(DEFAULT_CAPABILITIES, 'ia32').architectures, undefined, 'unmapped arch: the runtime\'s native');
});

const host = (files: Record<string, string> = {}, over: Partial<SecurityHost> = {}): SecurityHost => ({
  ...NO_HOST,
  readProfile: (path) => {
    if (path in files) return files[path];
    throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  },
  ...over,
});
const profile = (type: v1.SecurityProfile__Output['profile_type'] | number, ref = ''): v1.SecurityProfile__Output => ({ profile_type: type as v1.SecurityProfile__Output['profile_type'], localhost_ref: ref });
const build = (o: FixtureOptions, files?: Record<string, string>) => buildContainerSpec(specInput({ ...o, extra: { securityHost: host(files), ...o.extra } }));

const DENY_CHMOD = JSON.stringify({
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64'],
  syscalls: [{ names: ['chmod', 'fchmod', 'fchmodat', 'fchmodat2'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
});

const requestRows: { name: string; o: FixtureOptions; want: 'default' | 'none' | 'chmod' }[] = [
  { name: 'no request: unconfined (kubelet sends "" for none)', o: {}, want: 'none' },
  { name: 'RuntimeDefault', o: { sc: { seccomp: profile('RuntimeDefault') } }, want: 'default' },
  { name: 'Unconfined', o: { sc: { seccomp: profile('Unconfined') } }, want: 'none' },
  { name: 'Localhost', o: { sc: { seccomp: profile('Localhost', '/profiles/deny-chmod.json') } }, want: 'chmod' },
  { name: 'Localhost with a localhost/ prefix (trimmed, as containerd does)', o: { sc: { seccomp: profile('Localhost', 'localhost//profiles/deny-chmod.json') } }, want: 'chmod' },
  { name: 'deprecated "runtime/default"', o: { sc: { seccomp_profile_path: 'runtime/default' } }, want: 'default' },
  { name: 'deprecated "docker/default"', o: { sc: { seccomp_profile_path: 'docker/default' } }, want: 'default' },
  { name: 'deprecated "unconfined"', o: { sc: { seccomp_profile_path: 'unconfined' } }, want: 'none' },
  { name: 'deprecated "localhost/<path>"', o: { sc: { seccomp_profile_path: 'localhost//profiles/deny-chmod.json' } }, want: 'chmod' },
  { name: 'the SecurityProfile field wins over the string', o: { sc: { seccomp: profile('Unconfined'), seccomp_profile_path: 'runtime/default' } }, want: 'none' },
  { name: 'privileged without a profile: unconfined', o: { sandboxPrivileged: true, sc: { privileged: true } }, want: 'none' },
  { name: 'privileged with RuntimeDefault: unconfined (containerd)', o: { sandboxPrivileged: true, sc: { privileged: true, seccomp: profile('RuntimeDefault') } }, want: 'none' },
];
for (const r of requestRows) {
  test(`seccomp request: ${r.name}`, () => {
    const s = build(r.o, { '/profiles/deny-chmod.json': DENY_CHMOD }).linux.seccomp;
    if (r.want === 'none') return assert.equal(s, undefined);
    if (r.want === 'default') return assert.deepEqual(s, resolve());
    assert.deepEqual(s, { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['chmod', 'fchmod', 'fchmodat', 'fchmodat2'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] });
  });
}

test('seccomp: RuntimeDefault follows the container\'s final capabilities', () => {
  const caps: v1.Capability__Output = { add_capabilities: ['SYS_ADMIN'], drop_capabilities: [], add_ambient_capabilities: [] };
  const s = build({ sc: { seccomp: profile('RuntimeDefault'), capabilities: caps } }).linux.seccomp!;
  assert.ok(allowed(s).has('mount'));
});

const badRows: { name: string; o: FixtureOptions; files?: Record<string, string>; message: RegExp }[] = [
  { name: 'unknown profile type', o: { sc: { seccomp: profile(7) } }, message: /container "app": seccomp profile type 7 is not one of RuntimeDefault, Unconfined, Localhost/ },
  { name: 'localhost_ref with RuntimeDefault', o: { sc: { seccomp: profile('RuntimeDefault', '/x.json') } }, message: /seccomp localhost_ref "\/x.json" may only be set with profile type Localhost, not RuntimeDefault/ },
  { name: 'Localhost without a ref', o: { sc: { seccomp: profile('Localhost') } }, message: /seccomp profile type Localhost needs localhost_ref/ },
  { name: 'Localhost relative path', o: { sc: { seccomp: profile('Localhost', 'profiles/x.json') } }, message: /seccomp localhost profile "profiles\/x.json" must be an absolute path on the node/ },
  { name: 'unknown deprecated string', o: { sc: { seccomp_profile_path: 'strict' } }, message: /seccomp profile "strict" is not runtime\/default, docker\/default, unconfined or localhost\/<name>/ },
  { name: 'missing file', o: { sc: { seccomp: profile('Localhost', '/nope.json') } }, message: /seccomp profile \/nope.json: cannot read it: ENOENT \(no such file\)/ },
  { name: 'not JSON', o: { sc: { seccomp: profile('Localhost', '/bad.json') } }, files: { '/bad.json': '{"defaultAction":' }, message: /seccomp profile \/bad.json: not JSON: / },
  { name: 'unknown action', o: { sc: { seccomp: profile('Localhost', '/bad.json') } }, files: { '/bad.json': '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_MAYBE"}]}' }, message: /seccomp profile \/bad.json: syscalls\[0\].action: unknown action "SCMP_ACT_MAYBE"/ },
  { name: 'no defaultAction', o: { sc: { seccomp: profile('Localhost', '/bad.json') } }, files: { '/bad.json': '{"syscalls":[]}' }, message: /defaultAction: unknown action undefined/ },
  { name: 'privileged still refuses a malformed request string', o: { sandboxPrivileged: true, sc: { privileged: true, seccomp_profile_path: 'strict' } }, message: /seccomp profile "strict"/ },
];
for (const r of badRows) {
  test(`seccomp: ${r.name} is INVALID_ARGUMENT`, () => {
    throwsSkiff(() => build(r.o, r.files), 'SKIFF_INVALID_ARGUMENT', r.message);
  });
}

test('Localhost in Docker\'s format: archMap, includes/excludes by capability and arch, name', () => {
  const p = parseSeccompProfile(JSON.stringify({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] }, { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: null }],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { name: 'mount', action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'] } },
    ],
  }));
  const plain = resolveSeccomp(p, facts(DEFAULT_CAPABILITIES));
  assert.deepEqual(plain, {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }] },
    ],
  });
  const admin = resolveSeccomp(p, facts([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'arm64'));
  assert.deepEqual(admin.architectures, ['SCMP_ARCH_AARCH64']);
  assert.deepEqual(admin.syscalls.map((r) => r.names[0]), ['read', 'mount']);
});

test('Localhost: both architectures and archMap, both name and names, a bad arg are refused with their place', () => {
  assert.throws(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","architectures":[],"archMap":[]}'), /both "architectures" and "archMap"/);
  assert.throws(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}'), /syscalls\[0\]: both "name" and "names"/);
  assert.throws(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"op":"SCMP_CMP_EQ"}]}]}'), /syscalls\[0\].args\[0\].index: must be 0-5/);
  assert.throws(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}'), /architectures: unknown value "SCMP_ARCH_Z80"/);
  assert.throws(() => parseSeccompProfile('[]'), /not a JSON object/);
});

test('sandbox: the seccomp request is checked like a container\'s; AppArmor refused on a host without it', async () => {
  const { sandboxSecurity } = await import('./sandbox.js');
  const cfg = (sc: Partial<v1.LinuxSandboxSecurityContext__Output>): v1.PodSandboxConfig__Output => {
    const base = specInput({ sandboxPrivileged: true }).sandboxConfig;
    return { ...base, linux: { ...base.linux!, security_context: { ...base.linux!.security_context!, privileged: false, ...sc } } };
  };
  const h = host({ '/p.json': DENY_CHMOD });
  assert.deepEqual(sandboxSecurity(cfg({}), h), {});
  const def = sandboxSecurity(cfg({ seccomp: profile('RuntimeDefault') }), h).pauseSeccomp;
  assert.equal(def?.defaultAction, 'SCMP_ACT_ERRNO');
  assert.ok(!def?.syscalls?.some((r) => r.names.includes('unshare')), 'pause has containerd\'s default capabilities: no CAP_SYS_ADMIN syscalls');
  const local = sandboxSecurity(cfg({ seccomp_profile_path: 'localhost//p.json' }), h).pauseSeccomp;
  assert.ok(local?.syscalls?.some((r) => r.names.includes('chmod') && r.action === 'SCMP_ACT_ERRNO'), JSON.stringify(local));
  assert.deepEqual(sandboxSecurity(cfg({ seccomp: profile('RuntimeDefault'), privileged: true }), h), {});
  throwsSkiff(() => sandboxSecurity(cfg({ seccomp: profile(9) }), h), 'SKIFF_INVALID_ARGUMENT', /^RunPodSandbox: seccomp profile type 9 is not one of/);
  throwsSkiff(() => sandboxSecurity(cfg({ seccomp: profile('Localhost', '/gone.json') }), h), 'SKIFF_INVALID_ARGUMENT', /^RunPodSandbox: seccomp profile \/gone.json: cannot read it: ENOENT/);
  throwsSkiff(() => sandboxSecurity(cfg({ apparmor: profile('RuntimeDefault') }), h), 'SKIFF_INVALID_ARGUMENT', /^RunPodSandbox: apparmor is not supported on this node/);
  assert.deepEqual(sandboxSecurity(cfg({ apparmor: profile('Unconfined') }), h), {});
});
