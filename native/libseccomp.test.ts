// Against the host's libseccomp.so.2: skipped where it is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CAPABILITIES } from '../pod/spec/security.js';
import { DEFAULT_SECCOMP_PROFILE, resolveSeccomp } from '../pod/spec/seccomp/index.js';
import { seccompBpfCompiler, translateSeccomp } from '../pod/spec/seccomp/bpf.js';
import type { LinuxSeccomp } from '../pod/spec/oci-spec.js';
import { libseccomp, SCMP_ACT_ALLOW } from './libseccomp.js';

let available = true;
try {
  libseccomp();
} catch {
  available = false;
}
const opts = { skip: available ? false : 'libseccomp.so.2 is not installed' };

const runtimeDefault = (): LinuxSeccomp => resolveSeccomp(DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPABILITIES, arch: 'x64', kernel: '6.1.0' });
const denyChmod: LinuxSeccomp = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [{ names: ['chmod', 'fchmod', 'fchmodat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

/** struct sock_filter: u16 code, u8 jt, u8 jf, u32 k; BPF_RET|BPF_K is 0x06. */
function returns(bpf: Buffer): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < bpf.length; i += 8) if (bpf.readUInt16LE(i) === 0x06) out.add(bpf.readUInt32LE(i + 4));
  return out;
}

test('libseccomp: RuntimeDefault for the default capabilities compiles to a whole number of BPF instructions', opts, () => {
  const bpf = translateSeccomp(runtimeDefault(), libseccomp());
  assert.ok(bpf.length > 8 * 100, `${bpf.length} bytes`);
  assert.equal(bpf.length % 8, 0);
  assert.ok(returns(bpf).has(0x00050001), 'returns SCMP_ACT_ERRNO(EPERM)');
  assert.ok(returns(bpf).has(SCMP_ACT_ALLOW));
});

test('libseccomp: a deny-chmod profile compiles, returning ERRNO(EPERM) and ALLOW', opts, () => {
  const bpf = translateSeccomp(denyChmod, libseccomp());
  assert.ok(bpf.length > 0 && bpf.length % 8 === 0);
  assert.ok(returns(bpf).has(0x00050001));
  assert.ok(returns(bpf).has(SCMP_ACT_ALLOW));
});

test('libseccomp: the same program for the same input, and the compiler returns the same Buffer', opts, () => {
  assert.deepEqual(translateSeccomp(denyChmod, libseccomp()), translateSeccomp(denyChmod, libseccomp()));
  const compile = seccompBpfCompiler(libseccomp);
  const a = compile(runtimeDefault());
  assert.ok(a);
  assert.equal(compile(runtimeDefault()), a);
  assert.notEqual(compile(denyChmod), a);
});

test('libseccomp: names it does not know are skipped, as crun does', opts, () => {
  const bpf = translateSeccomp({ ...denyChmod, syscalls: [{ names: ['chmod', 'not_a_syscall'], action: 'SCMP_ACT_ERRNO' }] }, libseccomp());
  assert.deepEqual(bpf, translateSeccomp({ ...denyChmod, syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO' }] }, libseccomp()));
});
