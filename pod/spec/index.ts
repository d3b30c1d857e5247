// config.json for a container: a pure function of the CRI requests, the image config and the
// sandbox, composed of small options applied in order (containerd's WithXxx SpecOpts). Anything
// from disk — the image's passwd/group, device numbers, whether a host path exists — comes in the
// input; host-devices.ts holds the real lookups the caller passes.
import { OCI_VERSION, type Spec } from './oci-spec.js';
import type { SpecOption } from './option.js';
import { withCdiDevices } from './cdi.js';
import { withDevices } from './devices.js';
import { withAppArmor, withSELinux } from './lsm.js';
import { withSeccomp } from './seccomp/index.js';
import { withMounts } from './mounts.js';
import { withCgroupsPath, withHostname, withNamespaces, withSysctls } from './namespaces.js';
import { withCwd, withEnv, withProcessArgs, withTerminal } from './process.js';
import { withOomScoreAdj, withResources } from './resources.js';
import { withCapabilities, withMaskedPaths, withNoNewPrivileges, withPrivileged, withReadonlyRootfs } from './security.js';
import type { ContainerSpecInput } from './types.js';
import { withUser } from './user.js';
import { withUserNamespace } from './userns.js';

export type { Spec } from './oci-spec.js';
export type { ContainerSpecInput, DeviceInfo, HostDevice, HostPropagation, PidMode, ResourceHost, SandboxInfo } from './types.js';
export { hostPathsToCreate } from './mounts.js';

/** containerd's io.kubernetes.cri.* keys, which tools on the node (and NRI plugins) read. */
export const Annotation = {
  CONTAINER_TYPE: 'io.kubernetes.cri.container-type',
  SANDBOX_ID: 'io.kubernetes.cri.sandbox-id',
  SANDBOX_NAME: 'io.kubernetes.cri.sandbox-name',
  SANDBOX_NAMESPACE: 'io.kubernetes.cri.sandbox-namespace',
  SANDBOX_UID: 'io.kubernetes.cri.sandbox-uid',
  CONTAINER_NAME: 'io.kubernetes.cri.container-name',
  IMAGE_NAME: 'io.kubernetes.cri.image-name',
} as const;

/** The container's CRI annotations (as CRI-O passes them), then ours, which win. */
export const withAnnotations: SpecOption = (spec, input) => {
  const pod = input.sandboxConfig.metadata;
  spec.annotations = {
    ...input.config.annotations,
    [Annotation.CONTAINER_TYPE]: 'container',
    [Annotation.SANDBOX_ID]: input.sandbox.id,
    [Annotation.SANDBOX_NAME]: pod?.name ?? '',
    [Annotation.SANDBOX_NAMESPACE]: pod?.namespace ?? '',
    [Annotation.SANDBOX_UID]: pod?.uid ?? '',
    [Annotation.CONTAINER_NAME]: input.config.metadata?.name ?? '',
    [Annotation.IMAGE_NAME]: input.imageName,
  };
};

/** In order: later options see (and may override) what earlier ones wrote, e.g. privileged. */
export const CONTAINER_SPEC_OPTIONS: readonly SpecOption[] = [
  withProcessArgs,
  withEnv,
  withCwd,
  withTerminal,
  withUser,
  withCapabilities,
  withNoNewPrivileges,
  withOomScoreAdj,
  withReadonlyRootfs,
  withMounts,
  withMaskedPaths,
  withDevices,
  withPrivileged,
  withSeccomp, // after the capabilities are final: the default profile depends on them
  withAppArmor,
  withSELinux,
  withResources,
  withCdiDevices,
  withNamespaces,
  withUserNamespace,
  withHostname,
  withSysctls,
  withCgroupsPath,
  withAnnotations,
];

function baseSpec(input: ContainerSpecInput): Spec {
  return {
    ociVersion: OCI_VERSION,
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: [], env: [], cwd: '/' },
    root: { path: input.rootfs, readonly: false },
    mounts: [],
    linux: { namespaces: [] },
  };
}

/** The OCI runtime-spec config.json for a container; throws SkiffError on bad input. */
export function buildContainerSpec(input: ContainerSpecInput, options: readonly SpecOption[] = CONTAINER_SPEC_OPTIONS): Spec {
  const spec = baseSpec(input);
  for (const option of options) option(spec, input);
  return spec;
}
