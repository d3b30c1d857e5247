// Which seccomp profile a container or sandbox asked for, and the spec option that applies it.
// The rules are containerd's (internal/cri/sputil seccomp_linux.go, securityprofile_linux.go):
// - the `seccomp` SecurityProfile wins; else the deprecated seccomp_profile_path string:
//   "runtime/default" and "docker/default" → RuntimeDefault, "unconfined" → Unconfined,
//   "localhost/<path>" → Localhost, "" → Unconfined (kubelet sends "" for "no profile", and
//   containerd's unset_seccomp_profile defaults to it), anything else is refused;
// - a localhost_ref with a type other than Localhost is refused;
// - privileged containers run without a filter whatever they ask for ("Privileged containers
//   always run as Unconfined", Kubernetes' seccomp docs; containerd returns before looking);
// - RuntimeDefault is skiff's default profile (default-profile.ts) resolved for the container's
//   capabilities; Localhost is a Docker/OCI JSON file on the node, read and checked here so that a
//   missing or malformed file fails CreateContainer rather than the runtime's create.
import type * as v1 from '../../../cri/gen/v1.js';
import { invalid, isPrivileged, securityContext, type SpecOption } from '../option.js';
import type { LinuxSeccomp } from '../oci-spec.js';
import type { SecurityHost } from '../security-host.js';
import { DEFAULT_SECCOMP_PROFILE } from './default-profile.js';
import { parseSeccompProfile } from './localhost.js';
import { resolveSeccomp, type SeccompProfileData } from './profile.js';

export { DEFAULT_SECCOMP_PROFILE } from './default-profile.js';
export { resolveSeccomp, type SeccompFacts, type SeccompProfileData } from './profile.js';
export { parseSeccompProfile } from './localhost.js';

export type ProfileRequest = { type: 'RuntimeDefault' } | { type: 'Unconfined' } | { type: 'Localhost'; ref: string };

const TYPES = ['RuntimeDefault', 'Unconfined', 'Localhost'];

/**
 * The profile a SecurityProfile field or, when that is absent, a deprecated profile string asks for;
 * `what` names the knob in errors ("seccomp", "apparmor"); `empty` is what "" means. Throws an
 * Error whose message is the reason (callers add whose request it was).
 */
export function profileRequest(what: string, field: v1.SecurityProfile__Output | null | undefined, path: string, empty: ProfileRequest | undefined): ProfileRequest | undefined {
  if (field) {
    const type = String(field.profile_type);
    if (!TYPES.includes(type)) throw new Error(`${what} profile type ${JSON.stringify(field.profile_type)} is not one of ${TYPES.join(', ')}`);
    if (type !== 'Localhost' && field.localhost_ref) throw new Error(`${what} localhost_ref ${JSON.stringify(field.localhost_ref)} may only be set with profile type Localhost, not ${type}`);
    if (type === 'Localhost') {
      // containerd trims a "localhost/" prefix here too, "just in case".
      const ref = field.localhost_ref.replace(/^localhost\//, '');
      if (!ref) throw new Error(`${what} profile type Localhost needs localhost_ref`);
      return { type, ref };
    }
    return { type: type as 'RuntimeDefault' | 'Unconfined' };
  }
  switch (path) {
    case '':
      return empty;
    case 'runtime/default':
    case 'docker/default':
      return { type: 'RuntimeDefault' };
    case 'unconfined':
      return { type: 'Unconfined' };
    default:
      if (path.startsWith('localhost/') && path.length > 'localhost/'.length) return { type: 'Localhost', ref: path.slice('localhost/'.length) };
      throw new Error(`${what} profile ${JSON.stringify(path)} is not runtime/default, docker/default, unconfined or localhost/<name>`);
  }
}

/** The seccomp profile a container or sandbox security context asks for (undefined: none). */
export function seccompRequest(sc: { seccomp: v1.SecurityProfile__Output | null; seccomp_profile_path: string } | null | undefined): ProfileRequest | undefined {
  return profileRequest('seccomp', sc?.seccomp, sc?.seccomp_profile_path ?? '', { type: 'Unconfined' });
}

/** A Localhost profile file, read and parsed; the Error says which file and what is wrong. */
export function loadLocalhostProfile(ref: string, host: Pick<SecurityHost, 'readProfile'>): SeccompProfileData {
  if (!ref.startsWith('/')) throw new Error(`seccomp localhost profile ${JSON.stringify(ref)} must be an absolute path on the node`);
  let text: string;
  try {
    text = host.readProfile(ref);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`seccomp profile ${ref}: cannot read it: ${e.code ?? e.message}${e.code === 'ENOENT' ? ' (no such file)' : ''}`, { cause: err });
  }
  try {
    return parseSeccompProfile(text);
  } catch (err) {
    throw new Error(`seccomp profile ${ref}: ${(err as Error).message}`, { cause: err });
  }
}

/** The profile's linux.seccomp for a process with these capabilities; undefined: Unconfined. */
export function seccompFor(req: ProfileRequest | undefined, capabilities: readonly string[], host: SecurityHost): LinuxSeccomp | undefined {
  if (!req || req.type === 'Unconfined') return undefined;
  const profile = req.type === 'RuntimeDefault' ? DEFAULT_SECCOMP_PROFILE : loadLocalhostProfile(req.ref, host);
  return resolveSeccomp(profile, { capabilities, arch: host.arch, kernel: host.kernel });
}

/** linux.seccomp from the container's request; after the capabilities are final (privileged too). */
export const withSeccomp: SpecOption = (spec, input) => {
  let req: ProfileRequest | undefined;
  try {
    req = seccompRequest(securityContext(input));
  } catch (err) {
    throw invalid(input, (err as Error).message);
  }
  if (isPrivileged(input)) return;
  try {
    const seccomp = seccompFor(req, spec.process.capabilities?.bounding ?? [], input.securityHost ?? NO_HOST);
    if (seccomp) spec.linux.seccomp = seccomp;
  } catch (err) {
    throw invalid(input, (err as Error).message);
  }
};

/** For inputs built without host facts (tests): x86-64, a current kernel, no AppArmor/SELinux, no files. */
export const NO_HOST: SecurityHost = {
  arch: 'x64',
  kernel: '6.1.0',
  apparmorEnabled: false,
  apparmorProfileLoaded: () => false,
  selinuxEnabled: false,
  readProfile: (path) => {
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
  },
};
