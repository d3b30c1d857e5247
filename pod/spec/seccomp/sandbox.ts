// The sandbox's own security context (LinuxSandboxSecurityContext), checked before RunPodSandbox
// makes anything. The sandbox's process is skiff-pause, which skiff-ns starts without an OCI
// runtime, so what is asked is checked here and what pause gets is decided here:
// - seccomp: the request is validated as a container's is (type, localhost_ref, the Localhost file
//   read and parsed), so a bad one fails RunPodSandbox. No filter is loaded into skiff-pause yet:
//   it is started by skiff-ns, not by an OCI runtime (which compiles the profile with libseccomp),
//   and skiff has no BPF compiler of its own. `pauseUnfiltered` says when a filter was asked for
//   (RuntimeDefault or Localhost, not privileged) and the caller logs that it is not applied. The
//   pause process only sleeps and reaps, and no container inherits anything from it (they join its
//   namespaces by path), so each container's own profile is what confines the workload.
// - AppArmor: on a host without AppArmor a profile other than unconfined is refused, as for a
//   container; on a host with it, pause is not confined (containerd applies no AppArmor profile to
//   its sandbox container either).
// - SELinux options: ignored when SELinux is off (containerd); refused when it is on (lsm.ts).
import type * as v1 from '../../../cri/gen/v1.js';
import { SkiffError } from '../../../common/errors.js';
import { apparmorProfileFor, apparmorRequest, asksForLabel } from '../lsm.js';
import type { SecurityHost } from '../security-host.js';
import { loadLocalhostProfile, seccompRequest } from './index.js';

/** Checks the request; throws INVALID_ARGUMENT/UNIMPLEMENTED naming the problem. */
export function sandboxSecurity(config: v1.PodSandboxConfig__Output, host: SecurityHost): { pauseUnfiltered?: string } {
  const sc = config.linux?.security_context;
  const fail = (err: unknown): never => {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: ${(err as Error).message}`, { cause: err });
  };
  let pauseUnfiltered: string | undefined;
  try {
    const req = seccompRequest(sc);
    if (req?.type === 'Localhost') loadLocalhostProfile(req.ref, host);
    if (req && req.type !== 'Unconfined' && sc?.privileged !== true) pauseUnfiltered = req.type === 'Localhost' ? `localhost/${req.ref}` : req.type;
  } catch (err) {
    fail(err);
  }
  try {
    const req = apparmorRequest(sc?.apparmor);
    if (!host.apparmorEnabled) apparmorProfileFor(req, sc?.privileged === true, host);
  } catch (err) {
    fail(err);
  }
  if (host.selinuxEnabled && asksForLabel(sc?.selinux_options)) {
    throw new SkiffError('SKIFF_UNIMPLEMENTED', 'RunPodSandbox: SELinux labels are not supported by skiff yet, and this node has SELinux enabled');
  }
  return pauseUnfiltered ? { pauseUnfiltered } : {};
}
