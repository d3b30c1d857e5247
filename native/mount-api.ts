// The new mount API (Linux ≥ 5.12) that Node lacks and glibc 2.36 does not wrap: open_tree(2),
// move_mount(2) and mount_setattr(2), called through koffi's variadic syscall(2). skiff uses them
// for recursive read-only staging mounts (MOUNT_ATTR_RDONLY with AT_RECURSIVE) and for idmapped
// mounts (MOUNT_ATTR_IDMAP with a user namespace fd). Loads on first use: importing has no effect.
import { createRequire } from 'node:module';
import { closeSync, openSync } from 'node:fs';
import { syscallError } from './sys.js';

type Koffi = typeof import('koffi');

/** x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl); the same on every arch since 5.x. */
const SYS_open_tree = 428;
const SYS_move_mount = 429;
const SYS_mount_setattr = 442;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
/** Applies to the whole subtree (mount_setattr) or clones it (open_tree). */
export const AT_RECURSIVE = 0x8000;
const OPEN_TREE_CLONE = 1;
const O_CLOEXEC = 0o2000000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;

/** linux/mount.h MOUNT_ATTR_*. */
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_IDMAP = 0x100000;
/** mount(2) propagation flags, usable in mount_attr.propagation. */
export const MS_PRIVATE = 0x40000;

interface Api {
  koffi: Koffi;
  syscall: (nr: number, ...args: unknown[]) => number | bigint;
}

let api: Api | undefined;

function load(): Api {
  if (api) return api;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  api = { koffi, syscall: lib.func('long syscall(long nr, ...)') as Api['syscall'] };
  return api;
}

function check(ret: number | bigint, syscall: string, path?: string): number {
  const n = Number(ret);
  if (n >= 0) return n;
  throw syscallError(syscall, load().koffi.errno(), path);
}

/** struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0 = 32 bytes). */
function mountAttr(set: number, clear: number, propagation: number, usernsFd: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(BigInt(set), 0);
  b.writeBigUInt64LE(BigInt(clear), 8);
  b.writeBigUInt64LE(BigInt(propagation), 16);
  b.writeBigUInt64LE(BigInt(usernsFd), 24);
  return b;
}

/** mount_setattr(2) on the mount at `path`, and with `recursive` on every mount below it. */
export function mountSetattr(path: string, o: { set?: number; clear?: number; propagation?: number; usernsFd?: number; recursive?: boolean }): void {
  const c = load();
  const attr = mountAttr(o.set ?? 0, o.clear ?? 0, o.propagation ?? 0, o.usernsFd ?? 0);
  const flags = AT_SYMLINK_NOFOLLOW | (o.recursive ? AT_RECURSIVE : 0);
  check(c.syscall(SYS_mount_setattr, 'int', AT_FDCWD, 'str', path, 'uint', flags, 'void *', attr, 'size_t', attr.length), 'mount_setattr', path);
}

/**
 * Mounts a detached copy of the tree at `source` (recursive: with its submounts) on `target`,
 * after `configure` has changed it (mount_setattr on the detached tree, e.g. an idmap): the copy
 * appears on `target` fully configured, never half-made.
 */
export function cloneMount(source: string, target: string, o: { recursive: boolean; idmapUsernsPath?: string; readOnly?: boolean }): void {
  const c = load();
  const flags = OPEN_TREE_CLONE | O_CLOEXEC | AT_SYMLINK_NOFOLLOW | (o.recursive ? AT_RECURSIVE : 0);
  const fd = check(c.syscall(SYS_open_tree, 'int', AT_FDCWD, 'str', source, 'uint', flags), 'open_tree', source);
  try {
    // The copy is private: nothing mounted under the source later reaches it, nor the reverse.
    const userns = o.idmapUsernsPath !== undefined ? openSync(o.idmapUsernsPath, 'r') : -1;
    try {
      const attr = mountAttr((userns >= 0 ? MOUNT_ATTR_IDMAP : 0) | (o.readOnly ? MOUNT_ATTR_RDONLY : 0), 0, MS_PRIVATE, Math.max(userns, 0));
      const setFlags = AT_EMPTY_PATH | (o.recursive ? AT_RECURSIVE : 0);
      check(c.syscall(SYS_mount_setattr, 'int', fd, 'str', '', 'uint', setFlags, 'void *', attr, 'size_t', attr.length), 'mount_setattr', source);
    } finally {
      if (userns >= 0) closeSync(userns);
    }
    check(c.syscall(SYS_move_mount, 'int', fd, 'str', '', 'int', AT_FDCWD, 'str', target, 'uint', MOVE_MOUNT_F_EMPTY_PATH), 'move_mount', target);
  } finally {
    closeSync(fd);
  }
}
