// The few filesystem syscalls Node lacks (mknod, the l*xattr family, flock), called in libc through
// koffi. Everything loads on first use, so importing this module has no side effects. Callers take
// the `Syscalls` interface, so unit tests can pass `RecordingSyscalls` instead (youki
// `syscall/syscall.rs` + `syscall/test.rs`).
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { closeSync, openSync, writeFileSync } from 'node:fs';

type Koffi = typeof import('koffi');

/** The operations of `flock(2)`. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** File type bits of `mode` for mknod (linux/stat.h). */
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export interface Syscalls {
  /** mknod(2): `mode` holds the file type (S_IFCHR, S_IFBLK, S_IFIFO) and permission bits. */
  mknod(path: string, mode: number, dev: bigint): void;
  /** A fifo, through mknod(S_IFIFO) so that there is one code path. */
  mkfifo(path: string, mode: number): void;
  /** lsetxattr(2), flags 0 (create or replace). Never follows a symlink. */
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** lgetxattr(2); undefined when the attribute is absent (ENODATA). */
  lgetxattr(path: string, name: string): Buffer | undefined;
  /** llistxattr(2): the names of every attribute the caller may see. */
  llistxattr(path: string): string[];
  /** flock(2) on an open descriptor; LOCK_NB makes a held lock fail with EWOULDBLOCK. */
  flock(fd: number, op: number): void;
}

/** glibc's dev_t encoding (sysmacros.h `gnu_dev_makedev`): 12+20 bits of major, 8+24 of minor. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** The error shape of node:fs: `code` is the errno name, plus `errno`, `syscall` and `path`. */
export interface SyscallError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

let errnoNames: Map<number, string> | undefined;

function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    // First name wins, so 11 is EAGAIN and 95 ENOTSUP, as libuv spells them.
    for (const [name, value] of Object.entries(osConstants.errno)) {
      if (!errnoNames.has(value)) errnoNames.set(value, name);
    }
  }
  return errnoNames.get(errno) ?? `E${errno}`;
}

export function syscallError(syscall: string, errno: number, path?: string, code = errnoName(errno)): SyscallError {
  const where = path === undefined ? '' : ` '${path}'`;
  const err = new Error(`${code}: ${syscall}${where} failed (errno ${errno})`) as SyscallError;
  err.code = code;
  err.errno = -errno; // node:fs reports negative errno values (libuv convention)
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}

interface Libc {
  koffi: Koffi;
  mknod: (path: string, mode: number, dev: bigint) => number;
  lsetxattr: (path: string, name: string, value: Buffer, size: number, flags: number) => number;
  lgetxattr: (path: string, name: string, value: Buffer | null, size: number) => number | bigint;
  llistxattr: (path: string, list: Buffer | null, size: number) => number | bigint;
  flock: (fd: number, op: number) => number;
  mount: (source: string, target: string, fstype: string | null, flags: number | bigint, data: string | null) => number;
  umount2: (target: string, flags: number) => number;
  /** koffi's `.async` form runs the call on a worker thread: syncfs may take seconds. */
  syncfs: { async(fd: number, cb: (err: Error | null, ret: number) => void): void };
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  // glibc ≥ 2.33 exports mknod itself (older ones only had __xmknod); dev_t is 64 bits; ssize_t is
  // spelled intptr_t because koffi has no ssize_t (same width on every Linux ABI we run on).
  libc = {
    koffi,
    mknod: lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
    lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
    lgetxattr: lib.func('intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)'),
    llistxattr: lib.func('intptr_t llistxattr(const char *path, _Out_ char *list, size_t size)'),
    flock: lib.func('int flock(int fd, int op)'),
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    syncfs: lib.func('int syncfs(int fd)') as unknown as Libc['syncfs'],
  };
  return libc;
}

function check(ret: number | bigint, syscall: string, path?: string, code?: (errno: number) => string | undefined): number {
  const n = Number(ret);
  if (n >= 0) return n;
  const errno = load().koffi.errno();
  throw syscallError(syscall, errno, path, code?.(errno));
}

/** Calls a size-probing getter (size 0 → needed length) until the buffer fits; ERANGE means it grew. */
function readSized(syscall: string, path: string, call: (buf: Buffer | null, size: number) => number | bigint): Buffer | undefined {
  for (let attempt = 0; ; attempt++) {
    const size = check(call(null, 0), syscall, path, (e) => (e === osConstants.errno.ENODATA ? 'ENODATA' : undefined));
    const buf = Buffer.alloc(size);
    const ret = Number(call(buf, size));
    if (ret >= 0) return buf.subarray(0, ret);
    const errno = load().koffi.errno();
    if (errno !== osConstants.errno.ERANGE || attempt >= 3) throw syscallError(syscall, errno, path);
  }
}

/** mount(2) flags skiff uses (linux/mount.h). */
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MNT_DETACH = 0x2;

/** mount(2). Synchronous: overlay and tmpfs mounts take well under a millisecond. */
export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  check(load().mount(source, target, fstype, flags, data), 'mount', target);
}

/** umount2(2); a target that is not mounted (EINVAL) or absent (ENOENT) is already unmounted. */
export function unmount(target: string, flags = MNT_DETACH): void {
  const c = load();
  if (c.umount2(target, flags) === 0) return;
  const errno = c.koffi.errno();
  if (errno === osConstants.errno.EINVAL || errno === osConstants.errno.ENOENT) return;
  throw syscallError('umount2', errno, target);
}

/**
 * syncfs(2) on the filesystem holding `path`, off the event loop: flushes everything written
 * there, so that a record naming those files is only written once they are on disk.
 */
export async function syncFilesystem(path: string): Promise<void> {
  const c = load();
  const fd = openSync(path, 'r');
  try {
    const ret = await new Promise<number>((resolve, reject) => c.syncfs.async(fd, (err, r) => (err ? reject(err) : resolve(r))));
    // errno is per thread: koffi's async call ran on a worker, so only the failure itself is known.
    if (ret < 0) throw syscallError('syncfs', osConstants.errno.EIO, path, 'EIO');
  } finally {
    closeSync(fd);
  }
}

/** The real thing. Calls are synchronous: each is one short metadata syscall. */
export const linuxSyscalls: Syscalls = {
  mknod(path, mode, dev) {
    check(load().mknod(path, mode, dev), 'mknod', path);
  },
  mkfifo(path, mode) {
    check(load().mknod(path, S_IFIFO | (mode & 0o7777), 0n), 'mknod', path);
  },
  lsetxattr(path, name, value) {
    check(load().lsetxattr(path, name, value, value.length, 0), 'lsetxattr', path);
  },
  lgetxattr(path, name) {
    const c = load();
    try {
      return readSized('lgetxattr', path, (buf, size) => c.lgetxattr(path, name, buf, size));
    } catch (err) {
      if ((err as SyscallError).code === 'ENODATA') return undefined;
      throw err;
    }
  },
  llistxattr(path) {
    const c = load();
    const buf = readSized('llistxattr', path, (b, size) => c.llistxattr(path, b, size)) ?? Buffer.alloc(0);
    // The list is NUL-terminated names back to back.
    return buf.toString('utf8').split('\0').filter((n) => n !== '');
  },
  flock(fd, op) {
    // flock(2) documents a held lock as EWOULDBLOCK (the same number as EAGAIN on Linux).
    check(load().flock(fd, op), 'flock', undefined, (e) => (e === osConstants.errno.EWOULDBLOCK ? 'EWOULDBLOCK' : undefined));
  },
};

export interface RecordedCall {
  op: keyof Syscalls;
  args: unknown[];
}

/**
 * A fake for unit tests: records every call, keeps xattrs in memory, and fails on cue
 * (`failOn('lsetxattr', 'ENOTSUP')`). mknod/mkfifo create an empty placeholder regular file at the
 * path (inside the test's own temp dir), so that the metadata calls a caller makes next on that
 * path (lchown, lutimes) still find something; pass `{ placeholders: false }` to touch nothing.
 */
export class RecordingSyscalls implements Syscalls {
  readonly calls: RecordedCall[] = [];
  private readonly xattrs = new Map<string, Map<string, Buffer>>();
  private readonly failures = new Map<string, string>();
  private readonly placeholders: boolean;

  constructor(opts: { placeholders?: boolean } = {}) {
    this.placeholders = opts.placeholders ?? true;
  }

  /** The next and later calls of `op` (optionally only for `path`) throw an error with `code`. */
  failOn(op: keyof Syscalls, code: string, path?: string): void {
    this.failures.set(path === undefined ? op : `${op}:${path}`, code);
  }

  private enter(op: keyof Syscalls, args: unknown[], path?: string): void {
    this.calls.push({ op, args });
    const code = (path !== undefined ? this.failures.get(`${op}:${path}`) : undefined) ?? this.failures.get(op);
    if (code !== undefined) {
      throw syscallError(op === 'mkfifo' ? 'mknod' : op, (osConstants.errno as Record<string, number>)[code] ?? 0, path, code);
    }
  }

  mknod(path: string, mode: number, dev: bigint): void {
    this.enter('mknod', [path, mode, dev], path);
    if (this.placeholders) this.placeholder(path, 'mknod');
  }

  mkfifo(path: string, mode: number): void {
    this.enter('mkfifo', [path, mode], path);
    if (this.placeholders) this.placeholder(path, 'mknod');
  }

  lsetxattr(path: string, name: string, value: Buffer): void {
    this.enter('lsetxattr', [path, name, Buffer.from(value)], path);
    let m = this.xattrs.get(path);
    if (!m) this.xattrs.set(path, (m = new Map<string, Buffer>()));
    m.set(name, Buffer.from(value));
  }

  lgetxattr(path: string, name: string): Buffer | undefined {
    this.enter('lgetxattr', [path, name], path);
    const v = this.xattrs.get(path)?.get(name);
    return v && Buffer.from(v);
  }

  llistxattr(path: string): string[] {
    this.enter('llistxattr', [path], path);
    return [...(this.xattrs.get(path)?.keys() ?? [])];
  }

  flock(fd: number, op: number): void {
    this.enter('flock', [fd, op]);
  }

  /** Calls of one kind, for terse assertions. */
  callsOf(op: keyof Syscalls): unknown[][] {
    return this.calls.filter((c) => c.op === op).map((c) => c.args);
  }

  private placeholder(path: string, syscall: string): void {
    try {
      writeFileSync(path, '', { flag: 'wx' });
    } catch (err) {
      const e = err as SyscallError;
      throw syscallError(syscall, Math.abs(e.errno ?? 0), path, e.code);
    }
  }
}
