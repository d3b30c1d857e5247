/*
 * monitor-exec.c: exec sessions (monitor-protocol.h has the wire format). An "exec" request on the
 * control socket runs a command line skiffd composed - normally `runtime exec --process F
 * --pid-file P ID` - with its stdout and stderr on two pipes, and turns the connection into a
 * stream of frames: output as it comes, then one exit frame. An interactive session ("stdin",
 * "tty") also reads frames from the client: stdin for a pipe (or the terminal), its end, and the
 * terminal's size; with a tty the runtime sends the pty master to a console socket the session
 * listens on, and the terminal is read as a third output.
 *
 * Memory: a session is one anonymous mapping (its state and one frame buffer), made when the
 * request is accepted and unmapped when the session ends, so an idle monitor pays nothing for the
 * sessions it may run. There is never more than one frame in flight per session: while the socket
 * is full, the session's pipes are out of the epoll set and the command blocks on its own writes.
 * Input likewise holds one frame at most: while the process's stdin is full, the socket is not
 * read (the client's writes block) and the stdin descriptor waits for EPOLLOUT.
 *
 * A session is freed only once both its connection is closed and its runtime process is reaped,
 * and only at the end of an entry point (exec_event, exec_reaped, ...), so the helpers below never
 * free the session they work on.
 */
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

#include "monitor.h"

extern char **environ;

#define STR_(x) #x
#define STR(x)  STR_(x)
/* clang-format off */
#define BAD_REQUEST                                                                                \
  "bad request: exec wants \"" SKIFF_MON_EXEC_ARGV "\" (1 to " STR(SKIFF_MON_EXEC_MAX_ARGS)       \
  " strings), \"" SKIFF_MON_EXEC_PID_FILE "\" and \"" SKIFF_MON_EXEC_TIMEOUT_MS                    \
  "\" (decimal string), booleans \"" SKIFF_MON_EXEC_STDIN "\" and \"" SKIFF_MON_EXEC_TTY            \
  "\", \"" SKIFF_MON_EXEC_CONSOLE_SOCKET "\" with a tty"
/* clang-format on */

#define HDR SKIFF_MON_FRAME_HEADER
/* Output descriptors: the runtime's stdout and stderr pipes, and the terminal (sent as stdout). */
#define NOUT    3
#define OUT_PTY 2

struct session {
  int slot;
  uint32_t gen;   /* in the epoll tags, so a stale event never reaches a reused slot */
  int sock;       /* -1 once closed */
  int pipe[NOUT]; /* read ends of stdout and stderr, the pty master; -1 when closed or none */
  bool paused;    /* pipes out of the epoll set until the socket drains */
  pid_t rt;       /* the runtime process, leader of its own process group */
  bool reaped, killed, timed_out;
  int wstatus;
  int64_t deadline_ms;       /* timeout_ms from the start; 0 = none */
  int64_t drain_ms;          /* from the runtime's exit: when to stop waiting for the pipes' end */
  bool drain_cut;            /* past drain_ms: a pipe closes as soon as it is empty */
  bool exit_queued;          /* the exit frame is in buf */
  size_t pend_off, pend_len; /* bytes of buf still to send */
  /* Interactive sessions only. */
  bool want_in, tty;
  bool in_blocked; /* a stdin frame waits for in_w (or for the terminal): the socket is not read */
  bool in_polled;  /* in_w is in the epoll set for EPOLLOUT */
  bool ws_set;     /* a resize came: applied to the terminal (when it arrives) */
  bool followed;   /* rt is the process a detached runtime left (see follow_detached) */
  int in_w;        /* the process's stdin: a pipe's write end or a dup of the master; -1 = none */
  int console;     /* the console socket listening for the master; -1 = none or done */
  struct winsize ws;
  size_t in_len, in_off; /* bytes in in[]; of the first frame's payload already written */
  char console_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char pid_file[PATH_MAX];
  char in[HDR + SKIFF_MON_FRAME_MAX]; /* client frames; touched only by interactive sessions */
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
_Static_assert(SKIFF_MON_CTL_MAX_REQUEST <= HDR + SKIFF_MON_FRAME_MAX,
               "what follows a request must fit the input buffer");

static uint32_t next_gen;

static uint64_t tag(const struct session *s, int kind) {
  return EV(kind, (uint32_t)s->slot | s->gen << 8);
}

static int out_kind(int k) {
  return k == OUT_PTY ? EV_EXEC_PTY : EV_EXEC_OUT + k;
}

/* ---- Killing ------------------------------------------------------------------------------- */

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

/* The socket's events: EPOLLIN unless input waits for stdin, EPOLLOUT while output is paused. */
static int sock_update(struct session *s) {
  uint32_t events = EPOLLRDHUP | (s->in_blocked ? 0 : EPOLLIN) | (s->paused ? EPOLLOUT : 0);
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

static void in_poll(struct session *s, bool on) {
  if (on == s->in_polled || s->in_w < 0)
    return;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = tag(s, EV_EXEC_IN)};
  if (epoll_ctl(M.epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->in_w, &ev) < 0)
    note("exec session: epoll stdin: %s", strerror(errno));
  else
    s->in_polled = on;
}

/* The process sees the end of its input (a pipe; with a tty, only our duplicate of the master). */
static void in_close(struct session *s) {
  if (s->in_w < 0)
    return;
  in_poll(s, false);
  close(s->in_w);
  s->in_w = -1;
}

/* The console socket has served (or can no longer): closed and removed. */
static void console_close(struct session *s) {
  if (s->console < 0)
    return;
  epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->console, NULL);
  close(s->console);
  s->console = -1;
  unlink(s->console_path);
}

/* The client is gone (or must be let go): nothing more is sent, the command must not outlive it. */
static void session_abort(struct session *s) {
  session_kill(s);
  in_close(s);
  console_close(s);
  if (s->sock >= 0) {
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->sock, NULL);
    close(s->sock);
    s->sock = -1;
  }
  for (int k = 0; k < NOUT; k++)
    pipe_close(s, k);
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
  for (int k = 0; k < NOUT; k++)
    if (s->pipe[k] >= 0)
      epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->pipe[k], NULL);
  s->paused = true;
  sock_update(s);
}

static void session_resume(struct session *s) {
  s->paused = false;
  sock_update(s);
  for (int k = 0; k < NOUT; k++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(s, out_kind(k))};
    if (s->pipe[k] >= 0 && epoll_ctl(M.epfd, EPOLL_CTL_ADD, s->pipe[k], &ev) < 0) {
      note("exec session: epoll: %s", strerror(errno));
      pipe_close(s, k);
    }
  }
  /* Past the drain time a pipe closes when found empty, and an empty pipe wakes nobody: look. */
  for (int k = 0; k < NOUT && s->drain_cut; k++)
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
    frame_header(s->buf, k == 1 ? SKIFF_MON_FRAME_STDERR : SKIFF_MON_FRAME_STDOUT, (size_t)n);
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
  if (s->reaped && s->pipe[0] < 0 && s->pipe[1] < 0 && s->pipe[OUT_PTY] < 0 && s->pend_len == 0 &&
      !s->exit_queued && s->sock >= 0)
    session_send_exit(s);
}

/* ---- Input: client -> monitor (interactive sessions) ------------------------------------------
 */

static void apply_size(struct session *s) {
  if (s->ws_set && s->pipe[OUT_PTY] >= 0 && ioctl(s->pipe[OUT_PTY], TIOCSWINSZ, &s->ws) < 0)
    note("exec session: resize terminal: %s", strerror(errno));
}

/* One whole frame. 0: done; 1: it waits for stdin; -1: the session must end. */
static int input_frame(struct session *s, int type, const char *p, size_t len) {
  switch (type) {
  case SKIFF_MON_FRAME_STDIN:
    if (!s->want_in) {
      note("exec session %d: stdin data on a session without stdin", s->slot);
      return -1;
    }
    if (s->in_w < 0) /* the terminal is still to come, or stdin has ended: dropped */
      return s->console >= 0 && !s->reaped ? 1 : 0;
    while (s->in_off < len) {
      ssize_t n = SKIFF_RETRY(write(s->in_w, p + s->in_off, len - s->in_off));
      if (n > 0) {
        s->in_off += (size_t)n;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        in_poll(s, true);
        return 1;
      } else { /* EPIPE, EIO: the process closed its stdin; later input is dropped */
        in_close(s);
        return 0;
      }
    }
    in_poll(s, false);
    return 0;
  case SKIFF_MON_FRAME_STDIN_CLOSE:
    if (!s->tty)
      in_close(s);
    return 0;
  case SKIFF_MON_FRAME_RESIZE:
    if (len != SKIFF_MON_RESIZE_LEN) {
      note("exec session %d: a resize frame of %zu bytes", s->slot, len);
      return -1;
    }
    if (s->tty) {
      const unsigned char *u = (const unsigned char *)p;
      s->ws.ws_col = (unsigned short)(u[0] << 8 | u[1]);
      s->ws.ws_row = (unsigned short)(u[2] << 8 | u[3]);
      s->ws_set = true;
      apply_size(s);
    }
    return 0;
  default: note("exec session %d: unknown frame type %d", s->slot, type); return -1;
  }
}

/* The whole frames at the front of in[]. 0: all done; 1: one waits for stdin; -1: end. */
static int input_frames(struct session *s) {
  while (s->in_len >= HDR) {
    const unsigned char *h = (const unsigned char *)s->in;
    size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
    if (len > SKIFF_MON_FRAME_MAX) {
      note("exec session %d: a frame of %zu bytes", s->slot, len);
      return -1;
    }
    if (s->in_len < HDR + len)
      return 0;
    int r = input_frame(s, s->in[0], s->in + HDR, len);
    if (r != 0)
      return r;
    memmove(s->in, s->in + HDR + len, s->in_len - (HDR + len));
    s->in_len -= HDR + len;
    s->in_off = 0;
  }
  return 0;
}

/* Handles what the client sent, reading on until its socket is empty, stdin is full, or the
 * session ends; a few reads per call, so one busy client cannot starve the loop. The client's end
 * is a disconnect: the session is aborted. */
static void session_input(struct session *s) {
  for (int reads = 0; s->sock >= 0 && !s->exit_queued; reads++) {
    int r = input_frames(s);
    if (r < 0) {
      session_abort(s);
      return;
    }
    bool blocked = r > 0;
    if (blocked != s->in_blocked) {
      s->in_blocked = blocked;
      sock_update(s);
    }
    if (blocked || reads >= 4)
      return;
    ssize_t n =
        SKIFF_RETRY(recv(s->sock, s->in + s->in_len, sizeof s->in - s->in_len, MSG_DONTWAIT));
    if (n > 0)
      s->in_len += (size_t)n;
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    else {
      session_abort(s);
      return;
    }
  }
}

/* The runtime connected to the console socket: the master is the terminal, read as stdout and,
 * with stdin, written through a duplicate (so that it waits for EPOLLOUT apart). */
static void console_ready(struct session *s) {
  int master = console_receive(s->console);
  if (master < 0)
    return; /* a stray client; the runtime may still come */
  console_close(s);
  if (set_nonblock(master) < 0 ||
      (s->want_in && (s->in_w = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0)) {
    note("exec session: terminal: %s", strerror(errno));
    close(master);
    session_abort(s);
    return;
  }
  s->pipe[OUT_PTY] = master;
  apply_size(s);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(s, EV_EXEC_PTY)};
  if (!s->paused && epoll_ctl(M.epfd, EPOLL_CTL_ADD, master, &ev) < 0) {
    note("exec session: epoll terminal: %s", strerror(errno));
    session_abort(s);
    return;
  }
  if (s->in_blocked)
    session_input(s);
}

/* ---- Lifetime -------------------------------------------------------------------------------- */

static void session_collect(struct session *s) {
  if (s->sock >= 0 || !s->reaped)
    return;
  for (int k = 0; k < NOUT; k++)
    pipe_close(s, k);
  in_close(s);
  console_close(s);
  M.sessions[s->slot] = NULL;
  munmap(s, sizeof *s);
}

static int refuse(int fd, struct session *s, const char *msg) {
  if (s)
    munmap(s, sizeof *s);
  return reply_error(fd, msg) < 0 ? -1 : 0;
}

/* Runs argv with stdin in_r (or /dev/null when -1), stdout and stderr on the pipes' write ends,
 * default signal dispositions, an empty mask, in a new process group. All our descriptors are
 * close-on-exec. */
static int spawn_command(char **argv, int in_r, int out_w, int err_w, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawn_file_actions_init(&fa);
  if (in_r >= 0)
    posix_spawn_file_actions_adddup2(&fa, in_r, 0);
  else
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

int exec_start(int client, const char *req, size_t len, const char *rest, size_t restlen) {
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
      !parse_uint(timeout, 1UL << 40, &timeout_ms) ||
      json_get_bool(req, len, SKIFF_MON_EXEC_STDIN, &s->want_in) < 0 ||
      json_get_bool(req, len, SKIFF_MON_EXEC_TTY, &s->tty) < 0)
    return refuse(fd, s, BAD_REQUEST);
  if (s->tty &&
      (json_get_string(req, len, SKIFF_MON_EXEC_CONSOLE_SOCKET, s->console_path,
                       sizeof s->console_path) < 0 ||
       s->console_path[0] == '\0' || strlen(s->console_path) >= sizeof s->console_path - 1))
    return refuse(fd, s, BAD_REQUEST);

  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, in_p[2] = {-1, -1};
  s->console = -1;
  char msg[256];
  if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 || set_nonblock(out_p[0]) < 0 ||
      set_nonblock(err_p[0]) < 0 ||
      (s->want_in && !s->tty && (pipe2(in_p, O_CLOEXEC) < 0 || set_nonblock(in_p[1]) < 0))) {
    snprintf(msg, sizeof msg, "exec session: pipe: %s", strerror(errno));
    goto fail;
  }
  if (s->tty) { /* listening before the runtime runs: it connects as soon as it has the pty */
    struct skiff_err err = {0};
    if ((s->console = listen_unix(s->console_path, 1, &err)) < 0) {
      snprintf(msg, sizeof msg, "exec session: %.160s: %s", err.msg, strerror(err.errno_));
      goto fail;
    }
  }
  int rc = spawn_command(argv, in_p[0], out_p[1], err_p[1], &s->rt);
  close(out_p[1]);
  close(err_p[1]);
  out_p[1] = err_p[1] = -1;
  if (in_p[0] >= 0)
    close(in_p[0]);
  in_p[0] = -1;
  if (rc != 0) {
    snprintf(msg, sizeof msg, "run %s: %s", argv[0], strerror(rc));
    goto fail;
  }

  /* Field by field: the mapping is zeroed, and a whole-struct store would touch every page. */
  s->slot = slot;
  s->gen = next_gen++ & 0xffffff;
  s->sock = fd;
  s->pipe[0] = out_p[0], s->pipe[1] = err_p[0], s->pipe[OUT_PTY] = -1;
  s->in_w = in_p[1];
  s->deadline_ms = timeout_ms ? mono_ms() + (int64_t)timeout_ms : 0;
  M.sessions[slot] = s;
  bool ok = sock_update(s) == 0 && (!(s->want_in || s->tty) || reply_ok(fd) == 0);
  for (int k = 0; k < 2 && ok; k++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(s, EV_EXEC_OUT + k)};
    if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, s->pipe[k], &ev) < 0) {
      note("exec session: epoll add: %s", strerror(errno));
      ok = false;
    }
  }
  struct epoll_event cev = {.events = EPOLLIN, .data.u64 = tag(s, EV_EXEC_CONSOLE)};
  if (ok && s->console >= 0 && epoll_ctl(M.epfd, EPOLL_CTL_ADD, s->console, &cev) < 0) {
    note("exec session: epoll add console: %s", strerror(errno));
    ok = false;
  }
  if (!ok) { /* the client sees the connection end without an exit frame */
    session_abort(s);
  } else if (s->want_in || s->tty) { /* frames sent along with the request */
    memcpy(s->in, rest, restlen);
    s->in_len = restlen;
    session_input(s);
  }
  return 1;

fail:
  for (int k = 0; k < 2; k++) {
    if (out_p[k] >= 0)
      close(out_p[k]);
    if (err_p[k] >= 0)
      close(err_p[k]);
    if (in_p[k] >= 0)
      close(in_p[k]);
  }
  if (s->console >= 0) {
    close(s->console);
    unlink(s->console_path);
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
    if (s->sock >= 0 && (events & EPOLLIN) && (s->want_in || s->tty)) {
      session_input(s);
    } else if (s->sock >= 0 && (events & EPOLLIN)) {
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
  } else if (kind == EV_EXEC_PTY) {
    session_read(s, OUT_PTY);
  } else if (kind == EV_EXEC_IN) {
    if (s->sock >= 0 && s->in_blocked)
      session_input(s);
    else
      in_poll(s, false);
  } else if (kind == EV_EXEC_CONSOLE && s->console >= 0) {
    console_ready(s);
  }
  session_collect(s);
}

/* Children reaped that were no session's: with a tty the exec'd process may be one, reparented to
 * the monitor (the subreaper) when a detached runtime left it, and dead before the runtime. */
#define ORPHANS 16
static struct {
  pid_t pid;
  int wstatus;
} orphans[ORPHANS];
static unsigned orphan_next;

/* A detached runtime (runc allows a console socket only with `exec -d`) exited 0: the process it
 * started, named by pid_file, is then waited for in its place. true: s->rt is that process now
 * (running), or *wstatus is its status (already reaped). */
static bool follow_detached(struct session *s, pid_t rt, int *wstatus) {
  struct skiff_err err = {0};
  int pid = read_pid_file(s->pid_file, &err);
  if (pid <= 0 || pid == rt)
    return false;
  for (int k = 0; k < ORPHANS; k++) {
    if (orphans[k].pid == pid) {
      orphans[k].pid = 0;
      *wstatus = orphans[k].wstatus;
      return true;
    }
  }
  siginfo_t si = {0};
  if (SKIFF_RETRY(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT)) < 0)
    return false; /* not our child: the runtime waited for it */
  s->rt = pid;
  return true;
}

bool exec_reaped(pid_t pid, int wstatus) {
  for (int i = 0; i < SKIFF_MON_EXEC_MAX_SESSIONS; i++) {
    struct session *s = M.sessions[i];
    if (!s || s->reaped || s->rt != pid)
      continue;
    if (s->console >= 0) { /* the runtime may have sent it in the instant it exited */
      console_ready(s);
      console_close(s);
    }
    if (s->tty && !s->followed && !s->killed && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
        s->sock >= 0 && follow_detached(s, pid, &wstatus)) {
      s->followed = true;
      if (s->rt != pid) { /* running: its own reaping ends the session */
        session_collect(s);
        return true;
      }
    }
    s->reaped = true;
    s->wstatus = wstatus;
    s->drain_ms = mono_ms() + SKIFF_MON_DRAIN_MS;
    if (s->in_blocked) /* no terminal is coming: input waiting for it is dropped */
      session_input(s);
    session_check_done(s);
    session_collect(s);
    return true;
  }
  unsigned k = orphan_next++ % ORPHANS;
  orphans[k].pid = pid;
  orphans[k].wstatus = wstatus;
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
      for (int k = 0; k < NOUT; k++)
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
