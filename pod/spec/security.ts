// Capabilities, privileged mode, masked and read-only /proc and /sys paths, no_new_privs and the
// read-only rootfs — containerd's defaults and rules (pkg/oci/spec.go populateDefaultUnixSpec,
// internal/cri/opts WithCapabilities, pkg/oci WithPrivileged). Seccomp and AppArmor come later.
import { addDevice } from './devices.js';
import { invalid, isPrivileged, securityContext, type SpecOption } from './option.js';

/** Every Linux capability up to CAP_CHECKPOINT_RESTORE (40), in kernel order. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** containerd's (and Docker's) default set. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const capOrder = new Map(ALL_CAPABILITIES.map((c, i) => [c, i]));

/**
 * The capability set from CRI add/drop lists, applied like containerd: "ALL" in add gives every
 * capability, "ALL" in drop clears the set, then single adds, then single drops (so drop wins).
 * Names may come with or without CAP_, in any case; an unknown name is an error (CRI-O).
 */
export function capabilitySet(add: string[], drop: string[], onUnknown: (name: string, list: 'add' | 'drop') => Error): string[] {
  const isAll = (c: string): boolean => c.toUpperCase() === 'ALL';
  const norm = (c: string, list: 'add' | 'drop'): string => {
    const up = c.toUpperCase();
    const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
    if (!capOrder.has(name)) throw onUnknown(c, list);
    return name;
  };
  let caps = new Set(DEFAULT_CAPABILITIES);
  if (add.some(isAll)) caps = new Set(ALL_CAPABILITIES);
  if (drop.some(isAll)) caps.clear();
  for (const c of add) if (!isAll(c)) caps.add(norm(c, 'add'));
  for (const c of drop) if (!isAll(c)) caps.delete(norm(c, 'drop'));
  return [...caps].sort((a, b) => capOrder.get(a)! - capOrder.get(b)!);
}

/** Bounding, effective and permitted; never inheritable (CVE-2022-24769) nor ambient. */
export const withCapabilities: SpecOption = (spec, input) => {
  const c = securityContext(input)?.capabilities;
  let caps = isPrivileged(input)
    ? [...ALL_CAPABILITIES]
    : capabilitySet(c?.add_capabilities ?? [], c?.drop_capabilities ?? [], (name, list) => invalid(input, `unknown capability "${name}" to ${list}`));
  // "All" means all that skiffd itself holds (containerd's WithAllCurrentCapabilities): the runtime
  // cannot grant a capability outside its own bounding set, and would fail the container.
  if (input.hostCapabilities) {
    const held = new Set(input.hostCapabilities);
    caps = caps.filter((cap) => held.has(cap));
  }
  spec.process.capabilities = { bounding: caps, effective: [...caps], permitted: [...caps] };
};

/** Capability names of a CapBnd/CapEff mask from /proc/PID/status (bit n = capability n). */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt('0x' + hex.trim());
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** Kubelet sends no_new_privs = !allowPrivilegeEscalation; containerd copies it as is. */
export const withNoNewPrivileges: SpecOption = (spec, input) => {
  spec.process.noNewPrivileges = securityContext(input)?.no_new_privs === true;
};

export const withReadonlyRootfs: SpecOption = (spec, input) => {
  spec.root.readonly = securityContext(input)?.readonly_rootfs === true;
};

/** The CRI lists when given (kubelet sends them), else the defaults; none when privileged. */
export const withMaskedPaths: SpecOption = (spec, input) => {
  if (isPrivileged(input)) return;
  const sc = securityContext(input);
  spec.linux.maskedPaths = sc?.masked_paths.length ? [...sc.masked_paths] : [...DEFAULT_MASKED_PATHS];
  spec.linux.readonlyPaths = sc?.readonly_paths.length ? [...sc.readonly_paths] : [...DEFAULT_READONLY_PATHS];
};

/**
 * Privileged: only in a privileged sandbox; writable /sys and cgroup mounts, every device allowed
 * and the host's device nodes added (capabilities and masked paths are handled above).
 */
export const withPrivileged: SpecOption = (spec, input) => {
  if (!isPrivileged(input)) return;
  if (input.sandboxConfig.linux?.security_context?.privileged !== true) {
    throw invalid(input, 'privileged container in a sandbox that is not privileged');
  }
  for (const m of spec.mounts) {
    if ((m.type === 'sysfs' || m.type === 'cgroup') && m.options) m.options = m.options.map((o) => (o === 'ro' ? 'rw' : o));
  }
  const devices = spec.linux.devices ?? [];
  const requested = new Set(devices.map((d) => d.path));
  for (const d of input.privilegedDevices ?? []) {
    if (requested.has(d.path)) continue; // a CRI device at the same path wins
    addDevice(devices, { path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: d.mode, uid: d.uid, gid: d.gid });
  }
  spec.linux.devices = devices;
  spec.linux.resources = { ...spec.linux.resources, devices: [{ allow: true, access: 'rwm' }] };
};
