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

type CapList = 'add' | 'drop' | 'ambient';
const isAll = (c: string): boolean => c.toUpperCase() === 'ALL';

/** CAP_-prefixed upper-case name; CRI sends "NET_ADMIN", CRI-O also takes "CAP_NET_ADMIN". */
function capName(c: string, list: CapList, onUnknown: (name: string, list: CapList) => Error): string {
  const up = c.toUpperCase();
  const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!capOrder.has(name)) throw onUnknown(c, list);
  return name;
}

const byKernelOrder = (caps: Iterable<string>): string[] => [...caps].sort((a, b) => capOrder.get(a)! - capOrder.get(b)!);

/**
 * The capability set from CRI add/drop lists, in containerd's order (internal/cri/opts
 * spec_opts.go WithCapabilities): "ALL" in add (any case) gives every capability, then "ALL" in
 * drop clears the set, then the single adds, then the single drops — so drop wins over add of
 * the same name, and add ALL + drop X is all but X. Names may come with or without CAP_, in any
 * case; an unknown name is an error (CRI-O; containerd would pass it on and the runtime fail).
 */
export function capabilitySet(add: string[], drop: string[], onUnknown: (name: string, list: CapList) => Error): string[] {
  let caps = new Set(DEFAULT_CAPABILITIES);
  if (add.some(isAll)) caps = new Set(ALL_CAPABILITIES);
  if (drop.some(isAll)) caps.clear();
  for (const c of add) if (!isAll(c)) caps.add(capName(c, 'add', onUnknown));
  for (const c of drop) if (!isAll(c)) caps.delete(capName(c, 'drop', onUnknown));
  return byKernelOrder(caps);
}

/**
 * add_ambient_capabilities, checked. "ALL" is refused: an ambient set is a deliberate grant to a
 * non-root process, never a wildcard (containerd's draft skips it silently).
 */
export function ambientSet(ambient: string[], onUnknown: (name: string, list: CapList) => Error, onAll: () => Error): string[] {
  if (ambient.some(isAll)) throw onAll();
  return byKernelOrder(new Set(ambient.map((c) => capName(c, 'ambient', onUnknown))));
}

/**
 * Bounding, effective and permitted from add/drop (privileged: all); inheritable only what is
 * ambient. CVE-2022-24769 (moby GHSA-2mm7-x5h6-5pvq, containerd 1.6.2): a non-empty default
 * inheritable set let execve of a file with inheritable file capabilities hand a non-root process
 * permitted capabilities, so containerd, CRI-O and runc's spec default to an empty one. Ambient
 * capabilities (KEP-2763) are the one deliberate exception: the kernel keeps a capability in the
 * ambient set only while it is both permitted and inheritable (capabilities(7); PR_CAP_AMBIENT_RAISE
 * is EPERM otherwise, and runc/crun fail the container), so each requested ambient capability is
 * added to all five sets — an explicit grant, which wins over a drop of the same name, as the KEP
 * says ("adding a capability to the ambient set will also add it to the permitted and inheritable
 * set"). A non-root process execs with permitted = effective = its ambient set.
 */
export const withCapabilities: SpecOption = (spec, input) => {
  const c = securityContext(input)?.capabilities;
  const unknown = (name: string, list: CapList): Error => invalid(input, `unknown capability "${name}" to ${list}`);
  let caps = isPrivileged(input) ? [...ALL_CAPABILITIES] : capabilitySet(c?.add_capabilities ?? [], c?.drop_capabilities ?? [], unknown);
  let ambient = ambientSet(c?.add_ambient_capabilities ?? [], unknown, () => invalid(input, '"ALL" is not allowed in add_ambient_capabilities: name each capability'));
  if (ambient.length) caps = byKernelOrder(new Set([...caps, ...ambient]));
  // "All" means all that skiffd itself holds (containerd's WithAllCurrentCapabilities): the runtime
  // cannot grant a capability outside its own bounding set, and would fail the container.
  if (input.hostCapabilities) {
    const held = new Set(input.hostCapabilities);
    caps = caps.filter((cap) => held.has(cap));
    ambient = ambient.filter((cap) => held.has(cap));
  }
  spec.process.capabilities = { bounding: caps, effective: [...caps], permitted: [...caps] };
  if (ambient.length) Object.assign(spec.process.capabilities, { inheritable: [...ambient], ambient: [...ambient] });
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

/**
 * ProcMount. kubelet encodes it in the two lists (pkg/securitycontext ConvertToRuntimeMaskedPaths):
 * Default sends its default lists, Unmasked sends both empty. containerd (since 1.6, #5029) and
 * CRI-O (since 1.25, #6025) write exactly the lists the CRI sends, so empty means none. proto3
 * cannot tell an empty list from an absent one, though, and kubelet 1.30+ only lets a pod ask for
 * Unmasked with hostUsers: false (KEP-4265), so skiff reads both lists empty as Unmasked only in a
 * user-namespaced pod; elsewhere a client that sent none (crictl, the skiff CLI) gets the
 * defaults — where containerd would leave /proc unmasked. Either list non-empty: both as sent.
 * Privileged: none (containerd's WithPrivileged).
 */
export const withMaskedPaths: SpecOption = (spec, input) => {
  if (isPrivileged(input)) return;
  const sc = securityContext(input);
  const masked = sc?.masked_paths ?? [];
  const readonly = sc?.readonly_paths ?? [];
  if (masked.length || readonly.length) {
    spec.linux.maskedPaths = [...masked];
    spec.linux.readonlyPaths = [...readonly];
  } else if (!input.sandbox.userns) {
    spec.linux.maskedPaths = [...DEFAULT_MASKED_PATHS];
    spec.linux.readonlyPaths = [...DEFAULT_READONLY_PATHS];
  }
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
