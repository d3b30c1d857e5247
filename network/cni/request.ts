// What a caller hands CniNetwork for one sandbox, checked against the CNI spec's rules, and turned
// into what plugins get: CNI_ARGS (kubelet's keys, CNI CONVENTIONS.md) and capability args.
import { SkiffError } from '../../common/errors.js';
import { validId, validIfName } from './config.js';

export const DEFAULT_IFNAME = 'eth0';

/** CNI CONVENTIONS.md "portMappings"; protocol tcp, udp or sctp (lower case is sent). */
export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: string;
  hostIP?: string;
}

/** CNI CONVENTIONS.md "bandwidth": rates in bits per second, bursts in bits. */
export interface CniBandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** CNI CONVENTIONS.md "dns". */
export interface CniDnsConfig {
  servers?: string[];
  searches?: string[];
  options?: string[];
}

/** Capability args: each goes into `runtimeConfig` of exactly the plugins that declare it. */
export interface CniCapabilityArgs {
  portMappings?: CniPortMapping[];
  bandwidth?: CniBandwidth;
  dns?: CniDnsConfig;
  ips?: string[];
  [capability: string]: unknown;
}

/** One attachment: a sandbox's interface. */
export interface CniAttachmentRef {
  /** The sandbox id (CNI_CONTAINERID). */
  containerId: string;
  /** Interface name inside the pod; default eth0. */
  ifName?: string;
}

export interface CniPod extends CniAttachmentRef {
  /** The pinned network namespace. */
  netnsPath: string;
  podName: string;
  podNamespace: string;
  podUid: string;
}

export interface CniAddRequest extends CniPod {
  capabilities?: CniCapabilityArgs;
}

export interface CniDelRequest extends CniAttachmentRef {
  /** The netns, if it still exists; DEL works without it (CNI_NETNS is then empty). */
  netnsPath?: string;
}

/** Validates the ids (CNI spec rules); returns the interface name. */
export function checkRef(ref: CniAttachmentRef): string {
  const ifName = ref.ifName ?? DEFAULT_IFNAME;
  if (!validId(ref.containerId)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `invalid CNI container id "${ref.containerId}"`);
  if (!validIfName(ifName)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `invalid interface name "${ifName}"`);
  return ifName;
}

/** CNI_ARGS as kubelet's dockershim and containerd send them (CNI CONVENTIONS.md). */
export function podArgs(req: CniPod): [string, string][] {
  const args: [string, string][] = [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAMESPACE', req.podNamespace],
    ['K8S_POD_NAME', req.podName],
    ['K8S_POD_INFRA_CONTAINER_ID', req.containerId],
    ['K8S_POD_UID', req.podUid],
  ];
  for (const [k, v] of args) {
    // CNI_ARGS is KEY=VALUE;… with no escaping.
    if (/[;=]/.test(v)) throw new SkiffError('SKIFF_INVALID_ARGUMENT', `CNI_ARGS ${k} must not contain ';' or '=': "${v}"`);
  }
  return args;
}

/** Drops unset capabilities; port mappings as portmap expects them (lower-case protocol, no hostPort 0). */
export function normalizeCapabilities(caps: CniCapabilityArgs): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(caps)) {
    if (v === undefined || v === null) continue;
    if (k === 'portMappings') {
      const pms = (v as CniPortMapping[])
        .filter((p) => p.hostPort > 0)
        .map((p) => ({
          hostPort: p.hostPort,
          containerPort: p.containerPort,
          protocol: (p.protocol || 'tcp').toLowerCase(),
          ...(p.hostIP ? { hostIP: p.hostIP } : {}),
        }));
      if (pms.length > 0) out.portMappings = pms;
      continue;
    }
    out[k] = v;
  }
  return out;
}
