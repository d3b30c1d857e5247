// Which namespaces the container joins (by path: the runtime does the setns, runtime-spec
// config-linux.md "namespaces") and which it gets new, plus what lives in them: hostname and
// sysctls. containerd: internal/cri/opts WithPodNamespaces, container_create.go (cgroupns).
import type { LinuxNamespace } from './oci-spec.js';
import { invalid, isPrivileged, type SpecOption } from './option.js';

export const nsPath = (pid: number, ns: 'net' | 'ipc' | 'uts' | 'pid'): string => `/proc/${pid}/ns/${ns}`;

/**
 * network: the pinned netns (none = host); ipc and uts: the pinned ones, else the pause
 * process's (none for host IPC);
 * pid: POD the pause's, CONTAINER a new one, NODE the host's, TARGET the target container's;
 * mount: new; cgroup: new on cgroup v2 unless privileged (containerd, for nested tooling).
 */
export const withNamespaces: SpecOption = (spec, input) => {
  const sb = input.sandbox;
  const namespaces: LinuxNamespace[] = [];
  switch (sb.pidMode) {
    case 'POD':
      namespaces.push({ type: 'pid', path: nsPath(sb.pid, 'pid') });
      break;
    case 'CONTAINER':
      namespaces.push({ type: 'pid' });
      break;
    case 'TARGET':
      if (!sb.targetPid) {
        const target = input.config.linux?.security_context?.namespace_options?.target_id ?? '';
        throw invalid(input, `target container ${target ? `"${target}" ` : ''}for the pid namespace is not running`);
      }
      namespaces.push({ type: 'pid', path: nsPath(sb.targetPid, 'pid') });
      break;
    case 'NODE':
      break;
  }
  if (!sb.hostNetwork) namespaces.push({ type: 'network', path: sb.netnsPath ?? nsPath(sb.pid, 'net') });
  if (!sb.hostIPC) namespaces.push({ type: 'ipc', path: sb.ipcPath ?? nsPath(sb.pid, 'ipc') });
  namespaces.push({ type: 'uts', path: sb.utsPath ?? nsPath(sb.pid, 'uts') });
  namespaces.push({ type: 'mount' });
  if (input.cgroupV2 && !isPrivileged(input)) namespaces.push({ type: 'cgroup' });
  spec.linux.namespaces = namespaces;
};

/**
 * The pod's hostname, written again in the pod's UTS namespace it joins. Not with host network:
 * the runtime would set the node's hostname (runc refuses a hostname without a private UTS ns).
 */
export const withHostname: SpecOption = (spec, input) => {
  if (!input.sandbox.hostNetwork && input.sandbox.hostname) spec.hostname = input.sandbox.hostname;
};

/**
 * The IPC sysctls runc accepts (libcontainer/configs/validate sysctl; crun's list is the same).
 * kubelet's namespaced list matches by prefix (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*),
 * which also lets through kernel.shm_next_id and kernel.msg_next_id: runc refuses those at create
 * ("not in a separate kernel namespace"), so skiff refuses them up front.
 */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/** Kubernetes accepts net/ipv4/ip_forward for net.ipv4.ip_forward: the first separator decides. */
export function dotSysctlName(name: string): string {
  const first = name.search(/[./]/);
  if (first < 0 || name[first] === '.') return name;
  return name.replace(/[./]/g, (c) => (c === '/' ? '.' : '/'));
}

/**
 * Why a pod sysctl cannot be set, or undefined when it can: only namespaced sysctls, and only in a
 * namespace the pod owns (runc's rules): net.* needs the pod network; the IPC ones and fs.mqueue.*
 * the pod IPC; kernel.domainname the pod UTS (which skiff gives a pod unless it is on the host
 * network). kernel.hostname is refused as runc refuses it: it conflicts with the pod's hostname.
 */
export function sysctlProblem(raw: string, pod: { hostNetwork: boolean; hostIPC: boolean }): string | undefined {
  const name = dotSysctlName(raw);
  if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) {
    return pod.hostIPC ? `sysctl "${name}" is not allowed with host IPC` : undefined;
  }
  if (name.startsWith('net.')) return pod.hostNetwork ? `sysctl "${name}" is not allowed with host network` : undefined;
  if (name === 'kernel.domainname') return pod.hostNetwork ? `sysctl "${name}" is not allowed with host network (the pod has the node's UTS namespace)` : undefined;
  if (name === 'kernel.hostname') return `sysctl "${name}" is not allowed: it conflicts with the pod's hostname`;
  return `sysctl "${name}" is not namespaced (allowed: net.*, kernel.shm{max,all,mni,_rmid_forced}, kernel.msg{max,mnb,mni}, kernel.sem, fs.mqueue.*, kernel.domainname)`;
}

/**
 * sandboxConfig.linux.sysctls, checked by sysctlProblem (RunPodSandbox checked them already; a
 * container checks again against the sandbox it joins). The OCI runtime writes them after joining
 * the pod's namespaces, so each container applies them to the pod's net/ipc/uts namespaces.
 */
export const withSysctls: SpecOption = (spec, input) => {
  const sysctls = input.sandboxConfig.linux?.sysctls ?? {};
  const out: Record<string, string> = {};
  for (const [raw, value] of Object.entries(sysctls)) {
    const problem = sysctlProblem(raw, input.sandbox);
    if (problem) throw invalid(input, problem);
    out[dotSysctlName(raw)] = value;
  }
  if (Object.keys(out).length) spec.linux.sysctl = out;
};

export const withCgroupsPath: SpecOption = (spec, input) => {
  if (input.cgroupsPath) spec.linux.cgroupsPath = input.cgroupsPath;
};
