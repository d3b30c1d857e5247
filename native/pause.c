/*
 * skiff-pause: PID 1 of a pod sandbox. It holds the sandbox's ipc/uts/pid namespaces by existing,
 * reaps every zombie re-parented to it, and exits 0 on SIGTERM or SIGINT. Nothing else.
 *
 *   skiff-pause        run until SIGTERM/SIGINT
 *   skiff-pause -v     print "skiff-pause <version>" and exit 0
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

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "-v") == 0) {
    printf("skiff-pause %s\n", SKIFF_VERSION);
    return 0;
  }
  if (argc != 1) {
    fprintf(stderr, "usage: skiff-pause [-v]\n");
    return 2;
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

  /* Zombies may have been handed to us before the SIGCHLD handler existed. */
  reap_all();
  while (!got_down) {
    sigsuspend(&waitmask); /* always returns -1 EINTR, after a handler ran */
    reap_all();
  }
  return 0;
}
