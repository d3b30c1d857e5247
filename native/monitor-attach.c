/*
 * monitor-attach.c: attach sessions (monitor-protocol.h has the wire format), the kubectl attach
 * role: clients get a copy of the container's own output as it is produced, write to its stdin and
 * set its terminal's size. The output goes on to the CRI log exactly as before.
 *
 * The container never waits for a client: each read of its output is copied into every session's
 * output buffer, sent as the socket takes it, and a session that falls ATTACH_BUFFER bytes behind
 * is disconnected. Stdin goes the other way at the container's pace: a stdin frame is written as
 * far as the container's stdin takes it; while it is full, that session's socket is not read (the
 * client's writes then block: its backpressure) and the stdin descriptor waits for EPOLLOUT. The
 * session in the middle of a frame owns stdin until the frame is written, so frames of several
 * sessions are never interleaved; the others wait their turn the same way.
 *
 * Memory: a session is one anonymous mapping (state, one incoming frame, the output buffer), made
 * when the request is accepted and unmapped when the session ends. The output buffer starts over
 * at its beginning whenever it empties, and the pages a backlog touched are given back then, so a
 * client that keeps up costs a few pages and an idle monitor nothing.
 *
 * A session ends (its socket closed) anywhere, but is unmapped only at the end of an entry point
 * (settle()), so the helpers below never free the session they work on.
 */
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <termios.h>

#include "monitor.h"

#define HDR SKIFF_MON_FRAME_HEADER
#define CAP SKIFF_MON_ATTACH_BUFFER
/* Kept free for the exit frame whatever the backlog. */
#define EXIT_ROOM 128
/* After a backlog past this many bytes has been sent, the buffer's pages past it go back. */
#define TRIM_AT 65536

#define BAD_REQUEST                                                                                \
  "bad request: attach wants booleans \"" SKIFF_MON_ATTACH_STDIN "\", \"" SKIFF_MON_ATTACH_STDOUT  \
  "\", \"" SKIFF_MON_ATTACH_STDERR "\", one of them true"

_Static_assert(SKIFF_MON_FRAME_STDIN != '{' && SKIFF_MON_FRAME_STDIN_CLOSE != '{' &&
                   SKIFF_MON_FRAME_RESIZE != '{',
               "a frame must never start like a request");
_Static_assert(SKIFF_MON_ATTACH_MAX_SESSIONS <= 256, "the slot is 8 bits of the epoll tag");
_Static_assert(SKIFF_MON_CTL_MAX_REQUEST <= HDR + SKIFF_MON_FRAME_MAX,
               "what follows a request must fit the input buffer");

struct attach {
  int slot;
  uint32_t gen; /* in the epoll tags, so a stale event never reaches a reused slot */
  int sock;     /* -1 once the session has ended */
  uint32_t events;
  bool want_in, want_out, want_err;
  bool in_done;     /* the session's stdin has ended (STDIN_CLOSE, or the session) */
  bool in_blocked;  /* a frame waits for the container's stdin: the socket is not read */
  bool hup;         /* the client is gone: out of the epoll set, what it sent is still delivered */
  bool exit_queued; /* the exit frame is in the output buffer */
  size_t in_len;    /* bytes in in[] */
  size_t in_off;    /* bytes of the first frame's payload already written to stdin */
  size_t out_head, out_len, out_high;
  char in[HDR + SKIFF_MON_FRAME_MAX];
  char out[CAP];
};

static uint32_t next_gen;
static int stdin_owner = -1; /* the session whose stdin frame is partly written, or -1 */
static bool stdin_polled;    /* M.stdin_w is in the epoll set for EPOLLOUT */
static bool wake;            /* stdin moved on: the sessions waiting for it may go on */

static uint64_t tag(const struct attach *a) {
  return EV(EV_ATTACH_SOCK, (uint32_t)a->slot | a->gen << 8);
}

static void attach_input(struct attach *a);

/* ---- The container's stdin ------------------------------------------------------------------- */

static void stdin_poll(bool on) {
  if (on == stdin_polled || M.stdin_w < 0)
    return;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = EV(EV_ATTACH_STDIN, 0)};
  if (epoll_ctl(M.epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, M.stdin_w, &ev) < 0)
    note("attach: epoll stdin: %s", strerror(errno));
  else
    stdin_polled = on;
}

static void stdin_release(void) {
  stdin_owner = -1;
  stdin_poll(false);
  wake = true;
}

/* The container sees the end of its stdin (a pipe: a pty is never closed, see the header). */
static void stdin_close(void) {
  if (M.stdin_w < 0)
    return;
  stdin_poll(false);
  close(M.stdin_w);
  M.stdin_w = -1;
  M.stdin_closed = true;
  stdin_release();
}

/* ---- Sessions -------------------------------------------------------------------------------- */

static void sock_update(struct attach *a) {
  if (a->sock < 0 || a->hup)
    return;
  uint32_t ev = (a->in_blocked ? 0 : EPOLLIN) | (a->out_len > 0 ? EPOLLOUT : 0);
  if (ev == a->events)
    return;
  struct epoll_event e = {.events = ev, .data.u64 = tag(a)};
  if (epoll_ctl(M.epfd, EPOLL_CTL_MOD, a->sock, &e) < 0)
    note("attach: epoll: %s", strerror(errno));
  else
    a->events = ev;
}

/* The session is over: the socket closes; with --stdin-once a session with stdin takes the
 * container's stdin with it (CRI StdinOnce). */
static void session_end(struct attach *a) {
  if (a->sock < 0)
    return;
  if (!a->hup)
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, a->sock, NULL);
  close(a->sock);
  a->sock = -1;
  a->out_len = 0;
  if (stdin_owner == a->slot)
    stdin_release();
  if (a->want_in && !a->in_done) {
    a->in_done = true;
    if (M.o.stdin_once && !M.o.tty)
      stdin_close();
  }
}

/* The client hung up: nothing more can be sent, but what it sent before is still delivered (a
 * client may write its input, close its stdin and go). Its socket leaves the epoll set, which
 * would report the hangup for ever; settle() reads the rest. */
static void session_hangup(struct attach *a) {
  if (a->sock < 0 || a->hup)
    return;
  epoll_ctl(M.epfd, EPOLL_CTL_DEL, a->sock, NULL);
  a->hup = true;
  a->out_len = 0;
  wake = true;
}

/* Unmaps the sessions that have ended. */
static void collect(void) {
  for (int i = 0; i < SKIFF_MON_ATTACH_MAX_SESSIONS; i++) {
    struct attach *a = M.attaches[i];
    if (a && a->sock < 0) {
      M.attaches[i] = NULL;
      munmap(a, sizeof *a);
    }
  }
}

/* The end of every entry point: the sessions waiting for stdin go on as long as stdin moves (the
 * owner first), then the ended ones are unmapped. */
static void settle(void) {
  while (wake) {
    wake = false;
    for (int k = -1; k < SKIFF_MON_ATTACH_MAX_SESSIONS; k++) {
      int i = k < 0 ? stdin_owner : k;
      struct attach *a = i >= 0 ? M.attaches[i] : NULL;
      if (a && a->sock >= 0 && (a->in_blocked || a->hup) && (k < 0 || i != stdin_owner))
        attach_input(a);
    }
  }
  collect();
}

/* ---- Output: monitor -> client --------------------------------------------------------------- */

static void out_put(struct attach *a, const void *p, size_t n) {
  size_t at = (a->out_head + a->out_len) % CAP, first = CAP - at < n ? CAP - at : n;
  memcpy(a->out + at, p, first);
  memcpy(a->out, (const char *)p + first, n - first);
  a->out_len += n;
  if (first < n || at + n > a->out_high)
    a->out_high = first < n ? CAP : at + n;
}

static void out_frame(struct attach *a, int type, const char *p, size_t n) {
  char h[HDR] = {(char)type, (char)(n >> 24), (char)(n >> 16), (char)(n >> 8), (char)n};
  out_put(a, h, sizeof h);
  out_put(a, p, n);
}

/* Sends what the socket takes; ends the session once the exit frame is out. */
static void out_flush(struct attach *a) {
  while (a->out_len > 0 && a->sock >= 0 && !a->hup) {
    size_t first = CAP - a->out_head < a->out_len ? CAP - a->out_head : a->out_len;
    struct iovec iov[2] = {{.iov_base = a->out + a->out_head, .iov_len = first},
                           {.iov_base = a->out, .iov_len = a->out_len - first}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = iov[1].iov_len ? 2 : 1};
    ssize_t n = SKIFF_RETRY(sendmsg(a->sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT));
    if (n > 0) {
      a->out_head = (a->out_head + (size_t)n) % CAP;
      a->out_len -= (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else { /* EPIPE, ECONNRESET */
      session_hangup(a);
      return;
    }
  }
  if (a->sock < 0 || a->hup)
    return;
  if (a->out_len == 0) {
    if (a->out_high > TRIM_AT) {
      long page = sysconf(_SC_PAGESIZE);
      uintptr_t from = ((uintptr_t)a->out + TRIM_AT + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
      uintptr_t to = ((uintptr_t)a->out + CAP) & ~((uintptr_t)page - 1);
      if (page > 0 && to > from)
        madvise((void *)from, to - from, MADV_DONTNEED);
    }
    a->out_head = 0;
    a->out_high = 0;
    if (a->exit_queued) {
      session_end(a);
      return;
    }
  }
  sock_update(a);
}

void attach_output(int type, const char *data, size_t len) {
  size_t frames = (len + SKIFF_MON_FRAME_MAX - 1) / SKIFF_MON_FRAME_MAX;
  for (int i = 0; i < SKIFF_MON_ATTACH_MAX_SESSIONS; i++) {
    struct attach *a = M.attaches[i];
    if (!a || a->sock < 0 || a->hup || a->exit_queued ||
        !(type == SKIFF_MON_FRAME_STDOUT ? a->want_out : a->want_err))
      continue;
    if (a->out_len + len + frames * HDR > CAP - EXIT_ROOM) {
      note("attach session %d: the client fell %zu bytes behind; disconnected", i, a->out_len);
      session_end(a);
      continue;
    }
    for (size_t off = 0; off < len; off += SKIFF_MON_FRAME_MAX)
      out_frame(a, type, data + off,
                len - off < SKIFF_MON_FRAME_MAX ? len - off : SKIFF_MON_FRAME_MAX);
    out_flush(a);
  }
  settle();
}

void attach_exited(void) {
  char body[128];
  int n = snprintf(body, sizeof body,
                   "{\"" SKIFF_MON_EXIT_CODE "\":%d,\"" SKIFF_MON_EXIT_SIGNAL
                   "\":%d,\"" SKIFF_MON_EXEC_TIMED_OUT "\":false}",
                   M.exit_code, M.exit_signal);
  for (int i = 0; i < SKIFF_MON_ATTACH_MAX_SESSIONS; i++) {
    struct attach *a = M.attaches[i];
    if (!a || a->sock < 0 || a->exit_queued)
      continue;
    if (a->hup) { /* nobody to tell, and the container reads no more input */
      session_end(a);
      continue;
    }
    out_frame(a, SKIFF_MON_FRAME_EXIT, body, (size_t)n);
    a->exit_queued = true;
    out_flush(a);
  }
  settle();
}

/* ---- Input: client -> monitor ---------------------------------------------------------------- */

/* One whole frame. 0: done; 1: it waits for stdin; -1: the session must end. */
static int input_frame(struct attach *a, int type, const char *p, size_t len) {
  switch (type) {
  case SKIFF_MON_FRAME_STDIN:
    if (!a->want_in) {
      note("attach session %d: stdin data on a session without stdin", a->slot);
      return -1;
    }
    if (a->in_done || M.stdin_w < 0) /* its stdin, or the container's, has ended: dropped */
      return 0;
    if (stdin_owner >= 0 && stdin_owner != a->slot)
      return 1;
    while (a->in_off < len) {
      ssize_t n = SKIFF_RETRY(write(M.stdin_w, p + a->in_off, len - a->in_off));
      if (n > 0) {
        a->in_off += (size_t)n;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        stdin_owner = a->slot;
        stdin_poll(true);
        return 1;
      } else { /* EPIPE: the container closed its stdin; later input is dropped */
        note("write stdin: %s; the container's stdin is closed", strerror(n < 0 ? errno : EIO));
        stdin_close();
        return 0;
      }
    }
    if (stdin_owner == a->slot)
      stdin_release();
    return 0;
  case SKIFF_MON_FRAME_STDIN_CLOSE:
    if (!a->want_in || a->in_done)
      return 0;
    if (stdin_owner >= 0 && stdin_owner != a->slot) /* another's frame is half written */
      return 1;
    a->in_done = true;
    if (M.o.stdin_once && !M.o.tty)
      stdin_close();
    return 0;
  case SKIFF_MON_FRAME_RESIZE:
    if (len != SKIFF_MON_RESIZE_LEN) {
      note("attach session %d: a resize frame of %zu bytes", a->slot, len);
      return -1;
    }
    if (M.o.tty && M.out.fd >= 0) {
      const unsigned char *u = (const unsigned char *)p;
      struct winsize ws = {.ws_col = (unsigned short)(u[0] << 8 | u[1]),
                           .ws_row = (unsigned short)(u[2] << 8 | u[3])};
      if (ioctl(M.out.fd, TIOCSWINSZ, &ws) < 0)
        note("resize terminal: %s", strerror(errno));
    }
    return 0;
  default: note("attach session %d: unknown frame type %d", a->slot, type); return -1;
  }
}

/* The whole frames at the front of in[]. 0: all done; 1: one waits for stdin; -1: end. */
static int input_frames(struct attach *a) {
  while (a->in_len >= HDR) {
    const unsigned char *h = (const unsigned char *)a->in;
    size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
    if (len > SKIFF_MON_FRAME_MAX) {
      note("attach session %d: a frame of %zu bytes", a->slot, len);
      return -1;
    }
    if (a->in_len < HDR + len)
      return 0;
    int r = input_frame(a, h[0], a->in + HDR, len);
    if (r != 0)
      return r;
    memmove(a->in, a->in + HDR + len, a->in_len - (HDR + len));
    a->in_len -= HDR + len;
    a->in_off = 0;
  }
  return 0;
}

/* Handles what the client sent, reading on until its socket is empty, stdin is full, or the
 * session ends. A few reads per call, so one busy client cannot starve the loop; a client that
 * hung up is out of the epoll set, and is read to its end. */
static void attach_input(struct attach *a) {
  for (int reads = 0; a->sock >= 0; reads++) {
    int r = input_frames(a);
    if (r < 0) {
      session_end(a);
      return;
    }
    a->in_blocked = r > 0;
    if (a->in_blocked || (reads >= 4 && !a->hup)) {
      sock_update(a);
      return;
    }
    ssize_t n =
        SKIFF_RETRY(recv(a->sock, a->in + a->in_len, sizeof a->in - a->in_len, MSG_DONTWAIT));
    if (n > 0) {
      a->in_len += (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !a->hup) {
      sock_update(a);
      return;
    } else { /* the client's end: it detached */
      session_end(a);
      return;
    }
  }
}

/* ---- Entry points ---------------------------------------------------------------------------- */

int attach_start(int client, const char *req, size_t len, const char *rest, size_t restlen) {
  int fd = M.clients[client].fd;
  bool in, out, err;
  if (json_get_bool(req, len, SKIFF_MON_ATTACH_STDIN, &in) < 0 ||
      json_get_bool(req, len, SKIFF_MON_ATTACH_STDOUT, &out) < 0 ||
      json_get_bool(req, len, SKIFF_MON_ATTACH_STDERR, &err) < 0 || !(in || out || err))
    return reply_error(fd, BAD_REQUEST) < 0 ? -1 : 0;
  const char *refusal = M.exited                ? SKIFF_MON_ERR_EXITED
                        : in && !M.o.stdin_open ? "the container was created without stdin"
                        : in && M.stdin_w < 0   ? "the container's stdin is closed"
                                                : NULL;
  int slot = 0;
  while (!refusal && slot < SKIFF_MON_ATTACH_MAX_SESSIONS && M.attaches[slot])
    slot++;
  if (!refusal && slot == SKIFF_MON_ATTACH_MAX_SESSIONS)
    refusal = "too many attach sessions";
  struct attach *a = NULL;
  if (!refusal) {
    a = mmap(NULL, sizeof *a, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
      refusal = "attach session: out of memory";
  }
  if (refusal)
    return reply_error(fd, refusal) < 0 ? -1 : 0;
  if (reply_ok(fd) < 0) {
    munmap(a, sizeof *a);
    return -1;
  }
  /* Field by field: the mapping is zeroed, and a whole-struct store would touch every page. */
  a->slot = slot;
  a->gen = next_gen++ & 0xffffff;
  a->sock = fd;
  a->want_in = in, a->want_out = out, a->want_err = err;
  memcpy(a->in, rest, restlen);
  a->in_len = restlen;
  M.attaches[slot] = a;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(a)};
  if (epoll_ctl(M.epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
    note("attach: epoll: %s", strerror(errno));
    session_end(a);
  } else {
    a->events = EPOLLIN;
    attach_input(a); /* frames sent along with the request */
  }
  settle();
  return 1;
}

void attach_event(uint32_t kind, uint32_t idx, uint32_t events) {
  if (kind == EV_ATTACH_STDIN) {
    wake = true; /* the owner first, in settle() */
    settle();
    return;
  }
  struct attach *a = M.attaches[idx & 0xff];
  if (!a || a->gen != idx >> 8)
    return; /* an event of a session that ended earlier in the same batch */
  if (a->sock >= 0 && (events & EPOLLOUT))
    out_flush(a);
  if (a->sock >= 0 && !a->hup && (events & EPOLLIN) && !a->in_blocked)
    attach_input(a);
  if (a->sock >= 0 && !a->hup && (events & (EPOLLHUP | EPOLLERR)))
    session_hangup(a);
  settle();
}

int attach_live(void) {
  int n = 0;
  for (int i = 0; i < SKIFF_MON_ATTACH_MAX_SESSIONS; i++)
    n += M.attaches[i] != NULL;
  return n;
}

/* The monitor is about to exit: what the sockets take at once, then every session ends. */
void attach_abandon_all(void) {
  for (int i = 0; i < SKIFF_MON_ATTACH_MAX_SESSIONS; i++) {
    struct attach *a = M.attaches[i];
    if (!a)
      continue;
    if (a->sock >= 0 && !a->hup && a->out_len > 0)
      out_flush(a);
    session_end(a);
  }
  collect();
}
