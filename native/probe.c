/*
 * skiff-probe: a tiny static test probe that e2e tests bind-mount into containers (crun's
 * tests/init.c is the model). It tries one syscall and prints "ok" or the errno's name, so a test
 * sees from inside what the spec applied (seccomp, capabilities). Exits 0 whenever it could try.
 *
 *   skiff-probe status                 the Seccomp, Seccomp_filters and NoNewPrivs lines of
 *                                      /proc/self/status
 *   skiff-probe unshare-user           unshare(CLONE_NEWUSER)
 *   skiff-probe unshare-mount          unshare(CLONE_NEWNS)
 *   skiff-probe keyctl                 keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
 *   skiff-probe mount DIR              mount a tmpfs on DIR
 *   skiff-probe chmod PATH MODE        chmod(PATH, octal MODE)
 *   skiff-probe euid                   the effective uid (setuid tests: busybox drops a setuid root)
 */
#include "common.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>

#define KEYCTL_GET_KEYRING_ID    0 /* linux/keyctl.h */
#define KEY_SPEC_SESSION_KEYRING -3

static const struct {
  int no;
  const char *name;
} errnos[] = {
    {EPERM, "EPERM"},     {ENOENT, "ENOENT"}, {EACCES, "EACCES"}, {ENOSYS, "ENOSYS"},
    {EINVAL, "EINVAL"},   {EFAULT, "EFAULT"}, {EBUSY, "EBUSY"},   {EROFS, "EROFS"},
    {ENOTDIR, "ENOTDIR"}, {ENOMEM, "ENOMEM"}, {ENOSPC, "ENOSPC"}, {EEXIST, "EEXIST"},
    {EAGAIN, "EAGAIN"},   {EUSERS, "EUSERS"}, {ENOKEY, "ENOKEY"},
};

static int report(long r) {
  if (r >= 0) {
    puts("ok");
    return 0;
  }
  int e = errno;
  for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
    if (errnos[i].no == e) {
      puts(errnos[i].name);
      return 0;
    }
  printf("errno %d\n", e);
  return 0;
}

static int status(void) {
  FILE *f = fopen("/proc/self/status", "re");
  if (f == NULL) {
    fprintf(stderr, "skiff-probe: open /proc/self/status: %s\n", strerror(errno));
    return 1;
  }
  char line[256];
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "Seccomp", 7) == 0 || strncmp(line, "NoNewPrivs", 10) == 0)
      fputs(line, stdout);
  fclose(f);
  return 0;
}

static int usage(void) {
  fputs("usage: skiff-probe status | unshare-user | unshare-mount | keyctl | mount DIR | chmod "
        "PATH MODE | euid\n",
        stderr);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  const char *what = argv[1];
  if (strcmp(what, "status") == 0 && argc == 2)
    return status();
  if (strcmp(what, "unshare-user") == 0 && argc == 2)
    return report(unshare(CLONE_NEWUSER));
  if (strcmp(what, "unshare-mount") == 0 && argc == 2)
    return report(unshare(CLONE_NEWNS));
  if (strcmp(what, "keyctl") == 0 && argc == 2)
    return report(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  if (strcmp(what, "mount") == 0 && argc == 3)
    return report(mount("skiff-probe", argv[2], "tmpfs", 0, NULL));
  if (strcmp(what, "euid") == 0 && argc == 2)
    return printf("%d\n", (int)geteuid()) < 0;
  if (strcmp(what, "chmod") == 0 && argc == 4) {
    char *end;
    long mode = strtol(argv[3], &end, 8);
    if (*end != '\0' || mode < 0 || mode > 07777)
      return usage();
    return report(chmod(argv[2], (mode_t)mode));
  }
  return usage();
}
