/*
 * common.h: the few helpers every skiff C program shares (skiff-pause, skiff-ns, skiff-monitor).
 * Header-only, libc only, no global state. Kept small and stable: other files build on it.
 *
 * Error convention (as crun's libcrun/error.h): a function that can fail in more than one step takes
 * `struct skiff_err *err` last, returns a negative value on failure after filling `err` with the
 * errno and a short description of the step ("open /run/x"), and returns >= 0 on success.
 * Thin syscall-like wrappers (write_all, read_all) instead return -1 with errno set, like the
 * syscalls they wrap, so that callers name the step themselves.
 *
 *   struct skiff_err err = {0};
 *   if (write_file_atomic(path, buf, len, 0644, &err) < 0) {
 *     skiff_err_print("skiff-ns", &err);            // "skiff-ns: rename /a/.b.tmp: No space left"
 *     return 1;
 *   }
 *
 * Every descriptor is opened with O_CLOEXEC (pipes with pipe2(O_CLOEXEC)), so nothing leaks into
 * the programs we exec. Every syscall that can return EINTR goes through SKIFF_RETRY, except close()
 * which must never be retried on Linux (the descriptor is gone even when it reports EINTR).
 */
#ifndef SKIFF_COMMON_H
#define SKIFF_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The Makefile passes the package version; the fallback keeps a lone `cc x.c` working. */
#ifndef SKIFF_VERSION
#define SKIFF_VERSION "0.0.0-dev"
#endif

/* An error: the errno (0 when there is none, e.g. a usage error) and what was being done. */
struct skiff_err {
  int errno_;
  char msg[256];
};

/*
 * Fills `err` with `errno_` and the printf-formatted step and returns -1, so a caller writes
 * `return skiff_fail(err, errno, "open %s", path);`. Saves and restores errno. Safe to call in a
 * forked child of a single-threaded program.
 */
__attribute__((format(printf, 3, 4))) static inline int skiff_fail(struct skiff_err *err, int errno_,
                                                                   const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  err->errno_ = errno_;
  errno = saved;
  return -1;
}

/* Writes one line "<prog>: <msg>: <strerror>" (or "<prog>: <msg>" when errno_ is 0) to stderr. */
static inline void skiff_err_print(const char *prog, const struct skiff_err *err) {
  if (err->errno_ != 0)
    fprintf(stderr, "%s: %s: %s\n", prog, err->msg, strerror(err->errno_));
  else
    fprintf(stderr, "%s: %s\n", prog, err->msg);
}

/*
 * Evaluates `expr` (a syscall returning -1 on failure) again while it fails with EINTR, like glibc's
 * TEMP_FAILURE_RETRY, and yields its last value: `n = SKIFF_RETRY(read(fd, buf, sizeof buf));`.
 */
#define SKIFF_RETRY(expr)                                                                          \
  __extension__({                                                                                  \
    __typeof__(expr) skiff_r_;                                                                     \
    do                                                                                             \
      skiff_r_ = (expr);                                                                           \
    while (skiff_r_ == -1 && errno == EINTR);                                                      \
    skiff_r_;                                                                                      \
  })

/* Scope-bound cleanup (as crun's utils.h): `cleanup_close int fd = -1;` `cleanup_free char *p;`. */
static inline void skiff_closep(int *fd) {
  if (*fd >= 0) {
    int saved = errno;
    close(*fd); /* never retried: on Linux the descriptor is released even on EINTR */
    errno = saved;
    *fd = -1;
  }
}
static inline void skiff_freep(void *p) {
  void **pp = (void **)p;
  free(*pp);
  *pp = NULL;
}
#define cleanup_close __attribute__((cleanup(skiff_closep)))
#define cleanup_free __attribute__((cleanup(skiff_freep)))

/* Writes all `len` bytes, continuing after short writes and EINTR. 0, or -1 with errno set. */
static inline int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = SKIFF_RETRY(write(fd, p, len));
    if (n < 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads until `len` bytes or end of file. The byte count (short only at EOF), or -1 with errno. */
static inline ssize_t read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = SKIFF_RETRY(read(fd, p + got, len - got));
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* fsync(2) of the directory holding `path`, so that a rename or create in it is durable. */
static inline int fsync_parent_dir(const char *path, struct skiff_err *err) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return skiff_fail(err, ENAMETOOLONG, "fsync directory of %s", path);
  const char *dir = dirname(buf);
  cleanup_close int fd = SKIFF_RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd < 0)
    return skiff_fail(err, errno, "open %s", dir);
  if (fsync(fd) < 0)
    return skiff_fail(err, errno, "fsync %s", dir);
  return 0;
}

/*
 * Replaces `path` atomically with `data`: writes "<dir>/.<name>.tmp.<pid>" with `mode`, fsyncs it,
 * renames it over `path`, fsyncs the directory. A crash leaves the old file or the new one, plus at
 * worst a stray ".tmp" file (skiffd removes those at start). The temp file is removed on failure.
 */
static inline int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                    struct skiff_err *err) {
  char tmp[4096];
  const char *base = strrchr(path, '/');
  size_t dirlen = base ? (size_t)(base - path) + 1 : 0;
  base = base ? base + 1 : path;
  if (snprintf(tmp, sizeof tmp, "%.*s.%s.tmp.%ld", (int)dirlen, path, base, (long)getpid()) >=
      (int)sizeof tmp)
    return skiff_fail(err, ENAMETOOLONG, "write %s", path);

  cleanup_close int fd =
      SKIFF_RETRY(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd < 0)
    return skiff_fail(err, errno, "open %s", tmp);
  int ret = 0;
  if (fchmod(fd, mode) < 0) /* open's mode went through the umask */
    ret = skiff_fail(err, errno, "chmod %s", tmp);
  else if (write_all(fd, data, len) < 0)
    ret = skiff_fail(err, errno, "write %s", tmp);
  else if (SKIFF_RETRY(fsync(fd)) < 0)
    ret = skiff_fail(err, errno, "fsync %s", tmp);
  else if (rename(tmp, path) < 0)
    ret = skiff_fail(err, errno, "rename %s to %s", tmp, path);
  if (ret < 0) {
    unlink(tmp);
    return ret;
  }
  return fsync_parent_dir(path, err);
}

/*
 * Escapes `in[0..inlen)` for the inside of a JSON string (RFC 8259 section 7): quote, backslash and
 * control characters; other bytes are copied, so UTF-8 stays UTF-8. Works like snprintf: writes at
 * most `outsize` bytes including the NUL and returns the length the whole escape needs, so
 * `json_escape(NULL, 0, s, n) + 1` sizes a buffer and a result >= outsize means it was truncated.
 * A truncated result ends before the first escape that did not fit whole, so it is never a broken
 * escape sequence.
 */
static inline size_t json_escape(char *out, size_t outsize, const char *in, size_t inlen) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0, written = 0;
  char esc[7];
  for (size_t i = 0; i < inlen; i++) {
    unsigned char c = (unsigned char)in[i];
    size_t k = 0;
    switch (c) {
    case '"': esc[k++] = '\\', esc[k++] = '"'; break;
    case '\\': esc[k++] = '\\', esc[k++] = '\\'; break;
    case '\n': esc[k++] = '\\', esc[k++] = 'n'; break;
    case '\r': esc[k++] = '\\', esc[k++] = 'r'; break;
    case '\t': esc[k++] = '\\', esc[k++] = 't'; break;
    case '\b': esc[k++] = '\\', esc[k++] = 'b'; break;
    case '\f': esc[k++] = '\\', esc[k++] = 'f'; break;
    default:
      if (c < 0x20) {
        memcpy(esc, "\\u00", 4);
        k = 4;
        esc[k++] = hex[c >> 4];
        esc[k++] = hex[c & 0xf];
      } else {
        esc[k++] = (char)c;
      }
    }
    if (written == n && n + k < outsize) {
      memcpy(out + n, esc, k);
      written += k;
    }
    n += k;
  }
  if (outsize > 0)
    out[written] = '\0';
  return n;
}

#endif /* SKIFF_COMMON_H */
