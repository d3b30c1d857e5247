// skiff's RuntimeDefault seccomp profile, as data. Its policy is the one Docker and containerd ship
// as their default (moby profiles/seccomp/default.json, containerd contrib/seccomp): an allowlist,
// every other syscall failing with EPERM; a few syscalls allowed only with argument checks
// (clone without namespace flags, personality with known personas, socket but not AF_VSOCK);
// some allowed only when the container holds a capability (mount and friends with CAP_SYS_ADMIN);
// and architecture-specific calls. profile.ts turns it into linux.seccomp for one container.
import type { SeccompProfileData } from './profile.js';

/** clone(2) flags that make namespaces: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const AF_VSOCK = 40;
const ENOSYS = 38;
/** personality(2) values a program may ask for: PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE (with and
 * without UNAME26), and 0xffffffff, which only queries the current persona. */
const PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

export const DEFAULT_SECCOMP_PROFILE: SeccompProfileData = {
  name: 'skiff-default',
  defaultErrno: 1, // EPERM, as SCMP_ACT_ERRNO with defaultErrnoRet 1 in Docker's profile
  // The host's architecture (Node's process.arch) → the seccomp architectures a filter covers:
  // the native one and those a process of it can also run (32-bit and x32 on x86-64).
  architectures: {
    x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
    mips64: ['SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32'],
    mips64el: ['SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'],
    s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
    riscv64: ['SCMP_ARCH_RISCV64'],
  },
  rules: [
    {
      why: 'what ordinary programs need',
      syscalls: [
        'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod',
        'chown', 'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64',
        'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range',
        'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1', 'epoll_ctl',
        'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2',
        'execve', 'execveat', 'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64',
        'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl',
        'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat',
        'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futex',
        'futex_time64', 'futex_waitv', 'futimesat', 'getcpu', 'getcwd', 'getdents', 'getdents64', 'getegid',
        'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32', 'getitimer',
        'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid',
        'getresgid32', 'getresuid', 'getresuid32', 'getrlimit', 'get_robust_list', 'getrusage', 'getsid',
        'getsockname', 'getsockopt', 'get_thread_area', 'gettid', 'gettimeofday', 'getuid', 'getuid32', 'getxattr',
        'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'ioctl',
        'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'ioprio_get', 'ioprio_set',
        'io_setup', 'io_submit', 'io_uring_enter', 'io_uring_register', 'io_uring_setup', 'ipc', 'kill',
        'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr',
        'link', 'linkat', 'listen', 'listxattr', 'llistxattr', '_llseek', 'lremovexattr', 'lseek', 'lsetxattr',
        'lstat', 'lstat64', 'madvise', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir', 'mkdirat',
        'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr',
        'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend',
        'mq_timedsend_time64', 'mq_unlink', 'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock',
        'munlockall', 'munmap', 'name_to_handle_at', 'nanosleep', 'newfstatat', '_newselect', 'open', 'openat',
        'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free',
        'pkey_mprotect', 'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64',
        'process_mrelease', 'pselect6', 'pselect6_time64', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead',
        'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom', 'recvmmsg', 'recvmmsg_time64', 'recvmsg',
        'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2', 'restart_syscall', 'rmdir', 'rseq',
        'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend',
        'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr',
        'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler',
        'sched_rr_get_interval', 'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr',
        'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp', 'select', 'semctl', 'semget', 'semop',
        'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg', 'sendmsg', 'sendto',
        'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups', 'setgroups32',
        'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32', 'setresuid',
        'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'set_robust_list', 'setsid', 'setsockopt',
        'set_thread_area', 'set_tid_address', 'setuid', 'setuid32', 'setxattr', 'shmat', 'shmctl', 'shmdt',
        'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn', 'socketcall',
        'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync',
        'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete',
        'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64',
        'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times',
        'tkill', 'truncate', 'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime',
        'utimensat', 'utimensat_time64', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid', 'write',
        'writev',
      ],
    },
    { why: 'since 4.8 these no longer bypass seccomp', syscalls: ['process_vm_readv', 'process_vm_writev', 'ptrace'], minKernel: '4.8' },
    { why: 'every socket family but AF_VSOCK', syscalls: ['socket'], args: [{ index: 0, op: 'SCMP_CMP_NE', value: AF_VSOCK }] },
    ...PERSONAS.map((p) => ({ why: 'known personas only', syscalls: ['personality'], args: [{ index: 0, op: 'SCMP_CMP_EQ' as const, value: p }] })),
    { syscalls: ['sync_file_range2', 'swapcontext'], onlyOn: ['ppc64'] },
    { syscalls: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'], onlyOn: ['arm', 'arm64'] },
    { syscalls: ['arch_prctl'], onlyOn: ['x64'] },
    { syscalls: ['modify_ldt'], onlyOn: ['x64', 'ia32'] },
    { syscalls: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], onlyOn: ['s390x'] },
    { syscalls: ['riscv_flush_icache'], onlyOn: ['riscv64'] },
    { syscalls: ['open_by_handle_at'], withCaps: ['CAP_DAC_READ_SEARCH'] },
    {
      why: 'mounts, namespaces, BPF, perf and the like are CAP_SYS_ADMIN\'s',
      syscalls: [
        'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie',
        'mount', 'mount_setattr', 'move_mount', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd',
        'setdomainname', 'sethostname', 'setns', 'syslog', 'umount', 'umount2', 'unshare',
      ],
      withCaps: ['CAP_SYS_ADMIN'],
    },
    {
      why: 'without CAP_SYS_ADMIN, clone may not make namespaces (flags are the first argument)',
      syscalls: ['clone'],
      args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 }],
      unlessCaps: ['CAP_SYS_ADMIN'],
      notOn: ['s390x'],
    },
    {
      why: 'on s390 the flags are clone\'s second argument',
      syscalls: ['clone'],
      args: [{ index: 1, op: 'SCMP_CMP_MASKED_EQ', value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 }],
      unlessCaps: ['CAP_SYS_ADMIN'],
      onlyOn: ['s390x'],
    },
    {
      why: 'clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes libc fall back to clone',
      syscalls: ['clone3'],
      action: 'SCMP_ACT_ERRNO',
      errno: ENOSYS,
      unlessCaps: ['CAP_SYS_ADMIN'],
    },
    { syscalls: ['reboot'], withCaps: ['CAP_SYS_BOOT'] },
    { syscalls: ['chroot'], withCaps: ['CAP_SYS_CHROOT'] },
    { syscalls: ['delete_module', 'init_module', 'finit_module'], withCaps: ['CAP_SYS_MODULE'] },
    { syscalls: ['acct'], withCaps: ['CAP_SYS_PACCT'] },
    { syscalls: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'], withCaps: ['CAP_SYS_PTRACE'] },
    { syscalls: ['iopl', 'ioperm'], withCaps: ['CAP_SYS_RAWIO'] },
    { syscalls: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'], withCaps: ['CAP_SYS_TIME'] },
    { syscalls: ['vhangup'], withCaps: ['CAP_SYS_TTY_CONFIG'] },
    { syscalls: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'], withCaps: ['CAP_SYS_NICE'] },
    { syscalls: ['syslog'], withCaps: ['CAP_SYSLOG'] },
    { syscalls: ['bpf'], withCaps: ['CAP_BPF'] },
    { syscalls: ['perf_event_open'], withCaps: ['CAP_PERFMON'] },
  ],
};
