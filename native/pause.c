/*
 * skiff-pause: PID 1 of a pod sandbox. It holds the sandbox's ipc/uts/pid namespaces by existing,
 * reaps every zombie re-parented to it, and exits 0 on SIGTERM or SIGINT. Nothing else.
 *
 *   skiff-pause [--cgroup-procs FILE]...   join those cgroups, then run until SIGTERM/SIGINT
 *   skiff-pause -v                         print "skiff-pause <version>" and exit 0
 *
 * Joining its cgroups is left to pause itself, after skiff-ns has returned: on cgroup v1 every
 * migration waits for an RCU grace period (~10-20 ms here), which RunPodSandbox need not wait
 * for. Should a join fail, pause says why on stderr and exits 1, and the sandbox is NOTREADY.
 *
 * As PID 1 of a pid namespace the kernel drops every signal whose disposition is the default, so
 * handlers are installed for the three we act on. The signals stay blocked except inside
 * sigsuspend(), so the handlers only record what arrived and the work happens here in main().
 */
#include "common.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

static volatile sig_atomic_t got_down;

static void on_signal(int signo) {
  if (signo != SIGCHLD)
    got_down = 1;
}

static void reap_all(void) {
  for (;;) {
    pid_t pid = waitpid(-1, NULL, WNOHANG);
    if (pid > 0)
      continue;
    if (pid < 0 && errno == EINTR)
      continue;
    return; /* 0: children left but none exited; -1 ECHILD: no children at all */
  }
}

/* "0" names the writing process itself, whatever pid namespace it is in. */
static int join_cgroup(const char *procs) {
  int fd = SKIFF_RETRY(open(procs, O_WRONLY | O_CLOEXEC));
  if (fd < 0 || write_all(fd, "0", 1) < 0) {
    fprintf(stderr, "skiff-pause: join cgroup %s: %s\n", procs, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "-v") == 0) {
    printf("skiff-pause %s\n", SKIFF_VERSION);
    return 0;
  }
  for (int i = 1; i < argc; i += 2) {
    if (strcmp(argv[i], "--cgroup-procs") != 0 || i + 1 >= argc || argv[i + 1][0] != '/') {
      fprintf(stderr, "usage: skiff-pause [--cgroup-procs FILE]... | -v\n");
      return 2;
    }
  }

  sigset_t handled, waitmask;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  if (sigprocmask(SIG_BLOCK, &handled, &waitmask) < 0) {
    perror("skiff-pause: sigprocmask");
    return 1;
  }
  /* waitmask is the mask we started with, minus the three: sigsuspend opens exactly those. */
  sigdelset(&waitmask, SIGCHLD);
  sigdelset(&waitmask, SIGTERM);
  sigdelset(&waitmask, SIGINT);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigfillset(&sa.sa_mask);
  const int signals[] = {SIGCHLD, SIGTERM, SIGINT};
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    if (sigaction(signals[i], &sa, NULL) < 0) {
      perror("skiff-pause: sigaction");
      return 1;
    }
  }

  for (int i = 1; i < argc; i += 2)
    if (join_cgroup(argv[i + 1]) < 0)
      return 1;

  /* Zombies may have been handed to us before the SIGCHLD handler existed. */
  reap_all();
  while (!got_down) {
    sigsuspend(&waitmask); /* always returns -1 EINTR, after a handler ran */
    reap_all();
  }
  return 0;
}
