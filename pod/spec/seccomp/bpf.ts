// linux.seccomp compiled to the raw BPF program once in skiffd, for crun's `run.oci.seccomp_bpf_data`
// annotation (crun.1.md "run.oci.seccomp_bpf_data"): crun 1.8 then copies the program into its
// seccomp.bpf instead of compiling linux.seccomp with libseccomp for every container, which costs
// ~9 ms for the RuntimeDefault profile on three arches. crun still applies linux.seccomp's flags
// (libcrun_apply_seccomp), so linux.seccomp stays in config.json.
//
// The translation is crun 1.8's libcrun_generate_seccomp (src/libcrun/seccomp.c), call for call, so
// that the program is the one crun would have built with the same library. What crun refuses (an
// unknown arch, action or operator, errnoRet on a non-errno action) or handles beside the program
// (listenerPath and SCMP_ACT_NOTIFY, unknown flags) is left to crun: no annotation, crun compiles
// and reports as before.
import { createHash } from 'node:crypto';
import {
  NR_SCMP_ERROR, SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_LOG,
  SCMP_ACT_TRACE, SCMP_ACT_TRAP, SCMP_CMP, type Libseccomp, type ScmpArgCmp,
} from '../../../native/libseccomp.js';
import type { LinuxSeccomp, Spec } from '../oci-spec.js';

/** crun's annotation: base64 of the program as seccomp_export_bpf writes it. */
export const SECCOMP_BPF_ANNOTATION = 'run.oci.seccomp_bpf_data';
/** With it crun fails on unknown syscall names rather than skipping them; left to crun. */
const FAIL_UNKNOWN_SYSCALL_ANNOTATION = 'run.oci.seccomp_fail_unknown_syscall';

const EPERM = 1;
const EEXIST = 17;
/** The flags crun 1.8's libcrun_apply_seccomp knows; it refuses any other. */
const CRUN_FLAGS = new Set(['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']);
/** crun's get_seccomp_action, less NOTIFY (its listener is crun's business) and ERRNO/TRACE (they carry data). */
const ACTIONS: Record<string, number> = {
  SCMP_ACT_ALLOW, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_LOG, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD,
};

/** A linux.seccomp crun must compile itself; the message says why. */
export class NotPrecompiled extends Error {}

function skip(why: string): never {
  throw new NotPrecompiled(why);
}

function action(name: string, errno: number): number {
  if (name === 'SCMP_ACT_ERRNO') return SCMP_ACT_ERRNO(errno);
  if (name === 'SCMP_ACT_TRACE') return SCMP_ACT_TRACE(errno);
  const a = ACTIONS[name];
  return a === undefined ? skip(`action ${name}`) : a;
}

/** crun's seccomp_action_supports_errno. */
const takesErrno = (name: string): boolean => name === 'SCMP_ACT_ERRNO' || name === 'SCMP_ACT_TRACE';

function uint(v: unknown, what: string): bigint {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : skip(`${what} ${String(v)} is not an exact unsigned integer`);
}

/** libcrun_generate_seccomp: the BPF program for `s`; NotPrecompiled when crun must do it. */
export function translateSeccomp(s: LinuxSeccomp, lib: Libseccomp): Buffer {
  if (s.listenerPath || s.listenerMetadata) skip('listenerPath: crun hands the listener over');
  for (const f of s.flags ?? []) if (!CRUN_FLAGS.has(f)) skip(`flag ${f}`);
  if (!s.defaultAction) skip('no defaultAction');
  let defaultErrno = EPERM;
  if (s.defaultErrnoRet !== undefined) {
    if (!takesErrno(s.defaultAction)) skip(`defaultErrnoRet with ${s.defaultAction}`);
    defaultErrno = s.defaultErrnoRet;
  }
  const defaultAction = action(s.defaultAction, defaultErrno);
  const ctx = lib.init(defaultAction);
  try {
    for (const arch of s.architectures ?? []) {
      // crun: drop SCMP_ARCH_, lower-case into a 32-byte buffer, resolve; unknown is an error.
      const name = (arch.startsWith('SCMP_ARCH_') ? arch.slice('SCMP_ARCH_'.length) : arch).slice(0, 31).toLowerCase();
      const token = lib.archResolveName(name);
      if (token === 0) skip(`unknown architecture ${arch}`);
      const ret = lib.archAdd(ctx, token);
      if (ret < 0 && ret !== -EEXIST) skip(`seccomp_arch_add ${arch}: errno ${-ret}`);
    }
    for (const rule of s.syscalls) {
      let errno = EPERM;
      if (rule.errnoRet !== undefined) {
        if (!takesErrno(rule.action)) skip(`errnoRet with ${rule.action}`);
        errno = rule.errnoRet;
      }
      const act = action(rule.action, errno);
      if (act === defaultAction) continue;
      const groups = rule.args ? argGroups(rule.args) : [[]];
      for (const name of rule.names) {
        const nr = lib.syscallResolveName(name);
        if (nr === NR_SCMP_ERROR) continue; // crun: "unknown seccomp syscall ignored"
        for (const args of groups) {
          const ret = lib.ruleAdd(ctx, act, nr, args);
          if (ret < 0) skip(`seccomp_rule_add ${name}: errno ${-ret}`);
        }
      }
    }
    return lib.exportBpf(ctx);
  } finally {
    lib.release(ctx);
  }
}

/**
 * crun's comparisons of one rule: at most 6, all in one rule (AND) — unless an argument index comes
 * twice, when each comparison makes a rule of its own (OR), as runc does too.
 */
function argGroups(args: NonNullable<LinuxSeccomp['syscalls'][number]['args']>): ScmpArgCmp[][] {
  const n = Math.min(args.length, 6);
  const count = new Array<number>(6).fill(0);
  let multiple = false;
  for (let k = 0; k < n; k++) {
    const index = args[k].index;
    if (!(Number.isInteger(index) && index >= 0)) skip(`argument index ${String(index)}`);
    if (index >= 6) skip(`argument index ${index}`);
    if (++count[index] > 1) {
      multiple = true;
      break;
    }
  }
  const cmps = args.slice(0, n).map((a): ScmpArgCmp => {
    const op = a.op.startsWith('SCMP_CMP_') ? SCMP_CMP[a.op.slice('SCMP_CMP_'.length) as keyof typeof SCMP_CMP] : undefined;
    if (op === undefined) skip(`operator ${a.op}`);
    return { arg: a.index, op, datumA: uint(a.value, 'value'), datumB: uint(a.valueTwo ?? 0, 'valueTwo') };
  });
  return multiple ? cmps.map((c) => [c]) : [cmps];
}

/** linux.seccomp → its BPF program, or undefined: leave it to the runtime. */
export type SeccompCompile = (seccomp: LinuxSeccomp) => Buffer | undefined;

export interface CompilerOptions {
  /** Programs kept, least recently used dropped first. */
  max?: number;
  /** Where "left to the runtime, because…" goes. */
  debug?: (fields: Record<string, unknown>, msg: string) => void;
}

/**
 * A compile with an in-memory cache keyed by sha256 of the canonical JSON of linux.seccomp: equal
 * inputs return the same Buffer (callers must not change it). `load` is called on first use; when it
 * throws (no libseccomp on the host) every compile returns undefined, said once.
 */
export function seccompBpfCompiler(load: () => Libseccomp, opts: CompilerOptions = {}): SeccompCompile {
  const max = opts.max ?? 64;
  const debug = opts.debug ?? (() => {});
  const cache = new Map<string, Buffer | null>();
  let lib: Libseccomp | null | undefined;
  return (seccomp) => {
    if (lib === undefined) {
      try {
        lib = load();
      } catch (err) {
        lib = null;
        debug({ err: (err as Error).message }, 'libseccomp not loaded: the runtime compiles seccomp filters');
      }
    }
    if (!lib) return undefined;
    const key = createHash('sha256').update(canonicalJson(seccomp)).digest('hex');
    const hit = cache.get(key);
    if (hit !== undefined) {
      cache.delete(key);
      cache.set(key, hit);
      return hit ?? undefined;
    }
    let bpf: Buffer | null;
    try {
      bpf = translateSeccomp(seccomp, lib);
    } catch (err) {
      debug({ profile: key.slice(0, 12), reason: (err as Error).message }, 'seccomp profile left to the runtime');
      if (!(err instanceof NotPrecompiled)) return undefined; // not kept: it may pass next time
      bpf = null;
    }
    cache.set(key, bpf);
    if (cache.size > max) cache.delete(cache.keys().next().value!);
    return bpf ?? undefined;
  };
}

/** JSON with object keys sorted, so that equal profiles hash alike whatever built them. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** For crun: the spec's linux.seccomp, precompiled, in SECCOMP_BPF_ANNOTATION (linux.seccomp stays). */
export function withSeccompBpf(spec: Spec, compile: SeccompCompile): void {
  const seccomp = spec.linux.seccomp;
  if (!seccomp || spec.annotations?.[FAIL_UNKNOWN_SYSCALL_ANNOTATION] !== undefined) return;
  const bpf = compile(seccomp);
  if (bpf) spec.annotations = { ...spec.annotations, [SECCOMP_BPF_ANNOTATION]: bpf.toString('base64') };
}
