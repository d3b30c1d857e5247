// What the host offers the security options (seccomp, AppArmor, SELinux): its architecture and
// kernel, whether AppArmor and SELinux are on, and the files a Localhost profile names. The spec
// builder sees this through an interface so that its tests fake a host with AppArmor on;
// hostSecurity() reads the real one.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

export interface SecurityHost {
  /** Node's process.arch ("x64", "arm64"). */
  arch: string;
  /** Kernel release as uname(2) gives it. */
  kernel: string;
  /** /sys/module/apparmor/parameters/enabled reads "Y" (how runc and containerd detect it). */
  apparmorEnabled: boolean;
  /** Whether an AppArmor profile of this name is loaded (/sys/kernel/security/apparmor/profiles). */
  apparmorProfileLoaded(name: string): boolean;
  /** selinuxfs is mounted at /sys/fs/selinux. */
  selinuxEnabled: boolean;
  /** A Localhost profile's contents; throws the fs error (ENOENT, EACCES, EISDIR…). */
  readProfile(path: string): string;
}

let host: SecurityHost | undefined;

/**
 * The security facts of this host. Whether AppArmor and SELinux are on, the arch and the kernel do
 * not change while skiffd runs: read on first use, not on every CreateContainer. Loaded AppArmor
 * profiles and Localhost files are read when asked for.
 */
export function hostSecurity(): SecurityHost {
  host ??= {
    arch: process.arch,
    kernel: release(),
    apparmorEnabled: readOr('/sys/module/apparmor/parameters/enabled', '').trim() === 'Y',
    apparmorProfileLoaded: (name) =>
      readOr('/sys/kernel/security/apparmor/profiles', '')
        .split('\n')
        .some((l) => l.startsWith(`${name} (`)),
    selinuxEnabled: existsSync('/sys/fs/selinux/enforce'),
    readProfile: (path) => readFileSync(path, 'utf8'),
  };
  return host;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}
