/*
 * Runs one command and reports what it cost, from the kernel's accounting:
 *   measure OUT_FILE COMMAND [ARGS...]
 * writes "start_ns=T end_ns=T status=S utime_us=U stime_us=S maxrss_kb=K"
 * to OUT_FILE (start and end are CLOCK_MONOTONIC around fork and wait4).
 * The command's stdout and stderr are those of this process.
 *
 * The command runs in a child of this small process rather than of the
 * runner: ru_maxrss of a child starts from the high-water mark of the memory
 * it was forked from, so forking from a large interpreter would inflate it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OUT_FILE COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (out == NULL) {
    perror(argv[1]);
    return 2;
  }
  const long long t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    fclose(out);
    execv(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  pid_t w;
  do {
    w = wait4(pid, &status, 0, &ru);
  } while (w < 0 && errno == EINTR);
  const long long t1 = now_ns();
  if (w < 0) {
    perror("wait4");
    return 2;
  }
  fprintf(out,
          "start_ns=%lld end_ns=%lld status=%d utime_us=%lld stime_us=%lld "
          "maxrss_kb=%ld\n",
          t0, t1, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
          (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
          (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec,
          ru.ru_maxrss);
  fclose(out);
  return 0;
}
