// The filters of `pods` and `ps` that crictl applies on the client after the List rpc: --name and
// --namespace as regular expressions, -l/--latest and -n/--last; and --label parsing for the
// server-side label selector.
import { usageError } from '../args.js';

/** kubelet's labels on every container: the pod's name and namespace (k8s.io/kubelet/pkg/types). */
export const POD_NAME_LABEL = 'io.kubernetes.pod.name';
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';

/** `--label k=v` flags as a label selector; like crictl, exactly one `=` each. */
export function parseLabels(flags: readonly string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const flag of flags ?? []) {
    const pair = flag.split('=');
    if (pair.length !== 2) throw usageError(`incorrectly specified label: ${flag}`);
    labels[pair[0]] = pair[1];
  }
  return labels;
}

/**
 * A --name/--namespace test: unanchored regular-expression match, everything when the flag is
 * absent. crictl `pods` treats a pattern that does not compile as matching nothing and `ps` fails;
 * skiff fails for both, before any rpc.
 */
export function regexFilter(flag: string, pattern: string | undefined): (value: string) => boolean {
  if (!pattern) return () => true;
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    throw usageError(`invalid --${flag} pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
  return (value) => re.test(value);
}

/** --last N as a number (0: unlimited). */
export function parseLast(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text)) throw usageError(`invalid value "${text}" for flag -last: must be a non-negative integer`);
  return Number(text);
}

/** Newest first, then cut to one (--latest) or to N (--last N), as crictl does. */
export function newestFirst<T extends { created_at: string }>(items: readonly T[], latest: boolean, last: number): T[] {
  const sorted = [...items].sort((a, b) => {
    const d = BigInt(b.created_at) - BigInt(a.created_at);
    return d > 0n ? 1 : d < 0n ? -1 : 0;
  });
  let n = sorted.length;
  if (latest) n = 1;
  if (last > 0) n = last;
  return sorted.slice(0, Math.min(n, sorted.length));
}
