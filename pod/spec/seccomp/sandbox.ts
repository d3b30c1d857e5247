// The sandbox's own security context (LinuxSandboxSecurityContext), checked before RunPodSandbox
// makes anything. The sandbox's process is skiff-pause, which skiff-ns starts without an OCI
// runtime, so what is asked is checked here and what pause gets is decided here:
// - seccomp: the request is validated as a container's is (type, localhost_ref, the Localhost file
//   read and parsed), so a bad one fails RunPodSandbox. RuntimeDefault and Localhost (unless the
//   sandbox is privileged) give `pauseSeccomp`, the linux.seccomp for containerd's default
//   capability set that pause runs with: the caller compiles it and skiff-ns loads it, with
//   no_new_privs, right before it execs pause.
// - AppArmor: on a host without AppArmor a profile other than unconfined is refused, as for a
//   container; on a host with it, pause is not confined (containerd applies no AppArmor profile to
//   its sandbox container either).
// - SELinux options: ignored when SELinux is off (containerd); refused when it is on (lsm.ts).
import type * as v1 from '../../../cri/gen/v1.js';
import { SkiffError } from '../../../common/errors.js';
import { apparmorProfileFor, apparmorRequest, asksForLabel } from '../lsm.js';
import type { SecurityHost } from '../security-host.js';
import type { LinuxSeccomp } from '../oci-spec.js';
import { DEFAULT_CAPABILITIES } from '../security.js';
import { seccompFor, seccompRequest } from './index.js';

/** Checks the request; throws INVALID_ARGUMENT/UNIMPLEMENTED naming the problem. */
export function sandboxSecurity(config: v1.PodSandboxConfig__Output, host: SecurityHost): { pauseSeccomp?: LinuxSeccomp } {
  const sc = config.linux?.security_context;
  const fail = (err: unknown): never => {
    throw new SkiffError('SKIFF_INVALID_ARGUMENT', `RunPodSandbox: ${(err as Error).message}`, { cause: err });
  };
  let pauseSeccomp: LinuxSeccomp | undefined;
  try {
    const req = seccompRequest(sc);
    // Read and checked even for a privileged sandbox, which then runs unfiltered (containerd).
    const seccomp = seccompFor(req, DEFAULT_CAPABILITIES, host);
    if (sc?.privileged !== true) pauseSeccomp = seccomp;
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
  return pauseSeccomp ? { pauseSeccomp } : {};
}
