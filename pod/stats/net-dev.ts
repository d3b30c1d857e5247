// A pod's interface counters from /proc/<pid>/net/dev of a process in its network namespace (the
// pause process): procfs answers for the namespace of the process named, so no setns is needed.
// Loopback is left out, as containerd's getAllContainerNetIO does.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface InterfaceCounters {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** The interface CRI names as a pod's default (containerd's defaultIfName). */
export const DEFAULT_INTERFACE = 'eth0';

/** Parses net/dev: two header lines, then "name: 8 receive fields 8 transmit fields". */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (!name || name === 'lo' || f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.push({ name, rxBytes: f[0], rxPackets: f[1], rxErrors: f[2], rxDropped: f[3], txBytes: f[8], txPackets: f[9], txErrors: f[10], txDropped: f[11] });
  }
  return out;
}

/** Undefined when the process is gone. Read synchronously, as the cgroup files (cgroup-stats.ts). */
export function readNetDev(pid: number, procDir = '/proc'): InterfaceCounters[] | undefined {
  try {
    return parseNetDev(readFileSync(join(procDir, String(pid), 'net', 'dev'), 'latin1'));
  } catch {
    return undefined;
  }
}
