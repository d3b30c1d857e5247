// A seccomp profile as skiff holds it — rules that apply only on some architectures, only with (or
// without) some capabilities, or from some kernel on — and the function that turns one into the
// OCI linux.seccomp for one container, as moby's setupSeccomp does for Docker and containerd
// (profiles/seccomp/seccomp_linux.go): a rule is kept when the container's bounding set holds every
// capability it needs and none it excludes, on the architectures it names, on a new enough kernel.
import type { LinuxSeccomp, LinuxSeccompArg, SeccompAction } from '../oci-spec.js';

/** Node's process.arch names: x64, arm64, arm, ia32, s390x, ppc64, riscv64, mips64, mips64el. */
export type HostArch = string;

export interface SeccompRuleData {
  syscalls: readonly string[];
  /** SCMP_ACT_ALLOW when absent. */
  action?: SeccompAction;
  /** For SCMP_ACT_ERRNO: the errno returned (the profile's defaultErrno when absent). */
  errno?: number;
  /** All must hold for the rule to match a call. */
  args?: readonly LinuxSeccompArg[];
  /** Kept only on these architectures / not on these. */
  onlyOn?: readonly HostArch[];
  notOn?: readonly HostArch[];
  /** Kept only when the container holds every one of these / none of these. */
  withCaps?: readonly string[];
  unlessCaps?: readonly string[];
  /** Kept only from this kernel release ("4.8") on. */
  minKernel?: string;
  /** Why the rule is there, for readers. */
  why?: string;
}

export interface SeccompProfileData {
  name?: string;
  /** SCMP_ACT_ERRNO when absent. */
  defaultAction?: SeccompAction;
  /** The errno of the default action when it is SCMP_ACT_ERRNO. */
  defaultErrno?: number;
  /** By host architecture (an arch not listed: the runtime's native one), or one fixed list. */
  architectures: Readonly<Record<HostArch, readonly string[]>> | readonly string[];
  flags?: readonly string[];
  listenerPath?: string;
  listenerMetadata?: string;
  rules: readonly SeccompRuleData[];
}

/** What a profile is resolved against: the container's capabilities and the host. */
export interface SeccompFacts {
  /** The container's bounding set (CAP_ names). */
  capabilities: readonly string[];
  arch: HostArch;
  /** uname release ("6.18.0-1-amd64"); rules with minKernel are left out when it is older. */
  kernel: string;
}

/** linux.seccomp for a container with these capabilities on this host. */
export function resolveSeccomp(profile: SeccompProfileData, facts: SeccompFacts): LinuxSeccomp {
  const caps = new Set(facts.capabilities);
  const kept = profile.rules.filter((r) => {
    if (r.onlyOn && !r.onlyOn.includes(facts.arch)) return false;
    if (r.notOn?.includes(facts.arch)) return false;
    if (r.withCaps && !r.withCaps.every((c) => caps.has(c))) return false;
    if (r.unlessCaps?.some((c) => caps.has(c))) return false;
    if (r.minKernel && compareKernel(facts.kernel, r.minKernel) < 0) return false;
    return true;
  });
  const architectures = Array.isArray(profile.architectures)
    ? [...(profile.architectures as readonly string[])]
    : [...((profile.architectures as Record<HostArch, readonly string[]>)[facts.arch] ?? [])];
  const out: LinuxSeccomp = {
    defaultAction: profile.defaultAction ?? 'SCMP_ACT_ERRNO',
    ...(profile.defaultErrno !== undefined ? { defaultErrnoRet: profile.defaultErrno } : {}),
    ...(architectures.length ? { architectures } : {}),
    ...(profile.flags?.length ? { flags: [...profile.flags] } : {}),
    ...(profile.listenerPath ? { listenerPath: profile.listenerPath } : {}),
    ...(profile.listenerMetadata ? { listenerMetadata: profile.listenerMetadata } : {}),
    syscalls: kept.map((r) => {
      const action = r.action ?? 'SCMP_ACT_ALLOW';
      const errno = r.errno ?? (action === 'SCMP_ACT_ERRNO' ? profile.defaultErrno : undefined);
      return {
        names: [...r.syscalls],
        action,
        ...(errno !== undefined && action === 'SCMP_ACT_ERRNO' ? { errnoRet: errno } : {}),
        ...(r.args?.length ? { args: r.args.map((a) => ({ ...a })) } : {}),
      };
    }),
  };
  return out;
}

/** Compares kernel releases by their leading numbers: "6.18.0-1-amd64" > "4.8". */
export function compareKernel(a: string, b: string): number {
  const nums = (s: string): number[] => (/^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(s) ?? []).slice(1).map((n) => Number(n ?? 0));
  const [x, y] = [nums(a), nums(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}
