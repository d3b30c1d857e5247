/*
 * skiff-ns: the namespace work that Node cannot do on its main thread (unshare and setns act on
 * the calling thread, and some of it needs a fork). Each subcommand is a short-lived process that
 * prints nothing on success; on failure it prints one line "skiff-ns: <step>: <strerror>" on stderr
 * and exits 1. A usage error exits 2.
 *
 *   skiff-ns netns-pin PATH
 *   skiff-ns netns-unpin PATH
 *   skiff-ns sandbox [--netns PATH | --new-netns PATH | --host-net] [--ipc | --host-ipc]
 *                    [--uts | --host-uts] [--pid | --host-pid] [--pin-ipc PATH] [--pin-uts PATH]
 *                    [--hostname NAME] [--cgroup-procs FILE]... [--pidfile FILE] [--pause PATH]
 *                    [--pause-log FILE] [--userns --uid-map C:H:N --gid-map C:H:N --pin-user PATH]
 *                    [--seccomp-bpf FILE]
 *   skiff-ns runtime [--hide-mount PATH]... -- ARGV...
 *   skiff-ns -v
 *
 * Like CRI-O's pinns it knows nothing of Kubernetes: skiffd decides, this only performs.
 */
#include "common.h"

#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define PROG "skiff-ns"
#define MAX_LIST 32 /* --cgroup-procs and --hide-mount: far more than any host has controllers */
#define MAX_STACKED 16 /* mounts stacked on one path that unpin/hide peel off */

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673 /* linux/magic.h, which musl does not ship */
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h */
#endif

static const char usage_text[] =
    "usage: skiff-ns netns-pin PATH\n"
    "       skiff-ns netns-unpin PATH\n"
    "       skiff-ns sandbox [--netns PATH|--new-netns PATH|--host-net] [--ipc|--host-ipc]\n"
    "                        [--uts|--host-uts] [--pid|--host-pid] [--pin-ipc PATH] [--pin-uts PATH]\n"
    "                        [--hostname NAME] [--cgroup-procs FILE]... [--pidfile FILE] [--pause PATH]\n"
    "                        [--pause-log FILE] [--userns --uid-map C:H:N --gid-map C:H:N --pin-user PATH]\n"
    "                        [--seccomp-bpf FILE]\n"
    "       skiff-ns runtime [--hide-mount PATH]... -- ARGV...\n"
    "       skiff-ns -v\n";

__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(PROG ": ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n", stderr);
  fputs(usage_text, stderr);
  return 2;
}

/* ---- netns-pin / netns-unpin ----------------------------------------------------------------- */

/* A new network namespace has only `lo`, and down: bring it up, as every pod expects. */
static int loopback_up(struct skiff_err *err) {
  cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return skiff_fail(err, errno, "socket in the new netns");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
    return skiff_fail(err, errno, "read flags of lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
    return skiff_fail(err, errno, "bring lo up");
  return 0;
}

/*
 * Bind-mounts this process's namespace of `kind` ("net", "ipc", "uts") on `path`, a file it
 * creates (an empty one a crash left is reused), so that the namespace outlives the process. The
 * bind mount is made in the caller's mount namespace. On failure nothing is left at `path`.
 */
static int pin_ns_of(pid_t pid, const char *kind, const char *path, struct skiff_err *err) {
  struct statfs sfs;
  if (statfs(path, &sfs) == 0 && sfs.f_type == NSFS_MAGIC)
    return skiff_fail(err, EEXIST, "pin netns on %s: already a namespace", path);

  bool created = false;
  cleanup_close int fd =
      SKIFF_RETRY(open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (fd >= 0) {
    created = true;
    if (fchmod(fd, 0444) < 0) { /* the umask applied to open's mode */
      skiff_fail(err, errno, "chmod %s", path);
      unlink(path);
      return -1;
    }
  } else if (errno == EEXIST) {
    struct stat st; /* an empty file left by a crash is fine; anything else is not ours */
    if (lstat(path, &st) < 0)
      return skiff_fail(err, errno, "stat %s", path);
    if (!S_ISREG(st.st_mode))
      return skiff_fail(err, EEXIST, "pin netns on %s: not a regular file", path);
  } else {
    return skiff_fail(err, errno, "create %s", path);
  }

  char self[48];
  if (pid > 0)
    snprintf(self, sizeof self, "/proc/%ld/ns/%s", (long)pid, kind);
  else
    snprintf(self, sizeof self, "/proc/self/ns/%s", kind);
  if (mount(self, path, NULL, MS_BIND, NULL) < 0) {
    skiff_fail(err, errno, "bind mount %s on %s", self, path);
    if (created)
      unlink(path);
    return -1;
  }
  return 0;
}

static int pin_ns(const char *kind, const char *path, struct skiff_err *err) {
  return pin_ns_of(0, kind, path, err);
}

/* Unshares this (short-lived) process into a new netns with `lo` up, and pins it on `path`. */
static int netns_pin(const char *path, struct skiff_err *err) {
  if (unshare(CLONE_NEWNET) < 0)
    return skiff_fail(err, errno, "unshare net");
  if (loopback_up(err) < 0)
    return -1;
  return pin_ns("net", path, err);
}

/* Unmounts every namespace pinned on `path`, then removes it. Idempotent. */
static int netns_unpin(const char *path, struct skiff_err *err) {
  for (int i = 0; i < MAX_STACKED; i++) {
    if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
      continue;
    if (errno == EINVAL || errno == ENOENT) /* not (or no longer) a mount point, or gone */
      break;
    return skiff_fail(err, errno, "unmount %s", path);
  }
  if (unlink(path) < 0 && errno != ENOENT)
    return skiff_fail(err, errno, "remove %s", path);
  return 0;
}

/* ---- sandbox --------------------------------------------------------------------------------- */

struct sandbox_opts {
  const char *netns; /* NULL: the caller's (host) netns */
  const char *new_netns; /* create a netns and pin it here */
  const char *pin_ipc, *pin_uts; /* pin the new ipc/uts namespaces here */
  int new_ipc, new_uts, new_pid; /* -1 unset, 0 host, 1 new */
  const char *hostname;
  const char *cgroup_procs[MAX_LIST];
  size_t n_cgroup_procs;
  const char *pidfile;
  const char *pause;
  const char *pause_log; /* pause's stderr; NULL: /dev/null */
  int pause_log_fd; /* pause_log opened before entering a user namespace; -1: open it in pause */
  int new_user; /* 1: a new user namespace (with uid_map, gid_map), pinned on pin_user */
  const char *uid_map, *gid_map; /* "C:H:N": one range each, as kubelet gives them */
  const char *pin_user;
  const char *seccomp_bpf; /* a BPF program (skiffd compiled it) loaded into pause before its exec */
  struct sock_fprog seccomp; /* read by the caller, while it can still read the file */
};

/* Marks every descriptor above stderr close-on-exec (the sync pipe must live until the exec). */
static int cloexec_from_3(struct skiff_err *err) {
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
    return 0;
  if (errno != ENOSYS && errno != EINVAL)
    return skiff_fail(err, errno, "close_range");
  /* Kernels before 5.11: walk the open descriptors by hand. */
  int max = (int)sysconf(_SC_OPEN_MAX);
  for (int fd = 3; fd < (max > 0 ? max : 1024); fd++)
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  return 0;
}

/* The pause process before its exec: its own cgroups, session, cwd, stdio, nothing else open. */
static int pause_child_setup(const struct sandbox_opts *o, struct skiff_err *err) {
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
    return skiff_fail(err, errno, "sigprocmask");

  /* The cgroups are pause's to join (after its exec, without us waiting): here they are only
   * checked, so that a wrong path still fails RunPodSandbox with its name. */
  for (size_t i = 0; i < o->n_cgroup_procs; i++)
    if (access(o->cgroup_procs[i], W_OK) < 0)
      return skiff_fail(err, errno, "open %s", o->cgroup_procs[i]);

  if (setsid() < 0)
    return skiff_fail(err, errno, "setsid");
  if (chdir("/") < 0) /* hold no directory of the caller's busy */
    return skiff_fail(err, errno, "chdir /");
  int null = SKIFF_RETRY(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null < 0)
    return skiff_fail(err, errno, "open /dev/null");
  for (int target = 0; target <= 2; target++) {
    int r = target == null ? fcntl(target, F_SETFD, 0) : SKIFF_RETRY(dup2(null, target));
    if (r < 0)
      return skiff_fail(err, errno, "redirect fd %d to /dev/null", target);
  }
  if (null > 2)
    close(null);
  if (o->pause_log != NULL) { /* where pause says why it gave up (a cgroup it could not join) */
    int log = o->pause_log_fd >= 0 ? o->pause_log_fd
                                   : SKIFF_RETRY(open(o->pause_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (log < 0)
      return skiff_fail(err, errno, "open %s", o->pause_log);
    if (SKIFF_RETRY(dup2(log, 2)) < 0)
      return skiff_fail(err, errno, "redirect fd 2 to %s", o->pause_log);
    close(log);
  }
  if (cloexec_from_3(err) < 0)
    return -1;
  if (prctl(PR_SET_PDEATHSIG, 0) < 0)
    return skiff_fail(err, errno, "prctl PR_SET_PDEATHSIG");
  /* Last: from here on the filter judges every call, the exec of pause included. no_new_privs as
   * runtimes set it for a filtered process. */
  if (o->seccomp.len > 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
      return skiff_fail(err, errno, "prctl PR_SET_NO_NEW_PRIVS");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &o->seccomp) < 0)
      return skiff_fail(err, errno, "load the seccomp filter of %s", o->seccomp_bpf);
  }
  return 0;
}

/* Reads the BPF program of --seccomp-bpf: whole sock_filter entries, at most BPF_MAXINSNS. */
static int read_seccomp(struct sandbox_opts *o, struct skiff_err *err) {
  int fd = SKIFF_RETRY(open(o->seccomp_bpf, O_RDONLY | O_CLOEXEC));
  if (fd < 0)
    return skiff_fail(err, errno, "open %s", o->seccomp_bpf);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return skiff_fail(err, e, "stat %s", o->seccomp_bpf);
  }
  size_t n = (size_t)st.st_size;
  if (n == 0 || n % sizeof(struct sock_filter) != 0 || n / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    close(fd);
    return skiff_fail(err, 0, "%s: %zu bytes is not a BPF program of 1 to %d instructions", o->seccomp_bpf, n, BPF_MAXINSNS);
  }
  struct sock_filter *prog = malloc(n);
  if (prog == NULL) {
    close(fd);
    return skiff_fail(err, ENOMEM, "read %s", o->seccomp_bpf);
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = SKIFF_RETRY(read(fd, (char *)prog + got, n - got));
    if (r <= 0) {
      int e = r < 0 ? errno : EIO;
      free(prog);
      close(fd);
      return skiff_fail(err, e, "read %s", o->seccomp_bpf);
    }
    got += (size_t)r;
  }
  close(fd);
  o->seccomp.len = (unsigned short)(n / sizeof(struct sock_filter));
  o->seccomp.filter = prog;
  return 0;
}

/* Never returns: execs skiff-pause, or sends the failed step up the sync pipe and exits. */
__attribute__((noreturn)) static void pause_child(const struct sandbox_opts *o, int sync_fd) {
  struct skiff_err err = {0};
  if (pause_child_setup(o, &err) == 0) {
    char *argv[2 + 2 * MAX_LIST] = {"skiff-pause"};
    size_t n = 1;
    for (size_t i = 0; i < o->n_cgroup_procs; i++) {
      argv[n++] = "--cgroup-procs";
      argv[n++] = (char *)o->cgroup_procs[i];
    }
    argv[n] = NULL;
    char *const envp[] = {NULL}; /* it reads none, and each byte of it would stay resident */
    execve(o->pause, argv, envp);
    skiff_fail(&err, errno, "exec %s", o->pause);
  }
  write_all(sync_fd, &err, sizeof err);
  _exit(127);
}

static int start_pause(const struct sandbox_opts *o, pid_t *out, struct skiff_err *err);
static int write_pidfile(const struct sandbox_opts *o, pid_t pid, struct skiff_err *err);

/*
 * Joins/creates the namespaces in this process (which exits right after), then forks the pause
 * process: with a new pid namespace it is that namespace's PID 1. We wait for its exec through a
 * CLOEXEC pipe (EOF: exec done; a struct skiff_err: the step that failed), then write its pid and
 * exit, so the pause process is re-parented and never the caller's child.
 */
static int sandbox_start(const struct sandbox_opts *o, struct skiff_err *err) {
  if (o->new_netns != NULL && netns_pin(o->new_netns, err) < 0)
    return -1;
  if (o->netns != NULL) {
    cleanup_close int fd = SKIFF_RETRY(open(o->netns, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
      return skiff_fail(err, errno, "open netns %s", o->netns);
    if (setns(fd, CLONE_NEWNET) < 0)
      return skiff_fail(err, errno, "setns net %s", o->netns);
  }
  int flags = (o->new_ipc == 1 ? CLONE_NEWIPC : 0) | (o->new_uts == 1 ? CLONE_NEWUTS : 0) |
              (o->new_pid == 1 ? CLONE_NEWPID : 0);
  if (flags != 0 && unshare(flags) < 0)
    return skiff_fail(err, errno, "unshare%s%s%s", (flags & CLONE_NEWIPC) ? " ipc" : "",
                      (flags & CLONE_NEWUTS) ? " uts" : "", (flags & CLONE_NEWPID) ? " pid" : "");
  if (o->hostname != NULL && sethostname(o->hostname, strlen(o->hostname)) < 0)
    return skiff_fail(err, errno, "sethostname %s", o->hostname);
  if (o->pin_ipc != NULL && pin_ns("ipc", o->pin_ipc, err) < 0)
    return -1;
  if (o->pin_uts != NULL && pin_ns("uts", o->pin_uts, err) < 0)
    return -1;
  pid_t pid;
  if (start_pause(o, &pid, err) < 0)
    return -1;
  return write_pidfile(o, pid, err);
}

/* Forks pause and waits for its exec through a CLOEXEC pipe; its pid goes in `*out`. */
static int start_pause(const struct sandbox_opts *o, pid_t *out, struct skiff_err *err) {
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) < 0)
    return skiff_fail(err, errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) {
    close(sync[0]);
    close(sync[1]);
    return skiff_fail(err, errno, "fork");
  }
  if (pid == 0) {
    close(sync[0]);
    pause_child(o, sync[1]);
  }
  close(sync[1]);

  struct skiff_err child_err;
  ssize_t n = read_all(sync[0], &child_err, sizeof child_err);
  int read_errno = errno;
  close(sync[0]);
  if (n == 0 && SKIFF_RETRY(waitpid(pid, NULL, WNOHANG)) == pid)
    return skiff_fail(err, ECHILD, "start %s: exited at once", o->pause);
  if (n != 0) {
    SKIFF_RETRY(waitpid(pid, NULL, 0));
    if (n < 0)
      return skiff_fail(err, read_errno, "read sync pipe");
    if (n != (ssize_t)sizeof child_err)
      return skiff_fail(err, EPROTO, "read sync pipe: %zd bytes", n);
    child_err.msg[sizeof child_err.msg - 1] = '\0';
    *err = child_err;
    return -1;
  }
  *out = pid;
  return 0;
}

/* Writes pause's pid for skiffd; on failure kills it: nobody would know its pid. */
static int write_pidfile(const struct sandbox_opts *o, pid_t pid, struct skiff_err *err) {
  if (o->pidfile != NULL) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld\n", (long)pid);
    if (write_file_atomic(o->pidfile, buf, (size_t)len, 0644, err) < 0) {
      kill(pid, SIGKILL); /* nobody would know its pid: do not leave it running */
      SKIFF_RETRY(waitpid(pid, NULL, 0));
      return -1;
    }
  }
  return 0;
}

/* ---- sandbox in a new user namespace ------------------------------------------------------ */

/*
 * A user namespace with mappings cannot be made by one process alone: its maps must be written
 * by a process with CAP_SETUID/CAP_SETGID in the parent namespace, and pinning (a bind mount in
 * the host's mount namespace) needs the host's CAP_SYS_ADMIN, which a process loses on entering
 * the new namespace. So a helper child enters it while this process, still root of the host,
 * writes the maps and pins the namespaces by /proc/<helper>/ns/<kind>. Steps, each acknowledged:
 *   helper: join the pod cgroups (pause, inside, could not), open pause's log, unshare user → 1
 *   here:   write uid_map and gid_map, pin user                                            → go
 *   helper: become root of it, new net (lo up)/ipc/uts/pid, hostname                       → 2
 *   here:   pin net, ipc, uts (owned by the new user namespace, so its root may use them)  → go
 *   helper: fork and exec pause (PID 1 of the new pid namespace)                           → 3 + pid
 */
struct userns_msg {
  int stage; /* 1, 2, 3 as above; -1: failed, err says where */
  pid_t pid;
  struct skiff_err err;
};

static int write_id_map(pid_t pid, const char *file, const char *spec, struct skiff_err *err) {
  unsigned long c, h, n;
  char tail;
  if (sscanf(spec, "%lu:%lu:%lu%c", &c, &h, &n, &tail) != 3 || n == 0)
    return skiff_fail(err, EINVAL, "%s \"%s\": want CONTAINER:HOST:LENGTH", file, spec);
  char path[64], line[80];
  snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file);
  int len = snprintf(line, sizeof line, "%lu %lu %lu\n", c, h, n);
  cleanup_close int fd = SKIFF_RETRY(open(path, O_WRONLY | O_CLOEXEC));
  if (fd < 0)
    return skiff_fail(err, errno, "open %s", path);
  if (SKIFF_RETRY(write(fd, line, (size_t)len)) != len) /* one write(2): the kernel takes no more */
    return skiff_fail(err, errno, "write %s (%s)", path, spec);
  return 0;
}

static void helper_send(int fd, struct userns_msg *m) {
  write_all(fd, m, sizeof *m);
}

/* The helper child. Never returns. */
__attribute__((noreturn)) static void userns_helper(struct sandbox_opts *o, int tx, int rx) {
  struct userns_msg m = {0};
  struct skiff_err *err = &m.err;
  char go;
  for (size_t i = 0; i < o->n_cgroup_procs; i++) {
    cleanup_close int fd = SKIFF_RETRY(open(o->cgroup_procs[i], O_WRONLY | O_CLOEXEC));
    if (fd < 0 || SKIFF_RETRY(write(fd, "0\n", 2)) != 2) {
      skiff_fail(err, errno, "join %s", o->cgroup_procs[i]);
      goto fail;
    }
  }
  o->n_cgroup_procs = 0; /* joined: pause inherits them */
  if (o->pause_log != NULL) {
    o->pause_log_fd = SKIFF_RETRY(open(o->pause_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (o->pause_log_fd < 0) {
      skiff_fail(err, errno, "open %s", o->pause_log);
      goto fail;
    }
  }
  if (unshare(CLONE_NEWUSER) < 0) {
    skiff_fail(err, errno, "unshare user");
    goto fail;
  }
  m.stage = 1;
  helper_send(tx, &m);
  if (read_all(rx, &go, 1) != 1)
    _exit(1); /* the parent failed and says why itself */
  if (setresgid(0, 0, 0) < 0 || setgroups(0, NULL) < 0 || setresuid(0, 0, 0) < 0) {
    skiff_fail(err, errno, "become root of the new user namespace");
    goto fail;
  }
  if (o->new_netns != NULL) {
    if (unshare(CLONE_NEWNET) < 0) {
      skiff_fail(err, errno, "unshare net");
      goto fail;
    }
    if (loopback_up(err) < 0)
      goto fail;
  }
  int flags = (o->new_ipc == 1 ? CLONE_NEWIPC : 0) | (o->new_uts == 1 ? CLONE_NEWUTS : 0) |
              (o->new_pid == 1 ? CLONE_NEWPID : 0);
  if (flags != 0 && unshare(flags) < 0) {
    skiff_fail(err, errno, "unshare ipc/uts/pid in the user namespace");
    goto fail;
  }
  if (o->hostname != NULL && sethostname(o->hostname, strlen(o->hostname)) < 0) {
    skiff_fail(err, errno, "sethostname %s", o->hostname);
    goto fail;
  }
  m.stage = 2;
  helper_send(tx, &m);
  if (read_all(rx, &go, 1) != 1)
    _exit(1);
  if (start_pause(o, &m.pid, err) < 0)
    goto fail;
  m.stage = 3;
  helper_send(tx, &m);
  _exit(0);
fail:
  m.stage = -1;
  helper_send(tx, &m);
  _exit(1);
}

/* Waits for the helper's next step; its failure becomes ours. */
static int helper_recv(int fd, int want, struct userns_msg *m, struct skiff_err *err) {
  ssize_t n = read_all(fd, m, sizeof *m);
  if (n < 0)
    return skiff_fail(err, errno, "read from the user namespace helper");
  if (n == 0)
    return skiff_fail(err, ECHILD, "user namespace helper exited at step %d", want);
  if (n != (ssize_t)sizeof *m)
    return skiff_fail(err, EPROTO, "user namespace helper: %zd bytes", n);
  if (m->stage == -1) {
    m->err.msg[sizeof m->err.msg - 1] = '\0';
    *err = m->err;
    return -1;
  }
  if (m->stage != want)
    return skiff_fail(err, EPROTO, "user namespace helper: step %d, want %d", m->stage, want);
  return 0;
}

static int sandbox_start_userns(struct sandbox_opts *o, struct skiff_err *err) {
  int to_h[2], from_h[2];
  if (pipe2(to_h, O_CLOEXEC) < 0)
    return skiff_fail(err, errno, "pipe");
  if (pipe2(from_h, O_CLOEXEC) < 0) {
    close(to_h[0]);
    close(to_h[1]);
    return skiff_fail(err, errno, "pipe");
  }
  pid_t h = fork();
  if (h < 0) {
    close(to_h[0]), close(to_h[1]), close(from_h[0]), close(from_h[1]);
    return skiff_fail(err, errno, "fork");
  }
  if (h == 0) {
    close(to_h[1]);
    close(from_h[0]);
    userns_helper(o, from_h[1], to_h[0]);
  }
  close(to_h[0]);
  close(from_h[1]);
  int rc = -1;
  struct userns_msg m;
  if (helper_recv(from_h[0], 1, &m, err) < 0)
    goto out;
  if (write_id_map(h, "uid_map", o->uid_map, err) < 0 || write_id_map(h, "gid_map", o->gid_map, err) < 0 ||
      pin_ns_of(h, "user", o->pin_user, err) < 0)
    goto out;
  if (write_all(to_h[1], "g", 1) < 0) {
    skiff_fail(err, errno, "write to the user namespace helper");
    goto out;
  }
  if (helper_recv(from_h[0], 2, &m, err) < 0)
    goto out;
  if ((o->new_netns != NULL && pin_ns_of(h, "net", o->new_netns, err) < 0) ||
      (o->pin_ipc != NULL && pin_ns_of(h, "ipc", o->pin_ipc, err) < 0) ||
      (o->pin_uts != NULL && pin_ns_of(h, "uts", o->pin_uts, err) < 0))
    goto out;
  if (write_all(to_h[1], "g", 1) < 0) {
    skiff_fail(err, errno, "write to the user namespace helper");
    goto out;
  }
  if (helper_recv(from_h[0], 3, &m, err) < 0)
    goto out;
  rc = write_pidfile(o, m.pid, err);
out:
  close(to_h[1]); /* a helper waiting for "go" reads EOF and exits */
  close(from_h[0]);
  if (rc < 0)
    kill(h, SIGKILL);
  SKIFF_RETRY(waitpid(h, NULL, 0));
  return rc;
}

/* skiff-pause beside this binary, as native/build/ holds both. */
static int default_pause_path(char *buf, size_t size, struct skiff_err *err) {
  ssize_t n = readlink("/proc/self/exe", buf, size - 1);
  if (n < 0)
    return skiff_fail(err, errno, "readlink /proc/self/exe");
  buf[n] = '\0';
  char *slash = strrchr(buf, '/');
  size_t dirlen = slash ? (size_t)(slash - buf) : 0;
  if (dirlen + sizeof "/skiff-pause" > size)
    return skiff_fail(err, ENAMETOOLONG, "path of skiff-pause");
  memcpy(buf + dirlen, "/skiff-pause", sizeof "/skiff-pause");
  return 0;
}

/* Sets a new/host switch, refusing the contradiction "--ipc --host-ipc". */
static bool set_mode(int *mode, int value) {
  if (*mode != -1 && *mode != value)
    return false;
  *mode = value;
  return true;
}

static int cmd_sandbox(int argc, char **argv) {
  struct sandbox_opts o = {.new_ipc = -1, .new_uts = -1, .new_pid = -1, .pause_log_fd = -1};
  int new_net = -1;
  char pause_buf[PATH_MAX];
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    bool ok = true;
    if (strcmp(a, "--host-net") == 0) {
      ok = set_mode(&new_net, 0);
    } else if (strcmp(a, "--ipc") == 0 || strcmp(a, "--host-ipc") == 0) {
      ok = set_mode(&o.new_ipc, a[2] != 'h');
    } else if (strcmp(a, "--uts") == 0 || strcmp(a, "--host-uts") == 0) {
      ok = set_mode(&o.new_uts, a[2] != 'h');
    } else if (strcmp(a, "--pid") == 0 || strcmp(a, "--host-pid") == 0) {
      ok = set_mode(&o.new_pid, a[2] != 'h');
    } else if (strcmp(a, "--userns") == 0) {
      o.new_user = 1;
    } else if (strcmp(a, "--netns") == 0 || strcmp(a, "--new-netns") == 0 ||
               strcmp(a, "--pin-ipc") == 0 || strcmp(a, "--pin-uts") == 0 ||
               strcmp(a, "--hostname") == 0 || strcmp(a, "--cgroup-procs") == 0 ||
               strcmp(a, "--pidfile") == 0 || strcmp(a, "--pause") == 0 ||
               strcmp(a, "--pause-log") == 0 || strcmp(a, "--uid-map") == 0 ||
               strcmp(a, "--gid-map") == 0 || strcmp(a, "--pin-user") == 0 ||
               strcmp(a, "--seccomp-bpf") == 0) {
      if (val == NULL || val[0] == '\0')
        return usage("%s needs a value", a);
      i++;
      if (strcmp(a, "--netns") == 0 || strcmp(a, "--new-netns") == 0) {
        ok = set_mode(&new_net, 1) && o.netns == NULL && o.new_netns == NULL;
        if (strcmp(a, "--netns") == 0)
          o.netns = val;
        else
          o.new_netns = val;
      } else if (strcmp(a, "--pin-ipc") == 0) {
        o.pin_ipc = val;
      } else if (strcmp(a, "--pin-uts") == 0) {
        o.pin_uts = val;
      } else if (strcmp(a, "--hostname") == 0) {
        o.hostname = val;
      } else if (strcmp(a, "--cgroup-procs") == 0) {
        if (o.n_cgroup_procs == MAX_LIST)
          return usage("more than %d --cgroup-procs", MAX_LIST);
        o.cgroup_procs[o.n_cgroup_procs++] = val;
      } else if (strcmp(a, "--pidfile") == 0) {
        o.pidfile = val;
      } else if (strcmp(a, "--pause-log") == 0) {
        o.pause_log = val;
      } else if (strcmp(a, "--uid-map") == 0) {
        o.uid_map = val;
      } else if (strcmp(a, "--gid-map") == 0) {
        o.gid_map = val;
      } else if (strcmp(a, "--pin-user") == 0) {
        o.pin_user = val;
      } else if (strcmp(a, "--seccomp-bpf") == 0) {
        o.seccomp_bpf = val;
      } else {
        o.pause = val;
      }
    } else {
      return usage("sandbox: unknown argument %s", a);
    }
    if (!ok)
      return usage("sandbox: %s contradicts an earlier option", a);
  }
  if (o.hostname != NULL && o.new_uts != 1)
    return usage("sandbox: --hostname needs --uts (it would rename the host)");
  if (o.pin_ipc != NULL && o.new_ipc != 1)
    return usage("sandbox: --pin-ipc needs --ipc (it would pin the host's)");
  if (o.pin_uts != NULL && o.new_uts != 1)
    return usage("sandbox: --pin-uts needs --uts (it would pin the host's)");
  if (o.new_user && (o.uid_map == NULL || o.gid_map == NULL || o.pin_user == NULL))
    return usage("sandbox: --userns needs --uid-map, --gid-map and --pin-user");
  if (!o.new_user && (o.uid_map != NULL || o.gid_map != NULL || o.pin_user != NULL))
    return usage("sandbox: --uid-map, --gid-map and --pin-user need --userns");
  /* Its namespaces must be owned by the new user namespace: the host's, or a netns made before,
   * would give the pod's root nothing to administer. */
  if (o.new_user && (o.netns != NULL || o.new_ipc != 1 || o.new_uts != 1 || o.new_pid != 1))
    return usage("sandbox: --userns needs --ipc, --uts, --pid and --new-netns or --host-net");

  struct skiff_err err = {0};
  if (o.pause == NULL) {
    if (default_pause_path(pause_buf, sizeof pause_buf, &err) < 0)
      goto fail;
    o.pause = pause_buf;
  }
  /* Read now, as host root: in a user namespace the pause child could not open it. */
  if (o.seccomp_bpf != NULL && read_seccomp(&o, &err) < 0)
    goto fail;
  if ((o.new_user ? sandbox_start_userns(&o, &err) : sandbox_start(&o, &err)) < 0) {
    /* Leave nothing behind: the pins this run made (each on a path skiffd gave for this pod). */
    struct skiff_err ignored = {0};
    const char *pins[] = {o.new_netns, o.pin_ipc, o.pin_uts, o.pin_user};
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++)
      if (pins[i] != NULL)
        netns_unpin(pins[i], &ignored);
    goto fail;
  }
  return 0;
fail:
  skiff_err_print(PROG, &err);
  return 1;
}

/* ---- runtime --------------------------------------------------------------------------------- */

/* /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo: undo it in place. */
static void unescape_octal(char *s) {
  char *out = s;
  for (; *s; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
        s[3] <= '7') {
      *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *out++ = *s;
    }
  }
  *out = '\0';
}

/*
 * Finds the topmost mount on `path` (the last one listed) and the mount point of its parent mount.
 * Returns 1 when found, 0 when `path` is not a mount point, -1 on error.
 */
static int find_mount(const char *path, char *parent, size_t parent_size, struct skiff_err *err) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL)
    return skiff_fail(err, errno, "open /proc/self/mountinfo");
  cleanup_free char *line = NULL;
  size_t cap = 0;
  long parent_id = -1;
  for (int pass = 0; pass < 2; pass++) {
    rewind(f);
    while (getline(&line, &cap, f) > 0) {
      long id, pid;
      int off = 0;
      /* "36 25 0:32 / /sys/fs/cgroup/memory rw,... - cgroup cgroup rw,memory" */
      if (sscanf(line, "%ld %ld %*s %*s %n", &id, &pid, &off) < 2 || off == 0)
        continue;
      char *mp = line + off;
      mp[strcspn(mp, " \n")] = '\0';
      unescape_octal(mp);
      if (pass == 0 && strcmp(mp, path) == 0) {
        parent_id = pid;
      } else if (pass == 1 && id == parent_id) {
        snprintf(parent, parent_size, "%s", mp);
        fclose(f);
        return 1;
      }
    }
    if (parent_id == -1)
      break;
  }
  fclose(f);
  return 0;
}

/*
 * Unmounts `path` in this process's private mount namespace without touching the host. A copy of
 * a shared mount stays in its peer group after unshare, and an unmount propagates through the
 * peer group of the unmounted mount's *parent*: so the parent is made private first, and the
 * mount's own subtree too. Only those two stop propagating; every other mount keeps the host's
 * propagation, so containers' rshared/rslave bind mounts behave as they would without skiff-ns.
 */
static int hide_mount(const char *path, struct skiff_err *err) {
  char real[PATH_MAX], parent[PATH_MAX];
  if (realpath(path, real) == NULL) {
    if (errno == ENOENT)
      return 0;
    return skiff_fail(err, errno, "resolve %s", path);
  }
  for (int i = 0; i < MAX_STACKED; i++) {
    int found = find_mount(real, parent, sizeof parent, err);
    if (found <= 0)
      return found;
    if (mount(NULL, parent, NULL, MS_PRIVATE, NULL) < 0)
      return skiff_fail(err, errno, "make %s private", parent);
    if (mount(NULL, real, NULL, MS_REC | MS_PRIVATE, NULL) < 0)
      return skiff_fail(err, errno, "make %s private", real);
    if (umount2(real, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
      if (errno == EINVAL || errno == ENOENT)
        return 0;
      return skiff_fail(err, errno, "unmount %s", real);
    }
  }
  return skiff_fail(err, ELOOP, "unmount %s: more than %d mounts stacked", real, MAX_STACKED);
}

static int cmd_runtime(int argc, char **argv) {
  const char *hide[MAX_LIST];
  size_t n_hide = 0;
  int i = 0;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--hide-mount") != 0)
      return usage("runtime: unknown argument %s", argv[i]);
    if (i + 1 >= argc || argv[i + 1][0] != '/')
      return usage("runtime: --hide-mount needs an absolute path");
    if (n_hide == MAX_LIST)
      return usage("runtime: more than %d --hide-mount", MAX_LIST);
    hide[n_hide++] = argv[++i];
  }
  if (i >= argc - 1)
    return usage("runtime: no command after --");
  char **cmd = argv + i + 1;

  struct skiff_err err = {0};
  if (unshare(CLONE_NEWNS) < 0) {
    skiff_fail(&err, errno, "unshare mount");
    goto fail;
  }
  for (size_t h = 0; h < n_hide; h++)
    if (hide_mount(hide[h], &err) < 0)
      goto fail;
  execvp(cmd[0], cmd);
  skiff_fail(&err, errno, "exec %s", cmd[0]);
fail:
  skiff_err_print(PROG, &err);
  return 1;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int cmd_path(int argc, char **argv, int (*fn)(const char *, struct skiff_err *)) {
  if (argc != 2 || argv[1][0] == '\0')
    return usage("%s needs exactly one PATH", argv[0]);
  struct skiff_err err = {0};
  if (fn(argv[1], &err) < 0) {
    skiff_err_print(PROG, &err);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage("no subcommand");
  const char *cmd = argv[1];
  if (strcmp(cmd, "-v") == 0) {
    printf("skiff-ns %s\n", SKIFF_VERSION);
    return 0;
  }
  if (strcmp(cmd, "netns-pin") == 0)
    return cmd_path(argc - 1, argv + 1, netns_pin);
  if (strcmp(cmd, "netns-unpin") == 0)
    return cmd_path(argc - 1, argv + 1, netns_unpin);
  if (strcmp(cmd, "sandbox") == 0)
    return cmd_sandbox(argc - 2, argv + 2);
  if (strcmp(cmd, "runtime") == 0)
    return cmd_runtime(argc - 2, argv + 2);
  return usage("unknown subcommand %s", cmd);
}
