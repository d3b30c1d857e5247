/*
 * skiff-monitor: one per container, the conmon / containerd-shim role. It runs the OCI runtime's
 * `create` with pipes (or a pty) as the container's stdio, becomes the container's parent (child
 * subreaper), writes the CRI log file, serves a small control socket (and the exec and attach
 * sessions started on it), and records the exit status in an exit file. It outlives skiffd and
 * knows nothing of Kubernetes. The whole protocol is in monitor-protocol.h. One thread, one epoll
 * loop, no buffer larger than a log line (an attach client's backlog aside, only while it lasts).
 * This file: arguments, startup, `runtime create`, the container's exit and the main loop.
 */
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "monitor.h"

extern char **environ;

struct monitor M = {
    .o = {.sync_fd = -1, .max_line = SKIFF_MON_DEFAULT_LOG_MAX_LINE},
    .epfd = -1,
    .sigfd = -1,
    .ctl_fd = -1,
    .console_fd = -1,
    .log_fd = -1,
    .stdin_w = -1,
    .pidfd = -1,
    .out = {.fd = -1, .tag = EV_STDOUT, .name = SKIFF_MON_STREAM_STDOUT},
    .err = {.fd = -1, .tag = EV_STDERR, .name = SKIFF_MON_STREAM_STDERR},
};

/* ---- Diagnostics (to our stderr, which skiffd points at a file or /dev/null) ----------------- */

void note(const char *fmt, ...) {
  char line[512];
  int n = snprintf(line, sizeof line, PROG "[%s]: ", M.o.id ? M.o.id : "?");
  if (n < 0 || (size_t)n >= sizeof line)
    return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (k < 0)
    return;
  size_t len = (size_t)n +
               ((size_t)k < sizeof line - (size_t)n - 1 ? (size_t)k : sizeof line - (size_t)n - 2);
  line[len++] = '\n';
  (void)!write_all(STDERR_FILENO, line, len); /* best effort: nobody may be reading */
}

void note_err(const struct skiff_err *err) {
  if (err->errno_)
    note("%s: %s", err->msg, strerror(err->errno_));
  else
    note("%s", err->msg);
}

/* ---- Time ------------------------------------------------------------------------------------ */

int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Exit status ----------------------------------------------------------------------------- */

/* The "oom_kill N" counter of --oom-file (see monitor-protocol.h); 0 when there is none. */
static uint64_t read_oom_kills(void) {
  if (!M.o.oom_file)
    return 0;
  char buf[1024];
  cleanup_close int fd = SKIFF_RETRY(open(M.o.oom_file, O_RDONLY | O_CLOEXEC));
  ssize_t n = fd < 0 ? -1 : read_all(fd, buf, sizeof buf - 1);
  if (n < 0) {
    if (errno != ENOENT)
      note("read %s: %s", M.o.oom_file, strerror(errno));
    return 0;
  }
  buf[n] = '\0';
  static const char key[] = SKIFF_MON_OOM_KILL_KEY " ";
  for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (strncmp(line, key, sizeof key - 1) == 0)
      return strtoull(line + sizeof key - 1, NULL, 10);
  }
  return 0;
}

static void set_exited(int wstatus, bool known) {
  M.exited = true;
  clock_gettime(CLOCK_REALTIME, &M.exited_at);
  /* Read now: the cgroup goes away with `runtime delete`, which may come soon after. */
  M.oom_killed = read_oom_kills() > M.oom_kills_at_start;
  if (!known) {
    M.exit_code = 255;
    M.exit_signal = 0;
  } else if (WIFSIGNALED(wstatus)) {
    M.exit_signal = WTERMSIG(wstatus);
    M.exit_code = SKIFF_MON_EXIT_SIGNAL_BASE + M.exit_signal;
  } else {
    M.exit_code = WEXITSTATUS(wstatus);
    M.exit_signal = 0;
  }
  M.drain_deadline_ms = mono_ms() + SKIFF_MON_DRAIN_MS;
  exec_kill_all(); /* the sessions end with the container: their exit frames come before the file */
  if (M.pidfd >= 0) {
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, M.pidfd, NULL);
    close(M.pidfd);
    M.pidfd = -1;
  }
}

/* Reaps every child that has exited: the container, the exec sessions' runtime processes, and
 * whatever else was reparented to us. The container's pid cannot be a session's: both are our
 * unreaped children when they are compared, so the kernel has not reused either. */
static void reap(void) {
  for (;;) {
    int st;
    pid_t p = SKIFF_RETRY(waitpid(-1, &st, WNOHANG));
    if (p <= 0)
      return;
    if (p == M.container && !M.exited)
      set_exited(st, true);
    else
      exec_reaped(p, st);
  }
}

static void drain_signalfd(void) {
  struct signalfd_siginfo si[4];
  while (SKIFF_RETRY(read(M.sigfd, si, sizeof si)) > 0) {
  }
}

/* The pidfd says the container is gone. Normally it is our child and reap() has its status; a
 * container that is not (a runtime that did not fork it under us) still ends the monitor, with
 * status unknown (255) rather than a monitor waiting for ever. */
static void pidfd_ready(void) {
  reap();
  if (M.exited)
    return;
  siginfo_t si = {0};
  if (SKIFF_RETRY(waitid(P_PID, (id_t)M.container, &si, WEXITED | WNOHANG | WNOWAIT)) < 0 &&
      errno == ECHILD) {
    note("container pid %d is not a child of the monitor: exit status unknown", (int)M.container);
    set_exited(0, false);
  }
  /* Else it is our child and SIGCHLD follows; stop watching the pidfd so it cannot spin. */
  if (M.pidfd >= 0) {
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, M.pidfd, NULL);
    close(M.pidfd);
    M.pidfd = -1;
  }
}

size_t format_exit(char *buf, size_t size) {
  char at[TS_LEN + 1];
  format_time(at, &M.exited_at);
  int n = snprintf(buf, size,
                   "\"" SKIFF_MON_EXIT_CODE "\":%d,\"" SKIFF_MON_EXIT_SIGNAL
                   "\":%d,\"" SKIFF_MON_EXIT_AT "\":\"%s\",\"" SKIFF_MON_EXIT_AT_NS
                   "\":\"%lld\",\"" SKIFF_MON_EXIT_OOM_KILLED "\":%s",
                   M.exit_code, M.exit_signal, at,
                   (long long)M.exited_at.tv_sec * 1000000000LL + M.exited_at.tv_nsec,
                   M.oom_killed ? "true" : "false");
  return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* ---- Console socket: the runtime sends the pty master with SCM_RIGHTS ------------------------ */

int console_receive(int listen_fd) {
  cleanup_close int fd = SKIFF_RETRY(accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC));
  if (fd < 0)
    return -1;
  struct timeval tv = {.tv_sec = 5}; /* the runtime sends at once; never hang on a stray client */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char name[256]; /* the pty's name, unused; a longer one is just truncated */
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int) * 4)];
  } ctrl;
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
  struct msghdr msg = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf};
  if (SKIFF_RETRY(recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0) {
    note("receive console: %s", strerror(errno));
    return -1;
  }
  int master = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t k = 0; k < nfds; k++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof got);
      if (master < 0)
        master = got;
      else
        close(got);
    }
  }
  if (master < 0)
    note("console socket: a message without a descriptor");
  return master;
}

/* ---- Startup --------------------------------------------------------------------------------- */

static void usage_fail(const char *msg) {
  if (M.o.sync_fd >= 0 && fcntl(M.o.sync_fd, F_GETFD) >= 0) { /* skiffd waits on it: say why */
    char esc[256], line[320];
    json_escape(esc, sizeof esc, msg, strlen(msg));
    int n = snprintf(line, sizeof line, "{\"" SKIFF_MON_SYNC_ERROR "\":\"usage: %s\"}\n", esc);
    (void)!write_all(M.o.sync_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  }
  fprintf(stderr,
          PROG ": %s\nusage: " PROG " " SKIFF_MON_FLAG_ID " ID " SKIFF_MON_FLAG_LOG
               " PATH " SKIFF_MON_FLAG_EXIT_FILE " PATH " SKIFF_MON_FLAG_PID_FILE
               " PATH " SKIFF_MON_FLAG_CTL " PATH " SKIFF_MON_FLAG_SYNC_FD " N\n"
               "       [" SKIFF_MON_FLAG_TTY "] [" SKIFF_MON_FLAG_STDIN
               "] [" SKIFF_MON_FLAG_STDIN_ONCE "] [" SKIFF_MON_FLAG_LOG_MAX_LINE
               " BYTES] [" SKIFF_MON_FLAG_OOM_FILE " PATH]\n"
               "       " SKIFF_MON_FLAG_END " RUNTIME_ARGV...\n",
          msg);
  exit(2);
}

bool parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  if (!s || *s < '0' || *s > '9')
    return false;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v > max)
    return false;
  *out = v;
  return true;
}

static void parse_args(int argc, char **argv) {
  struct opts *o = &M.o;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long n;
    if (strcmp(a, SKIFF_MON_FLAG_END) == 0) {
      i++;
      break;
    }
    if (strcmp(a, SKIFF_MON_FLAG_TTY) == 0)
      o->tty = true;
    else if (strcmp(a, SKIFF_MON_FLAG_STDIN) == 0)
      o->stdin_open = true;
    else if (strcmp(a, SKIFF_MON_FLAG_STDIN_ONCE) == 0)
      o->stdin_once = true;
    else if (!v)
      usage_fail(a[0] == '-' ? "a flag is missing its value" : "unexpected argument");
    else if (strcmp(a, SKIFF_MON_FLAG_ID) == 0)
      o->id = v, i++;
    else if (strcmp(a, SKIFF_MON_FLAG_LOG) == 0)
      o->log = v, i++;
    else if (strcmp(a, SKIFF_MON_FLAG_EXIT_FILE) == 0)
      o->exit_file = v, i++;
    else if (strcmp(a, SKIFF_MON_FLAG_PID_FILE) == 0)
      o->pid_file = v, i++;
    else if (strcmp(a, SKIFF_MON_FLAG_CTL) == 0)
      o->ctl = v, i++;
    else if (strcmp(a, SKIFF_MON_FLAG_OOM_FILE) == 0)
      o->oom_file = v, i++;
    else if (strcmp(a, SKIFF_MON_FLAG_SYNC_FD) == 0) {
      if (!parse_uint(v, INT_MAX, &n) || n < 3)
        usage_fail(SKIFF_MON_FLAG_SYNC_FD " must be a descriptor number >= 3");
      o->sync_fd = (int)n, i++;
    } else if (strcmp(a, SKIFF_MON_FLAG_LOG_MAX_LINE) == 0) {
      if (!parse_uint(v, SKIFF_MON_MAX_LOG_MAX_LINE, &n) || n < SKIFF_MON_MIN_LOG_MAX_LINE)
        usage_fail(SKIFF_MON_FLAG_LOG_MAX_LINE " is out of range");
      o->max_line = n, i++;
    } else
      usage_fail("unknown flag");
  }
  if (!o->id || !o->log || !o->exit_file || !o->pid_file || !o->ctl || o->sync_fd < 0)
    usage_fail("missing a required flag");
  if (i >= argc)
    usage_fail("missing the runtime command after " SKIFF_MON_FLAG_END);
  o->runtime_argv = argv + i;
}

/* Sends the one sync line and closes the descriptor. skiffd may be gone: that is not an error. */
static void sync_send(const char *line, size_t len) {
  if (M.o.sync_fd < 0)
    return;
  if (write_all(M.o.sync_fd, line, len) < 0)
    note("write sync fd: %s", strerror(errno));
  close(M.o.sync_fd);
  M.o.sync_fd = -1;
}

/* The console socket serves one message: removed once the runtime is done with it. */
static void remove_console(void) {
  if (M.console_fd >= 0) {
    char path[PATH_MAX];
    const char *slash = strrchr(M.o.ctl, '/');
    int dl = slash ? (int)(slash - M.o.ctl) + 1 : 0;
    snprintf(path, sizeof path, "%.*s" SKIFF_MON_CONSOLE_SOCKET, dl, M.o.ctl);
    unlink(path);
    close(M.console_fd);
    M.console_fd = -1;
  }
}

static void remove_sockets(void) {
  if (M.ctl_fd >= 0)
    unlink(M.o.ctl);
  remove_console();
}

/* Startup failed: tell skiffd why (with the runtime's own words when there are some), exit 1. */
__attribute__((noreturn)) static void fail_startup(const struct skiff_err *err, const char *output,
                                                   size_t outlen) {
  char msg[320], emsg[640], eout[SKIFF_MON_SYNC_OUTPUT_MAX * 6 + 1],
      line[sizeof emsg + sizeof eout + 64];
  if (err->errno_)
    snprintf(msg, sizeof msg, "%s: %s", err->msg, strerror(err->errno_));
  else
    snprintf(msg, sizeof msg, "%s", err->msg);
  note("%s", msg);
  json_escape(emsg, sizeof emsg, msg, strlen(msg));
  json_escape(eout, sizeof eout, output ? output : "", output ? outlen : 0);
  int n = snprintf(line, sizeof line,
                   "{\"" SKIFF_MON_SYNC_ERROR "\":\"%s\",\"" SKIFF_MON_SYNC_OUTPUT "\":\"%s\"}\n",
                   emsg, eout);
  sync_send(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  remove_sockets();
  exit(1);
}

/* Makes sure 0, 1 and 2 are open, so that no descriptor we open lands there by accident. */
static void ensure_stdio(void) {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int n = SKIFF_RETRY(open("/dev/null", O_RDWR));
      if (n >= 0 && n != fd)
        close(n);
    }
  }
}

int read_pid_file(const char *path, struct skiff_err *err) {
  char buf[32];
  cleanup_close int fd = SKIFF_RETRY(open(path, O_RDONLY | O_CLOEXEC));
  if (fd < 0)
    return skiff_fail(err, errno, "open pid file %s", path);
  ssize_t n = read_all(fd, buf, sizeof buf - 1);
  if (n < 0)
    return skiff_fail(err, errno, "read pid file %s", path);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  unsigned long pid;
  if (!parse_uint(buf, INT_MAX, &pid) || pid == 0)
    return skiff_fail(err, 0, "pid file %s holds no pid: \"%s\"", path, buf);
  return (int)pid;
}

/* Gathers what the failed runtime wrote (never blocks: the read ends are non-blocking). */
static size_t collect_output(int fd1, int fd2, char *buf, size_t size) {
  size_t n = 0;
  int fds[2] = {fd1, fd2};
  for (int k = 0; k < 2; k++) {
    while (fds[k] >= 0 && n < size) {
      ssize_t r = SKIFF_RETRY(read(fds[k], buf + n, size - n));
      if (r <= 0)
        break;
      n += (size_t)r;
    }
  }
  return n;
}

static int epoll_add(int fd, int kind, struct skiff_err *err) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV(kind, 0)};
  if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
    return skiff_fail(err, errno, "epoll add");
  return 0;
}

int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Runs `runtime create` and waits for it; on success M.container holds the container's pid and, in
 * tty mode, M.out.fd the pty master. On failure it reports on the sync fd and exits. */
static void run_create(void) {
  struct skiff_err err = {0};
  /* Child ends of the pipes: stdin, stdout, stderr. In tty mode the container's stdio is the pty;
   * the pipes then only carry the runtime's own output. */
  int in_r = -1, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  if (M.o.stdin_open && !M.o.tty) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
      skiff_fail(&err, errno, "pipe"), fail_startup(&err, NULL, 0);
    in_r = p[0], M.stdin_w = p[1];
  } else if ((in_r = SKIFF_RETRY(open("/dev/null", O_RDONLY | O_CLOEXEC))) < 0) {
    skiff_fail(&err, errno, "open /dev/null"), fail_startup(&err, NULL, 0);
  }
  if (pipe2(out_p, O_CLOEXEC) < 0 || (!M.o.tty && pipe2(err_p, O_CLOEXEC) < 0))
    skiff_fail(&err, errno, "pipe"), fail_startup(&err, NULL, 0);
  if (set_nonblock(out_p[0]) < 0 || (err_p[0] >= 0 && set_nonblock(err_p[0]) < 0))
    skiff_fail(&err, errno, "fcntl O_NONBLOCK"), fail_startup(&err, NULL, 0);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r, 0);
  posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_p[1] >= 0 ? err_p[1] : out_p[1], 2);
  posix_spawnattr_init(&attr);
  /* Our ignored signals and blocked SIGCHLD must not reach the runtime, nor through it the
   * container (an ignored SIGTERM survives exec). */
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t rt;
  int rc = posix_spawnp(&rt, M.o.runtime_argv[0], &fa, &attr, M.o.runtime_argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in_r);
  close(out_p[1]);
  if (err_p[1] >= 0)
    close(err_p[1]);
  if (rc != 0)
    skiff_fail(&err, rc, "run %s", M.o.runtime_argv[0]), fail_startup(&err, NULL, 0);

  /* Wait for the runtime, taking the console on the way. Only the runtime is reaped here: the
   * container may already be our (zombie) child, and its status must wait for its pid. */
  int status = 0, master = -1;
  for (bool done = false; !done;) {
    struct epoll_event evs[4];
    int n = SKIFF_RETRY(epoll_wait(M.epfd, evs, 4, -1));
    if (n < 0)
      skiff_fail(&err, errno, "epoll_wait"), fail_startup(&err, NULL, 0);
    for (int k = 0; k < n; k++) {
      uint32_t kind = (uint32_t)(evs[k].data.u64 >> 32);
      if (kind == EV_SIGNAL) {
        drain_signalfd();
        pid_t p = SKIFF_RETRY(waitpid(rt, &status, WNOHANG));
        if (p == rt)
          done = true;
        else if (p < 0)
          skiff_fail(&err, errno, "waitpid runtime"), fail_startup(&err, NULL, 0);
      } else if (kind == EV_CONSOLE && master < 0) {
        master = console_receive(M.console_fd);
        if (master >= 0) /* one use; a listener left in the set would spin on a second caller */
          remove_console();
      }
    }
  }
  if (M.o.tty && master < 0) /* it may have connected in the same instant it exited */
    master = console_receive(M.console_fd);

  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char out[SKIFF_MON_SYNC_OUTPUT_MAX];
    size_t outlen = collect_output(out_p[0], err_p[0], out, sizeof out);
    if (WIFSIGNALED(status))
      skiff_fail(&err, 0, "runtime create killed by signal %d", WTERMSIG(status));
    else
      skiff_fail(&err, 0, "runtime create exited with status %d", WEXITSTATUS(status));
    if (master >= 0)
      close(master);
    fail_startup(&err, out, outlen);
  }

  int pid = read_pid_file(M.o.pid_file, &err);
  if (pid < 0)
    fail_startup(&err, NULL, 0);
  M.container = pid;

  if (M.o.tty) {
    if (master < 0)
      skiff_fail(&err, 0, "the runtime sent no console on %s", SKIFF_MON_CONSOLE_SOCKET),
          fail_startup(&err, NULL, 0);
    remove_console();
    close(out_p[0]);
    if (set_nonblock(master) < 0)
      skiff_fail(&err, errno, "fcntl console"), fail_startup(&err, NULL, 0);
    out_p[0] = master;
    /* Attach writes the terminal's input through a descriptor of its own, so that it can wait for
     * EPOLLOUT apart from the output's EPOLLIN. */
    if (M.o.stdin_open && (M.stdin_w = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0)
      skiff_fail(&err, errno, "dup console"), fail_startup(&err, NULL, 0);
  } else if (M.stdin_w >= 0 && set_nonblock(M.stdin_w) < 0) {
    skiff_fail(&err, errno, "fcntl stdin"), fail_startup(&err, NULL, 0);
  }
  if (stream_open(&M.out, out_p[0], &err) < 0 ||
      (err_p[0] >= 0 && stream_open(&M.err, err_p[0], &err) < 0))
    fail_startup(&err, NULL, 0);

  /* A pidfd ends the wait even for a container that is not our child (see pidfd_ready). */
  M.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (M.pidfd >= 0) {
    if (epoll_add(M.pidfd, EV_PIDFD, &err) < 0)
      fail_startup(&err, NULL, 0);
  } else if (errno == ESRCH) {
    M.pidfd_gone = true; /* not even a zombie: gone, and not ours (we reaped only the runtime) */
  } else {
    note("pidfd_open %d: %s", pid, strerror(errno));
  }
}

static void setup(int argc, char **argv) {
  struct skiff_err err = {0};
  ensure_stdio();
  /* Diagnostics must never block the loop: a pipe that nobody drains gets them dropped instead. */
  struct stat st;
  int fl;
  if (fstat(STDERR_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) &&
      (fl = fcntl(STDERR_FILENO, F_GETFL)) >= 0)
    fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
  parse_args(argc, argv);
  /* Nothing inherited may leak into the runtime or the container: the sync fd included. */
  if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) < 0) {
    if (fcntl(M.o.sync_fd, F_SETFD, FD_CLOEXEC) < 0)
      usage_fail(SKIFF_MON_FLAG_SYNC_FD " is not an open descriptor");
  }
  if (fcntl(M.o.sync_fd, F_GETFD) < 0)
    usage_fail(SKIFF_MON_FLAG_SYNC_FD " is not an open descriptor");

  /* skiffd starts us in a new session; if it did not, leave its process group and session, so
   * that a signal to skiffd's group or a hangup of its terminal never reaches the container. */
  if (getsid(0) != getpid() && setsid() < 0)
    note("setsid: %s", strerror(errno));
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    skiff_fail(&err, errno, "prctl PR_SET_CHILD_SUBREAPER"), fail_startup(&err, NULL, 0);

  /* The monitor stops only once the container has: termination signals are ignored (SIGKILL
   * remains for an operator who means it), SIGPIPE too (a skiffd that went away), SIGCHLD is read
   * from a signalfd. */
  struct sigaction ign = {.sa_handler = SIG_IGN};
  int ignored[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t k = 0; k < sizeof ignored / sizeof ignored[0]; k++)
    sigaction(ignored[k], &ign, NULL);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
    skiff_fail(&err, errno, "sigprocmask"), fail_startup(&err, NULL, 0);
  if ((M.sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
    skiff_fail(&err, errno, "signalfd"), fail_startup(&err, NULL, 0);
  if ((M.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
    skiff_fail(&err, errno, "epoll_create1"), fail_startup(&err, NULL, 0);
  if (epoll_add(M.sigfd, EV_SIGNAL, &err) < 0)
    fail_startup(&err, NULL, 0);
  for (int k = 0; k < SKIFF_MON_CTL_MAX_CLIENTS; k++)
    M.clients[k].fd = -1;

  if ((M.log_fd = open_log(&err)) < 0)
    fail_startup(&err, NULL, 0);
  /* Bound before the runtime runs, so skiffd can connect as soon as it has the sync line; the
   * listen backlog holds early connections until the main loop serves them. */
  if ((M.ctl_fd = listen_unix(M.o.ctl, 16, &err)) < 0)
    fail_startup(&err, NULL, 0);
  if (M.o.tty) {
    char path[PATH_MAX];
    const char *slash = strrchr(M.o.ctl, '/');
    int dl = slash ? (int)(slash - M.o.ctl) + 1 : 0;
    if (snprintf(path, sizeof path, "%.*s" SKIFF_MON_CONSOLE_SOCKET, dl, M.o.ctl) >=
        (int)sizeof path)
      skiff_fail(&err, ENAMETOOLONG, "console socket path"), fail_startup(&err, NULL, 0);
    if ((M.console_fd = listen_unix(path, 1, &err)) < 0)
      fail_startup(&err, NULL, 0);
    if (epoll_add(M.console_fd, EV_CONSOLE, &err) < 0)
      fail_startup(&err, NULL, 0);
  }
}

/* ---- Main loop ------------------------------------------------------------------------------- */

/* Once the container is gone, its output drained and its exec and attach sessions ended (or the
 * drain time is up): the exit file, then the socket, then exit. If the exit file cannot be
 * written, keep serving status and retry. */
static void maybe_finish(void) {
  if (!M.exited)
    return;
  bool drained = M.out.fd < 0 && M.err.fd < 0;
  if (drained)
    attach_exited(); /* all the output is in their buffers: the exit frame follows it */
  if ((!drained || exec_live() > 0 || attach_live() > 0) && mono_ms() < M.drain_deadline_ms)
    return;
  exec_abandon_all();
  if (!drained) {
    /* Grandchildren hold the pipes: log what is there now, then let them go. */
    if (M.out.fd >= 0)
      stream_read(&M.out);
    if (M.err.fd >= 0)
      stream_read(&M.err);
    if (M.out.fd >= 0)
      stream_close(&M.out);
    if (M.err.fd >= 0)
      stream_close(&M.err);
    attach_exited();
  }
  attach_abandon_all();
  M.drain_deadline_ms = 0;
  if (M.retry_at_ms && mono_ms() < M.retry_at_ms)
    return;
  char body[256];
  body[0] = '{';
  size_t n = 1 + format_exit(body + 1, sizeof body - 3);
  body[n++] = '}';
  body[n++] = '\n';
  struct skiff_err err = {0};
  if (write_file_atomic(M.o.exit_file, body, n, 0644, &err) < 0) {
    note_err(&err);
    M.retry_at_ms = mono_ms() + 1000;
    return;
  }
  unlink(M.o.ctl);
  exit(0);
}

static int next_timeout(void) {
  int64_t deadline = exec_next_deadline();
  if (M.drain_deadline_ms && (!deadline || M.drain_deadline_ms < deadline))
    deadline = M.drain_deadline_ms;
  if (M.retry_at_ms && (!deadline || M.retry_at_ms < deadline))
    deadline = M.retry_at_ms;
  if (!deadline)
    return -1;
  int64_t left = deadline - mono_ms();
  return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

int main(int argc, char **argv) {
  setup(argc, argv);
  run_create();
  /* Before the sync line: skiffd starts the container once it has it. */
  M.oom_kills_at_start = read_oom_kills();

  char line[48];
  int n = snprintf(line, sizeof line, "{\"" SKIFF_MON_SYNC_PID "\":%d}\n", (int)M.container);
  sync_send(line, (size_t)n);

  struct skiff_err err = {0};
  if (epoll_add(M.ctl_fd, EV_CTL, &err) < 0)
    note_err(&err); /* logging and the exit file matter more than the socket: carry on */
  reap();           /* SIGCHLDs that arrived during create were consumed by the create loop */
  if (M.pidfd_gone && !M.exited)
    pidfd_ready();

  for (;;) {
    exec_timers();
    maybe_finish();
    struct epoll_event evs[8];
    int cnt = SKIFF_RETRY(epoll_wait(M.epfd, evs, 8, next_timeout()));
    if (cnt < 0) {
      note("epoll_wait: %s", strerror(errno));
      cnt = 0;
    }
    for (int k = 0; k < cnt; k++) {
      uint32_t kind = (uint32_t)(evs[k].data.u64 >> 32), idx = (uint32_t)evs[k].data.u64;
      switch (kind) {
      case EV_SIGNAL: drain_signalfd(), reap(); break;
      case EV_PIDFD: pidfd_ready(); break;
      case EV_STDOUT:
        if (M.out.fd >= 0)
          stream_read(&M.out);
        break;
      case EV_STDERR:
        if (M.err.fd >= 0)
          stream_read(&M.err);
        break;
      case EV_CTL: ctl_accept(); break;
      case EV_CLIENT:
        if (M.clients[idx].fd >= 0)
          client_read((int)idx);
        break;
      case EV_EXEC_SOCK:
      case EV_EXEC_OUT:
      case EV_EXEC_ERR:
      case EV_EXEC_PTY:
      case EV_EXEC_IN:
      case EV_EXEC_CONSOLE: exec_event(kind, idx, evs[k].events); break;
      case EV_ATTACH_SOCK:
      case EV_ATTACH_STDIN: attach_event(kind, idx, evs[k].events); break;
      default: break;
      }
    }
  }
}
