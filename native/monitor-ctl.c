/*
 * monitor-ctl.c: the control socket. One JSON request per line, one reply line per request, a few
 * connections at once (skiffd comes and goes; the monitor never depends on it). An "exec" request
 * turns its connection into an exec session (monitor-exec.c), an "attach" request into an attach
 * session (monitor-attach.c). The small JSON reader here reads what the requests need: string and
 * boolean members and arrays of strings of one flat object.
 */
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "monitor.h"

/* Page-aligned, so that a slot's pages can be handed back to the kernel when its client goes. */
static char client_bufs[SKIFF_MON_CTL_MAX_CLIENTS][SKIFF_MON_CTL_MAX_REQUEST] __attribute__((aligned(4096)));
_Static_assert(SKIFF_MON_CTL_MAX_REQUEST % 4096 == 0, "client buffers are whole pages");

/* ---- Small JSON reader: members of a flat object found by key -------------------------------- */

static const char *json_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    p++;
  return p;
}

static int hex4(const char *p) {
  int v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p[k];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Stores byte c at out[*n] when it fits with the NUL, and counts it either way. */
static void put_byte(char *out, size_t outsize, size_t *n, unsigned c) {
  if (*n + 1 < outsize)
    out[*n] = (char)c;
  (*n)++;
}

/* Reads the \u escape at p (the 'u'): the code point, UTF-8 encoded into out. A surrogate pair is
 * one code point; a lone surrogate becomes U+FFFD. Returns the last byte of the escape. */
static const char *json_unicode(const char *p, const char *end, char *out, size_t outsize,
                                size_t *n) {
  if (end - p < 5)
    return NULL;
  int cp = hex4(p + 1);
  if (cp < 0)
    return NULL;
  p += 4;
  if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 7 && p[1] == '\\' && p[2] == 'u') {
    int lo = hex4(p + 3);
    if (lo >= 0xdc00 && lo <= 0xdfff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      p += 6;
    }
  }
  if (cp >= 0xd800 && cp <= 0xdfff)
    cp = 0xfffd;
  unsigned u = (unsigned)cp;
  if (u < 0x80) {
    put_byte(out, outsize, n, u);
  } else if (u < 0x800) {
    put_byte(out, outsize, n, 0xc0 | u >> 6);
    put_byte(out, outsize, n, 0x80 | (u & 0x3f));
  } else if (u < 0x10000) {
    put_byte(out, outsize, n, 0xe0 | u >> 12);
    put_byte(out, outsize, n, 0x80 | (u >> 6 & 0x3f));
    put_byte(out, outsize, n, 0x80 | (u & 0x3f));
  } else {
    put_byte(out, outsize, n, 0xf0 | u >> 18);
    put_byte(out, outsize, n, 0x80 | (u >> 12 & 0x3f));
    put_byte(out, outsize, n, 0x80 | (u >> 6 & 0x3f));
    put_byte(out, outsize, n, 0x80 | (u & 0x3f));
  }
  return p;
}

/* Reads the string at p (a '"'), unescaped into out, cut to outsize and NUL-terminated (when
 * outsize > 0); *len gets the whole unescaped length. Returns the byte after it, NULL if p is not
 * a well-formed string. */
static const char *json_string(const char *p, const char *end, char *out, size_t outsize,
                               size_t *len) {
  size_t n = 0;
  if (p >= end || *p != '"')
    return NULL;
  for (p++; p < end; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
      if (outsize)
        out[n < outsize ? n : outsize - 1] = '\0';
      if (len)
        *len = n;
      return p + 1;
    }
    if (c < 0x20)
      return NULL;
    if (c == '\\') {
      if (++p >= end)
        return NULL;
      switch (*p) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case '"':
      case '\\':
      case '/': c = (unsigned char)*p; break;
      case 'u':
        if (!(p = json_unicode(p, end, out, outsize, &n)))
          return NULL;
        continue;
      default: return NULL;
      }
    }
    put_byte(out, outsize, &n, c);
  }
  return NULL;
}

/* Skips any value; nested ones by bracket depth, strings aware. */
static const char *json_skip(const char *p, const char *end) {
  int depth = 0;
  while (p < end) {
    if (*p == '"') {
      p = json_string(p, end, NULL, 0, NULL);
      if (!p)
        return NULL;
      if (depth == 0)
        return p;
      continue;
    }
    if (*p == '{' || *p == '[')
      depth++;
    else if (*p == '}' || *p == ']') {
      if (depth == 0)
        return p;
      if (--depth == 0)
        return p + 1;
    } else if (depth == 0 && (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
      return p;
    p++;
  }
  return depth == 0 ? p : NULL;
}

/* The value of the first member `key` of the object in p[0..len), after checking the whole object;
 * NULL when absent or not a JSON object. */
static const char *json_member(const char *p, size_t len, const char *key) {
  const char *end = p + len, *found = NULL;
  p = json_ws(p, end);
  if (p >= end || *p++ != '{')
    return NULL;
  p = json_ws(p, end);
  if (p < end && *p == '}')
    return NULL;
  while (p < end) {
    char name[64];
    p = json_string(json_ws(p, end), end, name, sizeof name, NULL);
    if (!p)
      return NULL;
    p = json_ws(p, end);
    if (p >= end || *p++ != ':')
      return NULL;
    p = json_ws(p, end);
    if (!found && strcmp(name, key) == 0)
      found = p;
    if (!(p = json_skip(p, end)))
      return NULL;
    p = json_ws(p, end);
    if (p < end && *p == ',') {
      p++;
      continue;
    }
    if (p < end && *p == '}')
      return json_ws(p + 1, end) == end ? found : NULL;
    return NULL;
  }
  return NULL;
}

int json_get_string(const char *p, size_t len, const char *key, char *out, size_t outsize) {
  const char *end = p + len, *v = json_member(p, len, key);
  return v && v < end && *v == '"' && json_string(v, end, out, outsize, NULL) ? 0 : -1;
}

int json_get_strings(const char *p, size_t len, const char *key, char *strs, size_t size,
                     char **argv, size_t max, size_t *argc) {
  const char *end = p + len, *v = json_member(p, len, key);
  size_t used = 0, n = 0;
  if (!v || v >= end || *v != '[')
    return -1;
  v = json_ws(v + 1, end);
  if (v < end && *v == ']') {
    *argc = 0, argv[0] = NULL;
    return 0;
  }
  while (v < end) {
    size_t slen;
    if (n + 1 >= max || used >= size)
      return -1;
    v = json_string(v, end, strs + used, size - used, &slen);
    if (!v || slen >= size - used || strlen(strs + used) != slen) /* cut, or holds a NUL */
      return -1;
    argv[n++] = strs + used;
    used += slen + 1;
    v = json_ws(v, end);
    if (v < end && *v == ',') {
      v = json_ws(v + 1, end);
      continue;
    }
    if (v < end && *v == ']') {
      *argc = n, argv[n] = NULL;
      return 0;
    }
    return -1;
  }
  return -1;
}

int json_get_bool(const char *p, size_t len, const char *key, bool *out) {
  const char *end = p + len, *v = json_member(p, len, key);
  *out = false;
  if (!v)
    return 0;
  size_t n = end - v >= 4 && memcmp(v, "true", 4) == 0    ? 4
             : end - v >= 5 && memcmp(v, "false", 5) == 0 ? 5
                                                          : 0;
  const char *after = json_ws(v + n, end);
  if (n == 0 || (after < end && *after != ',' && *after != '}')) /* "truex" */
    return -1;
  *out = n == 4;
  return 0;
}

/* ---- Connections ----------------------------------------------------------------------------- */

int listen_unix(const char *path, int backlog, struct skiff_err *err) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path)
    return skiff_fail(err, ENAMETOOLONG, "socket path %s", path);
  strcpy(addr.sun_path, path);
  cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return skiff_fail(err, errno, "socket %s", path);
  if (unlink(path) < 0 && errno != ENOENT) /* a stale socket of a previous monitor */
    return skiff_fail(err, errno, "unlink %s", path);
  mode_t old = umask(0077); /* born 0600: no window in which others may connect */
  int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
  int bind_errno = errno;
  umask(old);
  if (r < 0)
    return skiff_fail(err, bind_errno, "bind %s", path);
  if (listen(fd, backlog) < 0)
    return skiff_fail(err, errno, "listen %s", path);
  int ret = fd;
  fd = -1;
  return ret;
}

/* Frees the slot; its buffer's pages go back to the kernel (they read as zeros when next used), so
 * an idle monitor does not keep the memory of every connection it once served. */
static void client_release(int i) {
  struct client *c = &M.clients[i];
  c->fd = -1;
  c->len = 0;
  c->skipping = false;
  madvise(client_bufs[i], sizeof client_bufs[i], MADV_DONTNEED);
}

static void client_close(int i) {
  struct client *c = &M.clients[i];
  if (c->fd >= 0) {
    epoll_ctl(M.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  client_release(i);
}

/* Replies are small; a client that does not read them is dropped rather than waited for. */
static int client_send(int fd, const char *line, size_t len) {
  ssize_t n = SKIFF_RETRY(send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT));
  return n == (ssize_t)len ? 0 : -1;
}

int reply_error(int fd, const char *msg) {
  char esc[256], line[320];
  json_escape(esc, sizeof esc, msg, strlen(msg));
  int n = snprintf(line, sizeof line, "{\"" SKIFF_MON_REPLY_ERROR "\":\"%s\"}\n", esc);
  return client_send(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int reply_ok(int fd) {
  static const char ok[] = "{\"" SKIFF_MON_REPLY_OK "\":true}\n";
  return client_send(fd, ok, sizeof ok - 1);
}

/* -1: close the connection; 0: answered; 1: it became a session. `rest`: the bytes after the
 * request line, which a session takes as its first frames. */
static int handle_request(int i, const char *req, size_t len, const char *rest, size_t restlen) {
  int fd = M.clients[i].fd;
  char op[64];
  if (json_get_string(req, len, SKIFF_MON_CTL_OP, op, sizeof op) < 0)
    return reply_error(fd, "bad request: want {\"" SKIFF_MON_CTL_OP "\":\"...\"}");

  if (strcmp(op, SKIFF_MON_OP_STATUS) == 0) {
    char id[160], line[512];
    json_escape(id, sizeof id, M.o.id, strlen(M.o.id));
    int n = snprintf(
        line, sizeof line,
        "{\"" SKIFF_MON_STATUS_ID "\":\"%s\",\"" SKIFF_MON_STATUS_PID
        "\":%d,\"" SKIFF_MON_STATUS_RUNNING "\":%s,\"" SKIFF_MON_STATUS_LOG_DROPPED "\":%llu",
        id, (int)M.container, M.exited ? "false" : "true", (unsigned long long)M.log_dropped);
    if (n < 0 || (size_t)n >= sizeof line - 200)
      return reply_error(fd, "status too long");
    size_t len2 = (size_t)n;
    if (M.exited) {
      line[len2++] = ',';
      len2 += format_exit(line + len2, sizeof line - len2 - 3);
    }
    line[len2++] = '}';
    line[len2++] = '\n';
    return client_send(fd, line, len2);
  }
  if (strcmp(op, SKIFF_MON_OP_REOPEN_LOG) == 0) {
    /* Open the new file before closing the old one, so a failure keeps logging where it was. */
    struct skiff_err err = {0};
    int fd2 = open_log(&err);
    if (fd2 < 0) {
      char msg[320];
      snprintf(msg, sizeof msg, "%s: %s", err.msg, strerror(err.errno_));
      return reply_error(fd, msg);
    }
    if (M.log_fd >= 0)
      close(M.log_fd);
    M.log_fd = fd2;
    M.log_midrecord = false;
    return reply_ok(fd);
  }
  if (strcmp(op, SKIFF_MON_OP_EXEC) == 0)
    return exec_start(i, req, len, rest, restlen);
  if (strcmp(op, SKIFF_MON_OP_ATTACH) == 0)
    return attach_start(i, req, len, rest, restlen);
  if (strcmp(op, SKIFF_MON_OP_RESIZE) == 0)
    return reply_error(fd, SKIFF_MON_ERR_UNSUPPORTED);
  char msg[96];
  snprintf(msg, sizeof msg, "unknown op \"%s\"", op);
  return reply_error(fd, msg);
}

void client_read(int i) {
  struct client *c = &M.clients[i];
  ssize_t n = SKIFF_RETRY(read(c->fd, c->buf + c->len, SKIFF_MON_CTL_MAX_REQUEST - c->len));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return;
  if (n <= 0) { /* skiffd went away; that is normal and never ends the monitor */
    client_close(i);
    return;
  }
  c->len += (size_t)n;
  size_t start = 0;
  char *eol;
  while ((eol = memchr(c->buf + start, '\n', c->len - start)) != NULL) {
    size_t len = (size_t)(eol - (c->buf + start));
    int r = 0;
    if (c->skipping) /* the end of an over-long request, already answered */
      c->skipping = false;
    else
      r = handle_request(i, c->buf + start, len, eol + 1, c->len - (start + len + 1));
    if (r < 0) {
      client_close(i);
      return;
    }
    if (r > 0) { /* the session owns the descriptor now, and has copied what followed the request */
      client_release(i);
      return;
    }
    start += len + 1;
  }
  memmove(c->buf, c->buf + start, c->len - start);
  c->len -= start;
  if (c->len == SKIFF_MON_CTL_MAX_REQUEST) {
    /* Answer once and skip to the next newline; closing now would reset the connection under the
     * unread rest and lose the answer. */
    if (!c->skipping && reply_error(c->fd, "request too long") < 0) {
      client_close(i);
      return;
    }
    c->skipping = true;
    c->len = 0;
  }
}

void ctl_accept(void) {
  for (;;) {
    int fd = SKIFF_RETRY(accept4(M.ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
        note("accept %s: %s", M.o.ctl, strerror(errno));
      return;
    }
    int i = 0;
    while (i < SKIFF_MON_CTL_MAX_CLIENTS && M.clients[i].fd >= 0)
      i++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = EV(EV_CLIENT, i)};
    if (i == SKIFF_MON_CTL_MAX_CLIENTS) {
      reply_error(fd, "too many connections");
      close(fd);
    } else if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      note("epoll add client: %s", strerror(errno));
      close(fd);
    } else {
      M.clients[i] = (struct client){.fd = fd, .buf = client_bufs[i]};
    }
  }
}
