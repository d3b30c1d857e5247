// Localhost seccomp profiles: a JSON file on the node in Docker's format (what moby's LoadProfile
// reads: archMap, includes/excludes by capability, architecture and kernel) or in the plain OCI
// linux.seccomp format, which is the same without those. Parsed into skiff's SeccompProfileData so
// that resolveSeccomp treats it like the default profile. Each problem is reported by its place in
// the file ("syscalls[3].action: unknown action \"SCMP_ACT_MAYBE\"").
import type { SeccompAction, SeccompOperator } from '../oci-spec.js';
import type { HostArch, SeccompProfileData, SeccompRuleData } from './profile.js';

const ACTIONS: readonly SeccompAction[] = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
];
const OPERATORS: readonly SeccompOperator[] = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];
const ARCHES: readonly string[] = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K',
  'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
];
/** A host's own seccomp architecture, for Docker's archMap. */
const NATIVE: Readonly<Record<HostArch, string>> = {
  x64: 'SCMP_ARCH_X86_64', ia32: 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM',
  ppc64: 'SCMP_ARCH_PPC64LE', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64',
  mips64: 'SCMP_ARCH_MIPS64', mips64el: 'SCMP_ARCH_MIPSEL64', loong64: 'SCMP_ARCH_LOONGARCH64',
};
/** Docker names architectures in includes/excludes as Go does (GOARCH); Node names them so. */
const GOARCH_TO_NODE: Readonly<Record<string, HostArch>> = {
  amd64: 'x64', '386': 'ia32', x86: 'ia32', arm64: 'arm64', arm: 'arm', ppc64le: 'ppc64', s390x: 's390x',
  s390: 's390', riscv64: 'riscv64', mips64: 'mips64', mips64le: 'mips64el', loong64: 'loong64', x32: 'x32',
};

class ProfileProblem extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function strings(v: unknown, where: string, allowed?: readonly string[]): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new ProfileProblem(`${where}: must be a list of strings`);
  for (const s of v) if (allowed && !allowed.includes(s)) throw new ProfileProblem(`${where}: unknown value "${s}"`);
  return v;
}

function errno(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 4095) throw new ProfileProblem(`${where}: must be an errno number (0-4095)`);
  return v as number;
}

function action(v: unknown, where: string): SeccompAction {
  if (typeof v !== 'string' || !ACTIONS.includes(v as SeccompAction)) throw new ProfileProblem(`${where}: unknown action ${JSON.stringify(v)}`);
  return v as SeccompAction;
}

/** Parses a profile file's text; throws an Error whose message says what is wrong and where. */
export function parseSeccompProfile(text: string): SeccompProfileData {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ProfileProblem(`not JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new ProfileProblem('not a JSON object');
  const defaultAction = action(doc.defaultAction, 'defaultAction');
  const defaultErrno = errno(doc.defaultErrnoRet, 'defaultErrnoRet');
  if (doc.architectures != null && doc.archMap != null) throw new ProfileProblem('both "architectures" and "archMap" are given; use one');
  let architectures: SeccompProfileData['architectures'] = strings(doc.architectures, 'architectures', ARCHES);
  if (doc.archMap != null) {
    if (!Array.isArray(doc.archMap)) throw new ProfileProblem('archMap: must be a list');
    const byHost: Record<HostArch, string[]> = {};
    doc.archMap.forEach((m: unknown, i) => {
      if (!isObject(m)) throw new ProfileProblem(`archMap[${i}]: must be an object`);
      const [native] = strings([m.architecture], `archMap[${i}].architecture`, ARCHES);
      const subs = strings(m.subArchitectures, `archMap[${i}].subArchitectures`, ARCHES);
      for (const [host, arch] of Object.entries(NATIVE)) if (arch === native) byHost[host] = [native, ...subs];
    });
    architectures = byHost;
  }
  if (doc.syscalls != null && !Array.isArray(doc.syscalls)) throw new ProfileProblem('syscalls: must be a list');
  const rules = ((doc.syscalls ?? []) as unknown[]).map((s, i) => rule(s, `syscalls[${i}]`));
  return {
    defaultAction,
    ...(defaultErrno !== undefined ? { defaultErrno } : {}),
    architectures,
    ...(doc.flags != null ? { flags: strings(doc.flags, 'flags') } : {}),
    ...(typeof doc.listenerPath === 'string' && doc.listenerPath ? { listenerPath: doc.listenerPath } : {}),
    ...(typeof doc.listenerMetadata === 'string' && doc.listenerMetadata ? { listenerMetadata: doc.listenerMetadata } : {}),
    rules,
  };
}

function rule(s: unknown, where: string): SeccompRuleData {
  if (!isObject(s)) throw new ProfileProblem(`${where}: must be an object`);
  if (s.name != null && s.names != null) throw new ProfileProblem(`${where}: both "name" and "names" are given; use one`);
  const names = s.name != null ? strings([s.name], `${where}.name`) : strings(s.names, `${where}.names`);
  if (!names.length || names.some((n) => !n)) throw new ProfileProblem(`${where}: must name at least one syscall`);
  const out: SeccompRuleData = { syscalls: names, action: action(s.action, `${where}.action`) };
  const e = errno(s.errnoRet, `${where}.errnoRet`);
  if (e !== undefined) out.errno = e;
  if (s.args != null) {
    if (!Array.isArray(s.args)) throw new ProfileProblem(`${where}.args: must be a list`);
    out.args = s.args.map((a: unknown, j) => {
      const at = `${where}.args[${j}]`;
      if (!isObject(a)) throw new ProfileProblem(`${at}: must be an object`);
      if (!Number.isInteger(a.index) || (a.index as number) < 0 || (a.index as number) > 5) throw new ProfileProblem(`${at}.index: must be 0-5`);
      for (const k of ['value', 'valueTwo'] as const) {
        if (a[k] != null && (!Number.isInteger(a[k]) || (a[k] as number) < 0)) throw new ProfileProblem(`${at}.${k}: must be a non-negative integer`);
      }
      if (typeof a.op !== 'string' || !OPERATORS.includes(a.op as SeccompOperator)) throw new ProfileProblem(`${at}.op: unknown operator ${JSON.stringify(a.op)}`);
      return { index: a.index as number, value: (a.value as number | undefined) ?? 0, ...(a.valueTwo != null ? { valueTwo: a.valueTwo as number } : {}), op: a.op as SeccompOperator };
    });
  }
  for (const [key, only, caps] of [['includes', 'onlyOn', 'withCaps'], ['excludes', 'notOn', 'unlessCaps']] as const) {
    const f = s[key];
    if (f == null) continue;
    if (!isObject(f)) throw new ProfileProblem(`${where}.${key}: must be an object`);
    const arches = strings(f.arches, `${where}.${key}.arches`).map((a) => GOARCH_TO_NODE[a] ?? a);
    if (arches.length) out[only] = arches;
    const c = strings(f.caps, `${where}.${key}.caps`);
    if (c.length) out[caps] = c;
    if (key === 'includes' && f.minKernel != null) {
      if (typeof f.minKernel !== 'string' || !/^\d+\.\d+/.test(f.minKernel)) throw new ProfileProblem(`${where}.includes.minKernel: must be a kernel version such as "4.8"`);
      out.minKernel = f.minKernel;
    }
  }
  return out;
}
