/*
 * monitor-kill.c: killing a process tree, for exec sessions (a deadline, a client gone, the
 * container gone). The tree is read from /proc/PID/task/TID/children while its members are
 * stopped, so none escapes by forking in the meantime.
 */
#include <limits.h>
#include <signal.h>
#include <sys/syscall.h>

#include "monitor.h"

/* Most processes one kill_tree() stops and kills; more are left alone (never stopped and left). */
#define KILL_TREE_MAX 256

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
void kill_tree(pid_t root) {
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
