/*
 * monitor.h: what the files of skiff-monitor share, private to them (the protocol with skiffd is
 * monitor-protocol.h). One program, one thread: the state is one global struct, M.
 *   monitor.c       arguments, startup, `runtime create`, the container's exit, the main loop
 *   monitor-log.c   the CRI log file: the container's output streams, cut into records
 *   monitor-ctl.c   the control socket and the small JSON reader for its requests
 *   monitor-exec.c  exec sessions: a command run for a client, its output streamed back in frames,
 *                   its input (stdin, a terminal) from the client with -i/-t
 *   monitor-kill.c  killing a process tree (exec sessions)
 *   monitor-attach.c  attach sessions: the container's own output copied to clients, their input
 *                     to its stdin, their terminal size to its pty
 */
#ifndef SKIFF_MONITOR_H
#define SKIFF_MONITOR_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common.h"
#include "monitor-protocol.h"

#define PROG "skiff-monitor"

/* Epoll tags: the kind in the high half, a client or session slot in the low half. */
enum {
  EV_SIGNAL = 1,
  EV_STDOUT,
  EV_STDERR,
  EV_CTL,
  EV_CLIENT,
  EV_CONSOLE,
  EV_PIDFD,
  EV_EXEC_SOCK,
  EV_EXEC_OUT, /* EV_EXEC_OUT + k: the session's pipe k (0 stdout, 1 stderr) */
  EV_EXEC_ERR,
  EV_ATTACH_SOCK,
  EV_ATTACH_STDIN, /* the container's stdin became writable */
  EV_EXEC_PTY,     /* an interactive exec session's terminal (output) */
  EV_EXEC_IN,      /* an interactive exec session's stdin became writable */
  EV_EXEC_CONSOLE, /* an exec session's console socket: the runtime connects */
};
#define EV(kind, idx) (((uint64_t)(kind) << 32) | (uint32_t)(idx))

struct opts {
  const char *id, *log, *exit_file, *pid_file, *ctl, *oom_file;
  int sync_fd;
  bool tty, stdin_open, stdin_once;
  size_t max_line;
  char **runtime_argv;
};

/* One output stream: bytes read but not yet logged. Capacity is max_line + 2 so that a line of
 * exactly max_line bytes followed by "\r\n" or "\n" is still one F record. */
struct stream {
  int fd;
  int tag;
  const char *name;
  char *buf;
  size_t len, cap;
};

struct client {
  int fd;
  bool skipping;
  size_t len;
  char *buf; /* a static buffer per slot, apart, so the pages of unused slots are never touched */
};

struct session; /* monitor-exec.c */
struct attach;  /* monitor-attach.c */

struct monitor {
  struct opts o;
  /* stdin_w: the container's stdin (a pipe's write end, or with --tty a duplicate of the pty
   * master), -1 without --stdin and once closed */
  int epfd, sigfd, ctl_fd, console_fd, log_fd, stdin_w, pidfd;
  struct stream out, err;
  struct client clients[SKIFF_MON_CTL_MAX_CLIENTS];
  struct session *sessions[SKIFF_MON_EXEC_MAX_SESSIONS];
  struct attach *attaches[SKIFF_MON_ATTACH_MAX_SESSIONS];
  bool stdin_closed; /* --stdin-once did it, or the container closed its end */
  pid_t container;
  bool exited;
  int exit_code, exit_signal;
  bool oom_killed;
  uint64_t oom_kills_at_start;
  struct timespec exited_at;
  int64_t drain_deadline_ms, retry_at_ms; /* CLOCK_MONOTONIC; 0 = none */
  uint64_t log_dropped;
  bool log_failing, log_midrecord, pidfd_gone;
};
extern struct monitor M;

/* monitor.c */
/* Accepts one connection on a console socket and returns the descriptor it sends (the pty
 * master, close-on-exec), or -1 (noted on stderr). */
int console_receive(int listen_fd);
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...);
void note_err(const struct skiff_err *err);
int64_t mono_ms(void);
bool parse_uint(const char *s, unsigned long max, unsigned long *out);
int read_pid_file(const char *path, struct skiff_err *err);
int set_nonblock(int fd);
size_t format_exit(char *buf, size_t size);

/* monitor-log.c */
#define TS_LEN 30
void format_time(char out[TS_LEN + 1], const struct timespec *ts);
int open_log(struct skiff_err *err);
int stream_open(struct stream *s, int fd, struct skiff_err *err);
void stream_read(struct stream *s);
void stream_close(struct stream *s);

/* monitor-ctl.c */
int listen_unix(const char *path, int backlog, struct skiff_err *err);
void ctl_accept(void);
void client_read(int i);
int reply_error(int fd, const char *msg);
int reply_ok(int fd);
/* 0 and the member `key` when it is a string, unescaped, NUL-terminated and cut to outsize; -1 when
 * absent, not a string or the request is not a JSON object. */
int json_get_string(const char *p, size_t len, const char *key, char *out, size_t outsize);
/* The member `key` as an array of strings: each unescaped, NUL-terminated, packed into strs[size],
 * and pointed at by argv[0..*argc) with argv[*argc] = NULL; max pointers, NULL included. 0; -1
 * when absent, not an array of strings, a string holds a NUL, or it does not fit. */
int json_get_strings(const char *p, size_t len, const char *key, char *strs, size_t size,
                     char **argv, size_t max, size_t *argc);
/* 0 and the member `key` as a boolean, false when absent (of an object already read whole by
 * json_get_string); -1 when it is present but not true or false. */
int json_get_bool(const char *p, size_t len, const char *key, bool *out);

/* monitor-exec.c */
/* The "exec" request on client slot i; `rest` is what the client sent after the request line
 * (an interactive session's first frames). 1: the connection became a session (the slot no longer
 * owns the descriptor); 0: refused with an error reply; -1: the reply could not be sent. */
int exec_start(int client, const char *req, size_t len, const char *rest, size_t restlen);
void exec_event(uint32_t kind, uint32_t slot, uint32_t events);
bool exec_reaped(pid_t pid, int wstatus);
void exec_timers(void);
int64_t exec_next_deadline(void);
void exec_kill_all(void);
int exec_live(void);
void exec_abandon_all(void);

/* monitor-kill.c */
/* SIGKILLs `root` and all its descendants (never pid 1, the monitor or the container). */
void kill_tree(pid_t root);

/* monitor-attach.c */
/* The "attach" request on client slot i; `rest` is what the client sent after the request line
 * (frames already). 1: the connection became a session; 0: refused; -1: the reply failed. */
int attach_start(int client, const char *req, size_t len, const char *rest, size_t restlen);
void attach_event(uint32_t kind, uint32_t slot, uint32_t events);
/* A read of the container's output (type FRAME_STDOUT or FRAME_STDERR): copied to the sessions. */
void attach_output(int type, const char *data, size_t len);
/* The container has exited and its output is drained: every session gets its exit frame. */
void attach_exited(void);
int attach_live(void);
void attach_abandon_all(void);

#endif /* SKIFF_MONITOR_H */
