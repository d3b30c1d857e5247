// Pod user namespaces (KEP-127, CRI NamespaceOption.userns_options): mode POD puts the sandbox and
// every container of the pod in one new user namespace with kubelet's uid/gid mappings; NODE (or
// none) is the host's. Checked as containerd checks them (internal/cri/server/podsandbox
// parseUsernsIDs/parseUsernsIDMap): one mapping line each, length ≥ 1, no mappings with NODE, both
// with POD, no other mode. The sandbox makes and pins the namespace (skiff-ns --userns); a container
// joins it by that pin and repeats the mappings, as containerd's WithUserNamespace does (runc and
// crun accept a userns path with mappings equal to the namespace's).
import type * as v1 from '../../cri/gen/v1.js';
import { SkiffError } from '../../common/errors.js';
import type { LinuxIDMapping } from './oci-spec.js';
import { invalid, type SpecOption } from './option.js';

/** A pod's user namespace: one uid and one gid range. */
export interface PodUserNamespace {
  uid: LinuxIDMapping;
  gid: LinuxIDMapping;
}

const ID_SPACE = 2 ** 32;

function mapping(what: 'UID' | 'GID', lines: v1.IDMapping__Output[], fail: (m: string) => SkiffError): LinuxIDMapping | undefined {
  if (lines.length === 0) return undefined;
  // containerd: "We only accept 1 line, because containerd.WithRemappedSnapshot() only supports that."
  if (lines.length > 1) throw fail(`${what} mapping: only one mapping line supported, got ${lines.length} mapping lines`);
  const { container_id: containerID, host_id: hostID, length: size } = lines[0];
  if (!(size >= 1)) throw fail(`${what} mapping: invalid mapping length: ${size}`);
  // The kernel refuses ranges that leave the 32-bit id space (user_namespaces(7)).
  if (containerID + size > ID_SPACE || hostID + size > ID_SPACE) throw fail(`${what} mapping: ${containerID}:${hostID}:${size} leaves the 32-bit id space`);
  return { containerID, hostID, size };
}

/**
 * The user namespace a userns_options asks for: undefined for NODE (or none); throws
 * INVALID_ARGUMENT with containerd's reasons otherwise.
 */
export function parseUserNamespace(userns: v1.UserNamespace__Output | null | undefined, fail: (m: string) => SkiffError): PodUserNamespace | undefined {
  if (!userns) return undefined;
  const uid = mapping('UID', userns.uids, fail);
  const gid = mapping('GID', userns.gids, fail);
  const mode = String(userns.mode);
  switch (mode) {
    case 'NODE':
      if (uid || gid) throw fail(`can't use user namespace mode "NODE" with mappings. Got ${userns.uids.length} UID mappings and ${userns.gids.length} GID mappings`);
      return undefined;
    case 'POD':
      if (!uid || !gid) throw fail(`can't use user namespace mode "POD" without UID and GID mappings`);
      // The runtime runs the container as a uid of the namespace: root must be in it (kubelet maps 0).
      if (uid.containerID !== 0 || gid.containerID !== 0) throw fail(`user namespace mappings must start at container id 0, got UID ${uid.containerID} and GID ${gid.containerID}`);
      return { uid, gid };
    default:
      throw fail(`unsupported user namespace mode: "${mode}"`);
  }
}

/** RunPodSandbox's check: the pod's user namespace, and the host namespaces it cannot go with. */
export function podUserNamespace(config: v1.PodSandboxConfig__Output): PodUserNamespace | undefined {
  const o = config.linux?.security_context?.namespace_options;
  const fail = (m: string): SkiffError => new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: ${m}`);
  const userns = parseUserNamespace(o?.userns_options, fail);
  if (!userns) return undefined;
  // Kubelet never sends these (hostUsers: false is refused with hostNetwork/hostPID/hostIPC unless
  // UserNamespacesHostNetworkSupport); skiff's Status says user_namespaces_host_network: false.
  for (const [ns, mode] of [['network', o?.network], ['pid', o?.pid], ['ipc', o?.ipc]] as const) {
    if (String(mode ?? 'POD') === 'NODE') throw fail(`a pod user namespace cannot be combined with the host ${ns} namespace (namespace_options.${ns} NODE)`);
  }
  return userns;
}

const same = (a: LinuxIDMapping, b: LinuxIDMapping): boolean => a.containerID === b.containerID && a.hostID === b.hostID && a.size === b.size;

/**
 * The container joins the pod's user namespace by its pin, with the pod's mappings. A container
 * userns_options that differs from the pod's is refused (containerd: the container's must match
 * its sandbox's); a container asking for one in a pod without is refused too.
 */
export const withUserNamespace: SpecOption = (spec, input) => {
  const pod = input.sandbox.userns;
  const fail = (m: string): SkiffError => invalid(input, m);
  const asked = input.config.linux?.security_context?.namespace_options?.userns_options;
  const wanted = asked ? parseUserNamespace(asked, fail) : pod && { uid: pod.uid, gid: pod.gid };
  if (!pod) {
    if (wanted) throw fail('asks for a user namespace, but its pod has none');
    return;
  }
  if (!wanted || !same(wanted.uid, pod.uid) || !same(wanted.gid, pod.gid)) throw fail("user namespace options differ from the pod's");
  spec.linux.namespaces = [{ type: 'user', path: pod.path }, ...spec.linux.namespaces.filter((n) => n.type !== 'user')];
  spec.linux.uidMappings = [pod.uid];
  spec.linux.gidMappings = [pod.gid];
};
