/*
 * monitor-log.c: the CRI log file (kubelet pkg/kubelet/kuberuntime/logs). Reads the container's
 * stdout and stderr streams, cuts them into records as monitor-protocol.h describes, and writes
 * them to --log, and hands each read to the attach sessions (monitor-attach.c) as it is. No
 * buffer larger than a log line.
 */
#include <sys/epoll.h>
#include <sys/uio.h>

#include "monitor.h"

/* RFC 3339 in UTC with all nine fraction digits (fixed width, so records sort as text; kubelet's
 * time.RFC3339Nano parser takes any number of digits). Writes 30 bytes plus a NUL. The date part is
 * cached per second: it is most of the cost and most records share their second. */
void format_time(char out[TS_LEN + 1], const struct timespec *ts) {
  static time_t cached_sec = (time_t)-1;
  static char cached[21]; /* "YYYY-MM-DDTHH:MM:SS." */
  if (ts->tv_sec != cached_sec) {
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    unsigned year = (unsigned)(tm.tm_year + 1900) % 10000u;
    unsigned v[6] = {year,
                     (unsigned)tm.tm_mon + 1,
                     (unsigned)tm.tm_mday,
                     (unsigned)tm.tm_hour,
                     (unsigned)tm.tm_min,
                     (unsigned)tm.tm_sec};
    char *p = cached;
    *p++ = (char)('0' + v[0] / 1000), *p++ = (char)('0' + v[0] / 100 % 10);
    *p++ = (char)('0' + v[0] / 10 % 10), *p++ = (char)('0' + v[0] % 10);
    static const char seps[] = "--T::.";
    for (int i = 1; i < 6; i++) {
      *p++ = seps[i - 1];
      *p++ = (char)('0' + v[i] / 10 % 10), *p++ = (char)('0' + v[i] % 10);
    }
    *p++ = seps[5];
    cached_sec = ts->tv_sec;
  }
  memcpy(out, cached, 20);
  unsigned long ns = (unsigned long)ts->tv_nsec;
  for (int i = 28; i >= 20; i--, ns /= 10)
    out[i] = (char)('0' + ns % 10);
  out[29] = 'Z';
  out[30] = '\0';
}

/* ---- Records --------------------------------------------------------------------------------- */

int open_log(struct skiff_err *err) {
  int fd = SKIFF_RETRY(open(M.o.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640));
  if (fd < 0)
    return skiff_fail(err, errno, "open log %s", M.o.log);
  return fd;
}

/* writev(2) of every byte, across short writes. 0; or -1 with errno and *written the bytes out. */
static int writev_all(int fd, struct iovec *iov, int cnt, size_t *written) {
  *written = 0;
  while (cnt > 0) {
    ssize_t n = SKIFF_RETRY(writev(fd, iov, cnt));
    if (n < 0)
      return -1;
    if (n == 0) {
      errno = EIO;
      return -1;
    }
    *written += (size_t)n;
    while (cnt > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++, cnt--;
    }
    if (cnt > 0) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}

/*
 * Records are gathered per read of a stream and written with one writev(2): one system call per
 * read rather than per line (conmon does the same; containerd writes each line). They share the
 * read's timestamp and point into the stream's buffer, so the batch is flushed before that buffer
 * changes (log_flush at the end of stream_consume and in stream_close).
 */
#define BATCH_RECORDS 64
static struct {
  const struct stream *s;
  int records, iovcnt;
  size_t bytes, lead;         /* lead: 1 when the batch starts with a repairing "\n" */
  size_t ends[BATCH_RECORDS]; /* byte offset just past each record */
  struct iovec iov[1 + 3 * BATCH_RECORDS];
  char head[2][TS_LEN + 16]; /* "<time> <stream> F " and "... P " */
  size_t head_len;
} B;

/*
 * A write error (ENOSPC, EIO, a file system gone) never stops the monitor: the records that did not
 * make it are dropped and counted, the container keeps running and its output keeps being read (a
 * full pipe would block it). If a record was cut in the middle, the next write starts with a
 * newline, so that a failure damages at most that one record.
 */
static void log_flush(void) {
  if (B.records == 0)
    return;
  int records = B.records;
  B.records = 0;
  if (M.log_fd < 0) {
    M.log_dropped += (uint64_t)records;
    return;
  }
  size_t written = 0;
  if (writev_all(M.log_fd, B.iov, B.iovcnt, &written) < 0) {
    if (!M.log_failing)
      note("write %s: %s; dropping output until writes succeed again", M.o.log, strerror(errno));
    M.log_failing = true;
    int ok = 0;
    while (ok < records && B.ends[ok] <= written)
      ok++;
    M.log_dropped += (uint64_t)(records - ok);
    if (written >= B.lead) /* else the repairing newline is still owed */
      M.log_midrecord = written > (ok > 0 ? B.ends[ok - 1] : B.lead);
    return;
  }
  if (M.log_failing)
    note("writes to %s succeed again after %llu dropped records", M.o.log,
         (unsigned long long)M.log_dropped);
  M.log_failing = false;
  M.log_midrecord = false;
}

static void log_record(const struct stream *s, bool partial, const char *data, size_t len) {
  if (B.records == BATCH_RECORDS || (B.records > 0 && B.s != s))
    log_flush();
  if (B.records == 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    format_time(B.head[0], &now);
    size_t h = TS_LEN, nl = strlen(s->name);
    B.head[0][h++] = ' ';
    memcpy(B.head[0] + h, s->name, nl);
    h += nl;
    B.head[0][h++] = ' ';
    B.head[0][h++] = SKIFF_MON_TAG_FULL[0];
    B.head[0][h++] = ' ';
    memcpy(B.head[1], B.head[0], h);
    B.head[1][h - 2] = SKIFF_MON_TAG_PARTIAL[0];
    B.head_len = h;
    B.s = s;
    B.iovcnt = 0;
    B.lead = M.log_midrecord ? 1 : 0;
    if (B.lead)
      B.iov[B.iovcnt++] = (struct iovec){.iov_base = "\n", .iov_len = 1};
    B.bytes = B.lead;
  }
  B.iov[B.iovcnt++] = (struct iovec){.iov_base = B.head[partial], .iov_len = B.head_len};
  if (len > 0)
    B.iov[B.iovcnt++] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
  B.iov[B.iovcnt++] = (struct iovec){.iov_base = "\n", .iov_len = 1};
  B.bytes += B.head_len + len + 1;
  B.ends[B.records++] = B.bytes;
}

/* A complete line (without its newline): P records of max_line bytes, then the F record. */
static void log_line(const struct stream *s, const char *p, size_t len) {
  while (len > M.o.max_line) {
    log_record(s, true, p, M.o.max_line);
    p += M.o.max_line;
    len -= M.o.max_line;
  }
  log_record(s, false, p, len);
}

/* Logs every complete line in the buffer, and cuts a line that filled it; keeps the rest. */
static void stream_consume(struct stream *s) {
  size_t start = 0;
  for (;;) {
    char *p = s->buf + start;
    size_t avail = s->len - start;
    char *eol = memchr(p, '\n', avail);
    if (eol) {
      size_t len = (size_t)(eol - p);
      log_line(s, p, len > 0 && p[len - 1] == '\r' ? len - 1 : len);
      start += len + 1;
      continue;
    }
    if (avail == s->cap) { /* a line longer than the buffer: cut max_line bytes, keep two */
      log_record(s, true, p, M.o.max_line);
      start += M.o.max_line;
      continue;
    }
    break;
  }
  log_flush(); /* before the memmove: the batch points into the buffer */
  if (start > 0) {
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
  }
}

/* The stream ended: what is left has no newline, so it goes out as P records (see the header). */
void stream_close(struct stream *s) {
  size_t off = 0;
  while (s->len - off > 0) {
    size_t n = s->len - off > M.o.max_line ? M.o.max_line : s->len - off;
    log_record(s, true, s->buf + off, n);
    off += n;
  }
  log_flush();
  s->len = 0;
  if (s->fd >= 0) {
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
  }
  free(s->buf);
  s->buf = NULL;
}

void stream_read(struct stream *s) {
  /* A few reads per wakeup, so that one busy stream cannot starve the other or the socket. */
  for (int i = 0; i < 4 && s->fd >= 0; i++) {
    ssize_t n = SKIFF_RETRY(read(s->fd, s->buf + s->len, s->cap - s->len));
    if (n > 0) {
      attach_output(s->tag == EV_STDOUT ? SKIFF_MON_FRAME_STDOUT : SKIFF_MON_FRAME_STDERR,
                    s->buf + s->len, (size_t)n);
      s->len += (size_t)n;
      stream_consume(s);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    /* 0: every writer is gone. EIO: a pty master whose slave side is all closed. */
    if (n < 0 && errno != EIO)
      note("read %s: %s", s->name, strerror(errno));
    stream_close(s);
  }
}

int stream_open(struct stream *s, int fd, struct skiff_err *err) {
  s->fd = fd;
  s->cap = M.o.max_line + 2;
  s->buf = malloc(s->cap);
  if (!s->buf)
    return skiff_fail(err, ENOMEM, "allocate %s buffer", s->name);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV(s->tag, 0)};
  if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
    return skiff_fail(err, errno, "epoll add %s", s->name);
  return 0;
}
