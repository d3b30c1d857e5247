// Which extended attributes from a layer (PAX `SCHILY.xattr.*` records) reach the disk.
//
// containerd's applier writes every xattr of a layer and only tolerates ENOTSUP. We keep its
// tolerance but not its trust:
// - `trusted.overlay.*` / `user.overlay.*` are overlayfs' own control attributes (opaque, redirect,
//   metacopy, origin). Only our whiteout conversion may set them; from layer data they could point
//   overlay lookups at other layers' files. Dropped, with a warning.
// - `security.capability` is kept: file capabilities are image content (moby and containerd put
//   exactly this security xattr into the layers they build).
// - every other `security.*` (selinux, ima, evm, apparmor) is host policy, not image content: the
//   SELinux label of a container comes from its mount options. Dropped.
// - `system.posix_acl_access` / `system.posix_acl_default` (ACLs) are kept; other `system.*` names
//   are filesystem internals and dropped.
// - `user.*` and other `trusted.*` are kept.
// A filesystem that cannot store a kept namespace (ENOTSUP), or a kind of file that cannot carry
// it (EPERM: user.* on a symlink or device), costs a warning, not the layer.
import type { Logger } from 'pino';
import type { Syscalls } from '../../native/sys.js';

export type XattrVerdict = 'apply' | 'overlay' | 'host';

export function xattrVerdict(name: string): XattrVerdict {
  if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) return 'overlay';
  if (name === 'security.capability') return 'apply';
  if (name.startsWith('security.')) return 'host';
  if (name === 'system.posix_acl_access' || name === 'system.posix_acl_default') return 'apply';
  if (name.startsWith('system.')) return 'host';
  if (name.startsWith('user.') || name.startsWith('trusted.')) return 'apply';
  return 'host'; // unknown namespaces (os2.*, or none) cannot be set on Linux anyway
}

/** Sets the xattrs a layer gives `path` (never following a symlink); returns how many were set. */
export function applyXattrs(sys: Syscalls, path: string, xattrs: Map<string, Buffer>, entry: string, log: Logger): number {
  let set = 0;
  for (const [name, value] of xattrs) {
    const verdict = xattrVerdict(name);
    if (verdict === 'overlay') {
      log.warn({ entry, xattr: name }, 'layer carries an overlayfs control xattr; ignored');
      continue;
    }
    if (verdict === 'host') {
      log.debug({ entry, xattr: name }, 'host-specific xattr in layer; ignored');
      continue;
    }
    try {
      sys.lsetxattr(path, name, value);
      set++;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || (code === 'EPERM' && name.startsWith('user.'))) {
        log.warn({ entry, xattr: name, code }, 'xattr cannot be stored here; ignored');
        continue;
      }
      throw err;
    }
  }
  return set;
}
