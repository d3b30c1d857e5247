import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NR_SCMP_ERROR, SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_LOG, SCMP_ACT_TRACE, SCMP_CMP, type Libseccomp } from '../../../native/libseccomp.js';
import type { LinuxSeccomp, Spec } from '../oci-spec.js';
import { canonicalJson, NotPrecompiled, SECCOMP_BPF_ANNOTATION, seccompBpfCompiler, translateSeccomp, withSeccompBpf } from './bpf.js';

const ARCHES: Record<string, number> = { x86_64: 0xc000003e, x86: 0x40000003, x32: 0x4000003e };
const SYSCALLS: Record<string, number> = { read: 0, chmod: 90, clone: 56, personality: 135, chown32: -10004 };

/** Records the libseccomp calls; arch and syscall tables as on x86-64, x86_64 native. */
function recorder(o: { ruleAdd?: number } = {}): Libseccomp & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    init: (a) => (calls.push(['init', a]), 'ctx'),
    archResolveName: (n) => ARCHES[n] ?? 0,
    archAdd: (_c, a) => (calls.push(['arch_add', a]), a === ARCHES.x86_64 ? -17 : 0),
    syscallResolveName: (n) => SYSCALLS[n] ?? NR_SCMP_ERROR,
    ruleAdd: (_c, act, nr, args) => (calls.push(['rule_add', act, nr, args.map((a) => ({ ...a }))]), o.ruleAdd ?? 0),
    exportBpf: () => (calls.push(['export']), Buffer.alloc(16)),
    release: () => void calls.push(['release']),
  };
}

const small: LinuxSeccomp = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    { names: ['read', 'no_such_call', 'chown32'], action: 'SCMP_ACT_ALLOW' },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0x7e020000, valueTwo: 0 }] },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0 }, { index: 0, op: 'SCMP_CMP_EQ', value: 8 }] },
    { names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    { names: ['read'], action: 'SCMP_ACT_ERRNO' }, // EPERM: the default action, so no rule (crun skips it)
  ],
};

test('translate: crun\'s call sequence — init with the default action, arch adds, rules with their comparisons, export, release', () => {
  const lib = recorder();
  assert.equal(translateSeccomp(small, lib).length, 16);
  const cmp = (value: number, op: number, valueTwo = 0) => ({ arg: 0, op, datumA: BigInt(value), datumB: BigInt(valueTwo) });
  assert.deepEqual(lib.calls, [
    ['init', SCMP_ACT_ERRNO(1)],
    ['arch_add', ARCHES.x86_64],
    ['arch_add', ARCHES.x86],
    ['arch_add', ARCHES.x32],
    ['rule_add', SCMP_ACT_ALLOW, 0, []],
    ['rule_add', SCMP_ACT_ALLOW, -10004, []], // not native: libseccomp's pseudo number, kept
    ['rule_add', SCMP_ACT_ALLOW, 56, [cmp(0x7e020000, SCMP_CMP.MASKED_EQ)]],
    // The same argument twice: one rule per comparison (OR), as crun and runc do.
    ['rule_add', SCMP_ACT_ALLOW, 135, [cmp(0, SCMP_CMP.EQ)]],
    ['rule_add', SCMP_ACT_ALLOW, 135, [cmp(8, SCMP_CMP.EQ)]],
    ['rule_add', SCMP_ACT_ERRNO(38), 90, []],
    ['export'],
    ['release'],
  ]);
});

test('translate: errno defaults to EPERM, as crun; TRACE carries errnoRet; comparisons on different arguments make one rule', () => {
  const lib = recorder();
  translateSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['chmod'], action: 'SCMP_ACT_ERRNO' },
      { names: ['read'], action: 'SCMP_ACT_TRACE', errnoRet: 7 },
      { names: ['clone'], action: 'SCMP_ACT_KILL_PROCESS', args: [{ index: 0, op: 'SCMP_CMP_NE', value: 1 }, { index: 2, op: 'SCMP_CMP_GT', value: 5 }] },
      { names: ['personality'], action: 'SCMP_ACT_LOG' },
    ],
  }, lib);
  assert.deepEqual(lib.calls.slice(0, 5), [
    ['init', SCMP_ACT_ALLOW],
    ['rule_add', SCMP_ACT_ERRNO(1), 90, []],
    ['rule_add', SCMP_ACT_TRACE(7), 0, []],
    ['rule_add', SCMP_ACT_KILL_PROCESS, 56, [{ arg: 0, op: SCMP_CMP.NE, datumA: 1n, datumB: 0n }, { arg: 2, op: SCMP_CMP.GT, datumA: 5n, datumB: 0n }]],
    ['rule_add', SCMP_ACT_LOG, 135, []],
  ]);
});

const leftToCrun: { name: string; seccomp: LinuxSeccomp; reason: RegExp }[] = [
  { name: 'a listener', seccomp: { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock', syscalls: [] }, reason: /listenerPath/ },
  { name: 'SCMP_ACT_NOTIFY', seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_NOTIFY' }] }, reason: /action SCMP_ACT_NOTIFY/ },
  { name: 'a flag crun does not know', seccomp: { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'], syscalls: [] }, reason: /flag/ },
  { name: 'an arch libseccomp does not know (crun refuses it)', seccomp: { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_VAX'], syscalls: [] }, reason: /unknown architecture SCMP_ARCH_VAX/ },
  { name: 'errnoRet on ALLOW (crun refuses it)', seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] }, reason: /errnoRet with SCMP_ACT_ALLOW/ },
  { name: 'defaultErrnoRet on KILL', seccomp: { defaultAction: 'SCMP_ACT_KILL', defaultErrnoRet: 1, syscalls: [] }, reason: /defaultErrnoRet/ },
  { name: 'an argument index over 5', seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, op: 'SCMP_CMP_EQ', value: 1 }] }] }, reason: /argument index 6/ },
  { name: 'a value past 2^53', seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 2 ** 60 }] }] }, reason: /not an exact unsigned integer/ },
];
for (const r of leftToCrun) {
  test(`translate: ${r.name} is left to crun`, () => {
    assert.throws(() => translateSeccomp(r.seccomp, recorder()), (e: Error) => e instanceof NotPrecompiled && r.reason.test(e.message));
  });
}

test('translate: a rule libseccomp refuses is left to crun, and the filter is released', () => {
  const lib = recorder({ ruleAdd: -22 });
  assert.throws(() => translateSeccomp(small, lib), /seccomp_rule_add read: errno 22/);
  assert.deepEqual(lib.calls.at(-1), ['release']);
});

test('compiler: equal profiles (keys in any order) give the same Buffer, compiled once; LRU bound', () => {
  const lib = recorder();
  const compile = seccompBpfCompiler(() => lib, { max: 2 });
  const a = compile(small)!;
  const reordered = JSON.parse(canonicalJson(small)) as LinuxSeccomp;
  assert.equal(compile(reordered), a);
  assert.equal(lib.calls.filter((c) => c[0] === 'init').length, 1);
  compile({ ...small, defaultErrnoRet: 2 });
  compile({ ...small, defaultErrnoRet: 3 }); // drops `small`
  assert.notEqual(compile(small), a);
  assert.equal(lib.calls.filter((c) => c[0] === 'init').length, 4);
});

test('compiler: without libseccomp every compile is undefined, said once, never thrown', () => {
  const said: string[] = [];
  const compile = seccompBpfCompiler(() => {
    throw new Error('libseccomp.so.2: cannot open shared object file');
  }, { debug: (_f, msg) => said.push(msg) });
  assert.equal(compile(small), undefined);
  assert.equal(compile(small), undefined);
  assert.equal(said.length, 1);
});

test('compiler: a profile left to crun is remembered (not translated again) and gives undefined', () => {
  const lib = recorder();
  const compile = seccompBpfCompiler(() => lib);
  const listener: LinuxSeccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/x', syscalls: [] };
  assert.equal(compile(listener), undefined);
  assert.equal(compile(listener), undefined);
});

test('withSeccompBpf: the annotation is base64 of the program; linux.seccomp stays; none without a filter or with fail_unknown_syscall', () => {
  const compile = () => Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const spec = (annotations?: Record<string, string>, seccomp: LinuxSeccomp | null = small) =>
    ({ annotations, linux: { namespaces: [], ...(seccomp ? { seccomp } : {}) } }) as unknown as Spec;
  const s = spec({ a: 'b' });
  withSeccompBpf(s, compile);
  assert.deepEqual(s.annotations, { a: 'b', [SECCOMP_BPF_ANNOTATION]: 'AQIDBAUGBwg=' });
  assert.equal(s.linux.seccomp, small);
  const none = spec({}, null);
  withSeccompBpf(none, compile);
  assert.deepEqual(none.annotations, {});
  const strict = spec({ 'run.oci.seccomp_fail_unknown_syscall': '1' });
  withSeccompBpf(strict, compile);
  assert.equal(strict.annotations?.[SECCOMP_BPF_ANNOTATION], undefined);
  const leftOut = spec({});
  withSeccompBpf(leftOut, () => undefined);
  assert.deepEqual(leftOut.annotations, {});
});
