// Linux security modules for a container: AppArmor and SELinux, by containerd's rules
// (internal/cri/sputil/apparmor_linux.go and its use of go-selinux's label.InitLabels):
// - AppArmor off on the host: any profile other than unconfined is refused, "apparmor is not
//   supported", rather than silently ignored; nothing asked means nothing applied;
// - AppArmor on: nothing asked means RuntimeDefault (kubernetes#51746) unless privileged;
//   RuntimeDefault is skiff's profile name (privileged: none), Localhost "<name>" must be loaded
//   in the kernel, Unconfined is none.
// - SELinux off on the host: selinux_options are ignored, as containerd does (InitLabels returns
//   empty labels when SELinux is disabled, and the request succeeds).
// - SELinux on: skiff does not allocate MCS labels from the policy yet, so a request for a label is
//   refused (UNIMPLEMENTED) rather than run unlabelled.
import type * as v1 from '../../cri/gen/v1.js';
import { invalid, isPrivileged, securityContext, unimplemented, type SpecOption } from './option.js';
import { NO_HOST, profileRequest, type ProfileRequest } from './seccomp/index.js';
import type { SecurityHost } from './security-host.js';

/** The AppArmor profile RuntimeDefault names (containerd's is "cri-containerd.apparmor.d"). */
export const APPARMOR_DEFAULT_PROFILE = 'skiff-default';

/** The AppArmor request of a container (apparmor field, else apparmor_profile) or sandbox (apparmor). */
export function apparmorRequest(field: v1.SecurityProfile__Output | null | undefined, path = ''): ProfileRequest | undefined {
  return profileRequest('apparmor', field, path, undefined);
}

/**
 * process.apparmorProfile for a request on this host; undefined: none. Throws an Error saying why
 * the request cannot be honoured.
 */
export function apparmorProfileFor(req: ProfileRequest | undefined, privileged: boolean, host: SecurityHost): string | undefined {
  if (!host.apparmorEnabled) {
    if (req && req.type !== 'Unconfined') throw new Error(`apparmor is not supported on this node (AppArmor is not enabled in the kernel), but profile ${describe(req)} was requested`);
    return undefined;
  }
  const r = req ?? { type: 'RuntimeDefault' };
  switch (r.type) {
    case 'Unconfined':
      return undefined;
    case 'RuntimeDefault':
      return privileged ? undefined : APPARMOR_DEFAULT_PROFILE;
    case 'Localhost':
      if (!host.apparmorProfileLoaded(r.ref)) throw new Error(`apparmor profile ${JSON.stringify(r.ref)} is not loaded on this node`);
      return r.ref;
  }
}

function describe(req: ProfileRequest): string {
  return req.type === 'Localhost' ? `localhost/${req.ref}` : req.type;
}

export const withAppArmor: SpecOption = (spec, input) => {
  const sc = securityContext(input);
  try {
    const profile = apparmorProfileFor(apparmorRequest(sc?.apparmor, sc?.apparmor_profile ?? ''), isPrivileged(input), input.securityHost ?? NO_HOST);
    if (profile) spec.process.apparmorProfile = profile;
  } catch (err) {
    throw invalid(input, (err as Error).message);
  }
};

/** Whether SELinux options ask for a label at all (kubelet sends an empty message for none). */
export function asksForLabel(o: v1.SELinuxOption__Output | null | undefined): boolean {
  return !!o && !!(o.user || o.role || o.type || o.level);
}

export const withSELinux: SpecOption = (_spec, input) => {
  const host = input.securityHost ?? NO_HOST;
  if (!host.selinuxEnabled) return; // ignored, as containerd does when SELinux is disabled
  if (asksForLabel(securityContext(input)?.selinux_options) || asksForLabel(input.sandboxConfig.linux?.security_context?.selinux_options)) {
    throw unimplemented(input, 'SELinux labels are not supported by skiff yet, and this node has SELinux enabled');
  }
};
