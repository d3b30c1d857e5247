// The host's libseccomp.so.2 — the library crun links — through koffi: enough of its API to build
// a filter and export it as a raw BPF program (seccomp_export_bpf), which is what crun's
// `run.oci.seccomp_bpf_data` annotation carries. Loads on first use: importing has no effect.
// Callers take the `Libseccomp` interface, so unit tests can record the calls with a fake.
import { createRequire } from 'node:module';
import { closeSync, fstatSync, readSync } from 'node:fs';
import { syscallError } from './sys.js';

type Koffi = typeof import('koffi');

/** seccomp.h `enum scmp_compare`. */
export const SCMP_CMP = { NE: 1, LT: 2, LE: 3, EQ: 4, GE: 5, GT: 6, MASKED_EQ: 7 } as const;

/** seccomp.h action values; ERRNO and TRACE carry 16 bits of data. */
export const SCMP_ACT_KILL_PROCESS = 0x80000000;
export const SCMP_ACT_KILL_THREAD = 0x00000000;
export const SCMP_ACT_KILL = SCMP_ACT_KILL_THREAD;
export const SCMP_ACT_TRAP = 0x00030000;
export const SCMP_ACT_NOTIFY = 0x7fc00000;
export const SCMP_ACT_LOG = 0x7ffc0000;
export const SCMP_ACT_ALLOW = 0x7fff0000;
export const SCMP_ACT_ERRNO = (errno: number): number => (0x00050000 | (errno & 0xffff)) >>> 0;
export const SCMP_ACT_TRACE = (msg: number): number => (0x7ff00000 | (msg & 0xffff)) >>> 0;

/** seccomp.h `__NR_SCMP_ERROR`: what seccomp_syscall_resolve_name returns for a name it does not know. */
export const NR_SCMP_ERROR = -1;

/** seccomp.h `struct scmp_arg_cmp`: argument `arg` (0-5) compared by `op`; MASKED_EQ: (arg & a) == b. */
export interface ScmpArgCmp {
  arg: number;
  op: number;
  datumA: bigint;
  datumB: bigint;
}

/** A filter context (scmp_filter_ctx); opaque. */
export type ScmpFilter = unknown;

/** The libseccomp calls a filter is built with; return codes as libseccomp's (0 or -errno). */
export interface Libseccomp {
  /** seccomp_init; throws when libseccomp returns NULL. */
  init(defaultAction: number): ScmpFilter;
  /** seccomp_arch_resolve_name ("x86_64", lower case, no SCMP_ARCH_); 0 when unknown. */
  archResolveName(name: string): number;
  /** seccomp_arch_add: 0, -EEXIST (already there: the native arch), or another -errno. */
  archAdd(ctx: ScmpFilter, arch: number): number;
  /** seccomp_syscall_resolve_name for the native arch; NR_SCMP_ERROR when unknown. */
  syscallResolveName(name: string): number;
  /** seccomp_rule_add_array (no comparisons: seccomp_rule_add with 0 args). */
  ruleAdd(ctx: ScmpFilter, action: number, syscall: number, args: readonly ScmpArgCmp[]): number;
  /** seccomp_export_bpf, read back: the raw sock_filter array, 8 bytes an instruction. */
  exportBpf(ctx: ScmpFilter): Buffer;
  /** seccomp_release. */
  release(ctx: ScmpFilter): void;
}

const MFD_CLOEXEC = 1;
/** sizeof(struct scmp_arg_cmp) on LP64: unsigned int, enum, two uint64. */
const ARG_CMP_SIZE = 24;

let loaded: Libseccomp | undefined;

/** The host's libseccomp; throws (with the loader's message) when it cannot be loaded. */
export function libseccomp(): Libseccomp {
  if (loaded) return loaded;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libseccomp.so.2');
  const libc = koffi.load('libc.so.6');
  const f = {
    init: lib.func('void *seccomp_init(uint32_t def_action)'),
    release: lib.func('void seccomp_release(void *ctx)'),
    archResolve: lib.func('uint32_t seccomp_arch_resolve_name(const char *arch_name)'),
    archAdd: lib.func('int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
    syscallResolve: lib.func('int seccomp_syscall_resolve_name(const char *name)'),
    ruleAddArray: lib.func('int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const void *arg_array)'),
    exportBpf: lib.func('int seccomp_export_bpf(const void *ctx, int fd)'),
    memfdCreate: libc.func('int memfd_create(const char *name, unsigned int flags)'),
  };
  loaded = {
    init(defaultAction) {
      const ctx = f.init(defaultAction >>> 0) as unknown;
      if (ctx === null) throw new Error(`seccomp_init(0x${defaultAction.toString(16)}) failed`);
      return ctx;
    },
    archResolveName: (name) => Number(f.archResolve(name)),
    archAdd: (ctx, arch) => Number(f.archAdd(ctx, arch >>> 0)),
    syscallResolveName: (name) => Number(f.syscallResolve(name)),
    ruleAdd(ctx, action, syscall, args) {
      const b = Buffer.alloc(Math.max(args.length, 1) * ARG_CMP_SIZE);
      args.forEach((a, i) => {
        b.writeUInt32LE(a.arg, i * ARG_CMP_SIZE);
        b.writeUInt32LE(a.op, i * ARG_CMP_SIZE + 4);
        b.writeBigUInt64LE(a.datumA, i * ARG_CMP_SIZE + 8);
        b.writeBigUInt64LE(a.datumB, i * ARG_CMP_SIZE + 16);
      });
      return Number(f.ruleAddArray(ctx, action >>> 0, syscall, args.length, args.length ? b : null));
    },
    exportBpf(ctx) {
      const fd = Number(f.memfdCreate('skiff-seccomp-bpf', MFD_CLOEXEC));
      if (fd < 0) throw syscallError('memfd_create', koffi.errno());
      try {
        const ret = Number(f.exportBpf(ctx, fd));
        if (ret < 0) throw syscallError('seccomp_export_bpf', -ret);
        const out = Buffer.alloc(fstatSync(fd).size);
        for (let off = 0; off < out.length; ) {
          const n = readSync(fd, out, off, out.length - off, off);
          if (n === 0) throw new Error(`seccomp_export_bpf: short read at ${off} of ${out.length} bytes`);
          off += n;
        }
        return out;
      } finally {
        closeSync(fd);
      }
    },
    release(ctx) {
      f.release(ctx);
    },
  };
  return loaded;
}
