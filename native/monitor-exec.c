/*
 * monitor-exec.c: exec sessions (monitor-protocol.h has the wire format). An "exec" request on the
 * control socket runs a command line skiffd composed - normally `runtime exec --process F
 * --pid-file P ID` - with its stdout and stderr on two pipes, and turns the connection into a
 * stream of frames: output as it comes, then one exit frame.
 *
 * Memory: a session is one anonymous mapping (its state and one frame buffer), made when the
 * request is accepted and unmapped when the session ends, so an idle monitor pays nothing for the
 * sessions it may run. There is never more than one frame in flight per session: while the socket
 * is full, the session's pipes are out of the epoll set and the command blocks on its own writes.
 *
 * A session is freed only once both its connection is closed and its runtime process is reaped,
 * and only at the end of an entry point (exec_event, exec_reaped, ...), so the helpers below never
 * free the session they work on.
 */
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "monitor.h"

extern char **environ;

/* Most processes one kill_tree() stops and kills; more are left alone (never stopped and left). */
#define KILL_TREE_MAX 256

#define STR_(x) #x
#define STR(x)  STR_(x)
/* clang-format off */
#define BAD_REQUEST                                                                                \
  "bad request: exec wants \"" SKIFF_MON_EXEC_ARGV "\" (1 to " STR(SKIFF_MON_EXEC_MAX_ARGS)       \
  " strings), \"" SKIFF_MON_EXEC_PID_FILE "\" and \"" SKIFF_MON_EXEC_TIMEOUT_MS                    \
  "\" (decimal string)"
/* clang-format on */

struct session {
  int slot;
  uint32_t gen; /* in the epoll tags, so a stale event never reaches a reused slot */
  int sock;     /* -1 once closed */
  int pipe[2];  /* read ends of stdout and stderr; -1 once closed */
  bool paused;  /* pipes out of the epoll set until the socket drains */
  pid_t rt;     /* the runtime process, leader of its own process group */
  bool reaped, killed, timed_out;
  int wstatus;
  int64_t deadline_ms;       /* timeout_ms from the start; 0 = none */
  int64_t drain_ms;          /* from the runtime's exit: when to stop waiting for the pipes' end */
  bool drain_cut;            /* past drain_ms: a pipe closes as soon as it is empty */
  bool exit_queued;          /* the exit frame is in buf */
  size_t pend_off, pend_len; /* bytes of buf still to send */
  char pid_file[PATH_MAX];
  /* One frame; before the spawn, the decoded argv. */
  _Alignas(sizeof(char *)) char buf[SKIFF_MON_FRAME_HEADER + SKIFF_MON_FRAME_MAX];
};

_Static_assert((SKIFF_MON_EXEC_MAX_ARGS + 1) * sizeof(char *) + SKIFF_MON_CTL_MAX_REQUEST <=
                   SKIFF_MON_FRAME_HEADER + SKIFF_MON_FRAME_MAX,
               "a request's argv must fit the frame buffer");
_Static_assert(SKIFF_MON_FRAME_STDOUT != '{' && SKIFF_MON_FRAME_STDERR != '{' &&
                   SKIFF_MON_FRAME_EXIT != '{',
               "a frame must never start like an error reply");
_Static_assert(SKIFF_MON_EXEC_MAX_SESSIONS <= 256, "the slot is 8 bits of the epoll tag");

static uint32_t next_gen;

static uint64_t tag(const struct session *s, int kind) {
  return EV(kind, (uint32_t)s->slot | s->gen << 8);
}

/* ---- Killing a process tree ------------------------------------------------------------------ */

/* Adds the children of every thread of `pid` (/proc/PID/task/TID/children) to pids[], stopping each
 * one as it is added: a stopped process forks no more, so its own list holds still. */
static void add_children(pid_t pid, pid_t *pids, size_t *n) {
  char path[64], dbuf[1024];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  cleanup_close int dfd = SKIFF_RETRY(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd < 0)
    return;
  long got;
  while ((got = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf)) > 0) {
    for (long off = 0; off < got;) {
      struct dirent64_ {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (struct dirent64_ *)(dbuf + off);
      off += d->reclen;
      if (d->name[0] < '0' || d->name[0] > '9')
        continue;
      char cpath[96], cbuf[256];
      snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid, d->name);
      cleanup_close int cfd = SKIFF_RETRY(open(cpath, O_RDONLY | O_CLOEXEC));
      if (cfd < 0)
        continue;
      unsigned long cur = 0; /* a number may straddle two reads */
      bool in_num = false;
      ssize_t r;
      while ((r = SKIFF_RETRY(read(cfd, cbuf, sizeof cbuf))) > 0) {
        for (ssize_t k = 0; k <= r; k++) {
          char c = k < r ? cbuf[k] : 0;
          if (c >= '0' && c <= '9') {
            cur = cur * 10 + (unsigned long)(c - '0'), in_num = true;
            continue;
          }
          if (k == r) /* the chunk's end, not the number's */
            break;
          if (in_num && cur > 0 && cur <= INT_MAX) {
            bool seen = false;
            for (size_t j = 0; j < *n && !seen; j++)
              seen = pids[j] == (pid_t)cur;
            if (!seen && *n < KILL_TREE_MAX) {
              pids[(*n)++] = (pid_t)cur;
              kill((pid_t)cur, SIGSTOP);
            }
          }
          cur = 0, in_num = false;
        }
      }
    }
  }
}

/* SIGKILLs `root` and all its descendants: stopped parent first, so none escapes by forking while
 * the tree is read, then killed (a stopped process dies of SIGKILL). */
static void kill_tree(pid_t root) {
  if (root <= 1 || root == getpid() || root == M.container)
    return;
  pid_t pids[KILL_TREE_MAX];
  size_t n = 0;
  if (kill(root, SIGSTOP) < 0)
    return;
  pids[n++] = root;
  for (size_t i = 0; i < n; i++)
    add_children(pids[i], pids, &n);
  /* A fork under way while its parent was being stopped lands after that parent's list was read. */
  for (size_t i = 0, m = n; i < m; i++)
    add_children(pids[i], pids, &n);
  for (size_t i = 0; i < n; i++)
    kill(pids[i], SIGKILL);
}

/* The exec'd process (pid_file) with its descendants, the runtime with its descendants, and the
 * runtime's process group. Only while the runtime is unreaped: after that, pids may be reused (and
 * the runtime reaps the exec'd process just before it exits itself). */
static void session_kill(struct session *s) {
  if (s->reaped || s->killed)
    return;
  s->killed = true;
  struct skiff_err err = {0};
  int pid = read_pid_file(s->pid_file, &err); /* not written yet: the runtime's tree has it */
  if (pid > 0)
    kill_tree(pid);
  kill_tree(s->rt);
  kill(-s->rt, SIGKILL);
}

/* ---- Frames ---------------------------------------------------------------------------------- */

static int sock_events(struct session *s, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.u64 = tag(s, EV_EXEC_SOCK)};
  if (epoll_ctl(M.epfd, EPOLL_CTL_MOD, s->sock, &ev) < 0) {
    note("exec session: epoll: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static void pipe_close(struct session *s, int k) {
  if (s->pipe[k] < 0)
    return;
  if (!s->paused)
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->pipe[k], NULL);
  close(s->pipe[k]);
  s->pipe[k] = -1;
}

/* The client is gone (or must be let go): nothing more is sent, the command must not outlive it. */
static void session_abort(struct session *s) {
  session_kill(s);
  if (s->sock >= 0) {
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->sock, NULL);
    close(s->sock);
    s->sock = -1;
  }
  pipe_close(s, 0);
  pipe_close(s, 1);
  s->pend_len = 0;
}

static void frame_header(char *h, int type, size_t len) {
  h[0] = (char)type;
  h[1] = (char)(len >> 24), h[2] = (char)(len >> 16), h[3] = (char)(len >> 8), h[4] = (char)len;
}

static void session_read(struct session *s, int k);
static void session_check_done(struct session *s);
static void session_send_exit(struct session *s);

/* The socket is full: stop reading the pipes (the command then blocks on its writes, which is the
 * backpressure) and wait for EPOLLOUT. */
static void session_pause(struct session *s) {
  if (s->paused)
    return;
  for (int k = 0; k < 2; k++)
    if (s->pipe[k] >= 0)
      epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->pipe[k], NULL);
  s->paused = true;
  sock_events(s, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
}

static void session_resume(struct session *s) {
  s->paused = false;
  sock_events(s, EPOLLIN | EPOLLRDHUP);
  for (int k = 0; k < 2; k++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(s, EV_EXEC_OUT + k)};
    if (s->pipe[k] >= 0 && epoll_ctl(M.epfd, EPOLL_CTL_ADD, s->pipe[k], &ev) < 0) {
      note("exec session: epoll: %s", strerror(errno));
      pipe_close(s, k);
    }
  }
  /* Past the drain time a pipe closes when found empty, and an empty pipe wakes nobody: look. */
  for (int k = 0; k < 2 && s->drain_cut; k++)
    if (s->pipe[k] >= 0 && !s->paused && s->sock >= 0)
      session_read(s, k);
}

/* Sends what is pending; pauses on a full socket; ends the session once the exit frame is out. */
static void session_flush(struct session *s) {
  while (s->pend_len > 0 && s->sock >= 0) {
    ssize_t n =
        SKIFF_RETRY(send(s->sock, s->buf + s->pend_off, s->pend_len, MSG_NOSIGNAL | MSG_DONTWAIT));
    if (n > 0) {
      s->pend_off += (size_t)n;
      s->pend_len -= (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      session_pause(s);
      return;
    } else { /* EPIPE, ECONNRESET: the client went away */
      session_abort(s);
      return;
    }
  }
  if (s->sock < 0)
    return;
  if (s->exit_queued) { /* all sent: the session is over */
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->sock, NULL);
    close(s->sock);
    s->sock = -1;
    return;
  }
  if (s->paused)
    session_resume(s);
  session_check_done(s);
}

/* One read of pipe k, sent as one frame. */
static void session_read(struct session *s, int k) {
  if (s->pipe[k] < 0 || s->paused || s->pend_len > 0 || s->sock < 0)
    return;
  ssize_t n = SKIFF_RETRY(read(s->pipe[k], s->buf + SKIFF_MON_FRAME_HEADER, SKIFF_MON_FRAME_MAX));
  if (n > 0) {
    frame_header(s->buf, k == 0 ? SKIFF_MON_FRAME_STDOUT : SKIFF_MON_FRAME_STDERR, (size_t)n);
    s->pend_off = 0;
    s->pend_len = SKIFF_MON_FRAME_HEADER + (size_t)n;
    session_flush(s);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !s->drain_cut)
    return;
  pipe_close(s, k); /* the end, an error, or empty after the drain time */
  session_check_done(s);
}

/* Queues the exit frame and sends it; status 255 when the runtime has not been reaped. */
static void session_send_exit(struct session *s) {
  int code = 255, sig = 0;
  if (s->reaped && WIFSIGNALED(s->wstatus))
    sig = WTERMSIG(s->wstatus), code = SKIFF_MON_EXIT_SIGNAL_BASE + sig;
  else if (s->reaped && WIFEXITED(s->wstatus))
    code = WEXITSTATUS(s->wstatus);
  char *p = s->buf + SKIFF_MON_FRAME_HEADER;
  int n = snprintf(p, 128,
                   "{\"" SKIFF_MON_EXIT_CODE "\":%d,\"" SKIFF_MON_EXIT_SIGNAL
                   "\":%d,\"" SKIFF_MON_EXEC_TIMED_OUT "\":%s}",
                   code, sig, s->timed_out ? "true" : "false");
  frame_header(s->buf, SKIFF_MON_FRAME_EXIT, (size_t)n);
  s->pend_off = 0;
  s->pend_len = SKIFF_MON_FRAME_HEADER + (size_t)n;
  s->exit_queued = true;
  session_flush(s);
}

/* The runtime is reaped and its output is all sent: the exit frame. */
static void session_check_done(struct session *s) {
  if (s->reaped && s->pipe[0] < 0 && s->pipe[1] < 0 && s->pend_len == 0 && !s->exit_queued &&
      s->sock >= 0)
    session_send_exit(s);
}

/* ---- Lifetime -------------------------------------------------------------------------------- */

static void session_collect(struct session *s) {
  if (s->sock >= 0 || !s->reaped)
    return;
  pipe_close(s, 0);
  pipe_close(s, 1);
  M.sessions[s->slot] = NULL;
  munmap(s, sizeof *s);
}

static int refuse(int fd, struct session *s, const char *msg) {
  if (s)
    munmap(s, sizeof *s);
  return reply_error(fd, msg) < 0 ? -1 : 0;
}

/* Runs argv with stdin /dev/null, stdout and stderr on the pipes' write ends, default signal
 * dispositions, an empty mask, in a new process group. All our descriptors are close-on-exec. */
static int spawn_command(char **argv, int out_w, int err_w, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w, 2);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  int rc = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc;
}

int exec_start(int client, const char *req, size_t len) {
  int fd = M.clients[client].fd;
  if (M.exited)
    return refuse(fd, NULL, SKIFF_MON_ERR_EXITED);
  int slot = 0;
  while (slot < SKIFF_MON_EXEC_MAX_SESSIONS && M.sessions[slot])
    slot++;
  if (slot == SKIFF_MON_EXEC_MAX_SESSIONS)
    return refuse(fd, NULL, "too many exec sessions");
  struct session *s =
      mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED)
    return refuse(fd, NULL, "exec session: out of memory");

  char **argv = (char **)(void *)s->buf;
  char *strs = s->buf + (SKIFF_MON_EXEC_MAX_ARGS + 1) * sizeof(char *);
  size_t argc = 0, strs_size = sizeof s->buf - (size_t)(strs - s->buf);
  char timeout[24];
  unsigned long timeout_ms;
  if (json_get_strings(req, len, SKIFF_MON_EXEC_ARGV, strs, strs_size, argv,
                       SKIFF_MON_EXEC_MAX_ARGS + 1, &argc) < 0 ||
      argc == 0 || argv[0][0] == '\0' ||
      json_get_string(req, len, SKIFF_MON_EXEC_PID_FILE, s->pid_file, sizeof s->pid_file) < 0 ||
      s->pid_file[0] == '\0' || strlen(s->pid_file) >= sizeof s->pid_file - 1 ||
      json_get_string(req, len, SKIFF_MON_EXEC_TIMEOUT_MS, timeout, sizeof timeout) < 0 ||
      !parse_uint(timeout, 1UL << 40, &timeout_ms))
    return refuse(fd, s, BAD_REQUEST);

  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  char msg[256];
  if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 || set_nonblock(out_p[0]) < 0 ||
      set_nonblock(err_p[0]) < 0) {
    snprintf(msg, sizeof msg, "exec session: pipe: %s", strerror(errno));
    goto fail;
  }
  int rc = spawn_command(argv, out_p[1], err_p[1], &s->rt);
  close(out_p[1]);
  close(err_p[1]);
  out_p[1] = err_p[1] = -1;
  if (rc != 0) {
    snprintf(msg, sizeof msg, "run %s: %s", argv[0], strerror(rc));
    goto fail;
  }

  /* Field by field: the mapping is zeroed, and a whole-struct store would touch every page. */
  s->slot = slot;
  s->gen = next_gen++ & 0xffffff;
  s->sock = fd;
  s->pipe[0] = out_p[0], s->pipe[1] = err_p[0];
  s->deadline_ms = timeout_ms ? mono_ms() + (int64_t)timeout_ms : 0;
  M.sessions[slot] = s;
  bool ok = sock_events(s, EPOLLIN | EPOLLRDHUP) == 0;
  for (int k = 0; k < 2 && ok; k++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(s, EV_EXEC_OUT + k)};
    if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, s->pipe[k], &ev) < 0) {
      note("exec session: epoll add: %s", strerror(errno));
      ok = false;
    }
  }
  if (!ok) /* the client sees the connection end without an exit frame */
    session_abort(s);
  return 1;

fail:
  for (int k = 0; k < 2; k++) {
    if (out_p[k] >= 0)
      close(out_p[k]);
    if (err_p[k] >= 0)
      close(err_p[k]);
  }
  return refuse(fd, s, msg);
}

void exec_event(uint32_t kind, uint32_t idx, uint32_t events) {
  struct session *s = M.sessions[idx & 0xff];
  if (!s || s->gen != idx >> 8)
    return; /* an event of a session that ended earlier in the same batch */
  if (kind == EV_EXEC_SOCK && s->sock >= 0) {
    if ((events & EPOLLOUT) && s->pend_len > 0)
      session_flush(s);
    if (s->sock >= 0 && (events & EPOLLIN)) {
      /* Clients send nothing after the request; the end of their side ends the session. */
      char junk[64];
      ssize_t n = SKIFF_RETRY(recv(s->sock, junk, sizeof junk, MSG_DONTWAIT));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        session_abort(s);
    }
    if (s->sock >= 0 && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
      session_abort(s);
  } else if (kind == EV_EXEC_OUT || kind == EV_EXEC_ERR) {
    session_read(s, (int)(kind - EV_EXEC_OUT));
  }
  session_collect(s);
}

bool exec_reaped(pid_t pid, int wstatus) {
  for (int i = 0; i < SKIFF_MON_EXEC_MAX_SESSIONS; i++) {
    struct session *s = M.sessions[i];
    if (!s || s->reaped || s->rt != pid)
      continue;
    s->reaped = true;
    s->wstatus = wstatus;
    s->drain_ms = mono_ms() + SKIFF_MON_DRAIN_MS;
    session_check_done(s);
    session_collect(s);
    return true;
  }
  return false;
}

void exec_timers(void) {
  int64_t now = mono_ms();
  for (int i = 0; i < SKIFF_MON_EXEC_MAX_SESSIONS; i++) {
    struct session *s = M.sessions[i];
    if (!s)
      continue;
    if (s->deadline_ms && now >= s->deadline_ms) {
      s->deadline_ms = 0;
      if (!s->reaped && !s->killed) {
        s->timed_out = true;
        session_kill(s);
      }
    }
    if (s->drain_ms && now >= s->drain_ms) {
      /* Leftover processes hold the pipes: send what is in them, then let go. */
      s->drain_ms = 0;
      s->drain_cut = true;
      for (int k = 0; k < 2; k++)
        session_read(s, k);
      session_check_done(s);
    }
    session_collect(s);
  }
}

int64_t exec_next_deadline(void) {
  int64_t next = 0;
  for (int i = 0; i < SKIFF_MON_EXEC_MAX_SESSIONS; i++) {
    const struct session *s = M.sessions[i];
    if (!s)
      continue;
    if (s->deadline_ms && (!next || s->deadline_ms < next))
      next = s->deadline_ms;
    if (s->drain_ms && (!next || s->drain_ms < next))
      next = s->drain_ms;
  }
  return next;
}

void exec_kill_all(void) {
  for (int i = 0; i < SKIFF_MON_EXEC_MAX_SESSIONS; i++)
    if (M.sessions[i])
      session_kill(M.sessions[i]);
}

int exec_live(void) {
  int n = 0;
  for (int i = 0; i < SKIFF_MON_EXEC_MAX_SESSIONS; i++)
    n += M.sessions[i] != NULL;
  return n;
}

/* The monitor is about to exit: every session ends now, with its exit frame when the socket takes
 * it at once (255 when the runtime was not reaped). */
void exec_abandon_all(void) {
  for (int i = 0; i < SKIFF_MON_EXEC_MAX_SESSIONS; i++) {
    struct session *s = M.sessions[i];
    if (!s)
      continue;
    session_kill(s);
    if (s->sock >= 0 && s->pend_len == 0 && !s->exit_queued)
      session_send_exit(s); /* what the socket takes at once */
    session_abort(s);
    M.sessions[i] = NULL;
    munmap(s, sizeof *s);
  }
}
