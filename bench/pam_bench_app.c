/*
 * A minimal PAM application for the benchmark: one pam_start,
 * pam_authenticate and pam_end per process, as sshd does per connection.
 *
 * Usage: pam_bench_app [--private-tmp] [--barrier FIFO] [--ready-fd N]
 *                      SERVICE USER PHONE CONTROL_PORT
 *
 * The conversation answers an echo-off prompt with the newest code the
 * emulator's outbox holds for PHONE (GET /outbox on its control port).
 *
 * --private-tmp  moves the process into a mount namespace of its own with
 *                a private tmpfs on /tmp, then executes itself again with
 *                LD_PRELOAD set to $BENCH_PRELOAD (pam_wrapper keeps its
 *                per-process copy of the services in /tmp/pam.X, made when
 *                it is loaded, and at most 62 processes can share one /tmp).
 * --ready-fd N   writes one byte to fd N once set up, then closes it.
 * --barrier FIFO opens FIFO for reading before pam_start, which blocks until
 *                the runner opens its other end: all processes start at once.
 *
 * One line on stdout, all times CLOCK_MONOTONIC nanoseconds and CPU
 * (user+system of this process so far) microseconds:
 *   rc=N main=T cpu_main=C go=T started=T cpu_started=C prompt=T
 *   cpu_prompt=C answered=T cpu_answered=C authed=T cpu_authed=C ended=T
 *   cpu_ended=C conv_ns=D conv_cpu=C prompts=K dirty_kb=K
 * dirty_kb is the process's private dirty memory after pam_end (the module
 * stays loaded, -z nodelete), from /proc/self/smaps_rollup.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *g_phone;
static int g_control_port;
static long long g_prompt_ns, g_prompt_cpu, g_answered_ns, g_answered_cpu;
static long long g_conv_ns, g_conv_cpu;
static int g_prompts;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long private_dirty_kb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (f == NULL) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "Private_Dirty: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

static long long cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* GET /outbox from the control port; returns a malloc'd body or NULL. */
static char *fetch_outbox(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return NULL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)g_control_port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return NULL;
  }
  static const char req[] =
      "GET /outbox HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
    close(fd);
    return NULL;
  }
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap + 1);
  if (buf == NULL) {
    close(fd);
    return NULL;
  }
  for (;;) {
    if (len == cap) {
      char *bigger = realloc(buf, cap * 2 + 1);
      if (bigger == NULL) break;
      buf = bigger;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return buf;
}

/* The code of the newest outbox message to g_phone, or NULL. */
static char *code_for_phone(void) {
  char *body = fetch_outbox();
  if (body == NULL) return NULL;
  char needle[64];
  snprintf(needle, sizeof needle, "\"to\": \"%s\"", g_phone);
  const char *last = NULL;
  for (const char *p = strstr(body, needle); p != NULL;
       p = strstr(p + 1, needle))
    last = p;
  char *code = NULL;
  if (last != NULL) {
    const char *c = strstr(last, "\"code\": \"");
    if (c != NULL) {
      c += strlen("\"code\": \"");
      size_t n = strspn(c, "0123456789");
      if (n >= 4 && n <= 10) code = strndup(c, n);
    }
  }
  free(body);
  return code;
}

static int converse(int n, const struct pam_message **msg,
                    struct pam_response **resp, void *data) {
  (void)data;
  if (n <= 0 || n > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
  struct pam_response *r = calloc((size_t)n, sizeof *r);
  if (r == NULL) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    switch (msg[i]->msg_style) {
      case PAM_PROMPT_ECHO_OFF:
      case PAM_PROMPT_ECHO_ON: {
        const long long t0 = now_ns(), c0 = cpu_us();
        if (g_prompts++ == 0) {
          g_prompt_ns = t0;
          g_prompt_cpu = c0;
        }
        r[i].resp = code_for_phone();
        const long long t1 = now_ns(), c1 = cpu_us();
        g_conv_ns += t1 - t0;
        g_conv_cpu += c1 - c0;
        g_answered_ns = t1;
        g_answered_cpu = c1;
        if (r[i].resp == NULL) {
          for (int j = 0; j < i; ++j) free(r[j].resp);
          free(r);
          return PAM_CONV_ERR;
        }
        break;
      }
      case PAM_ERROR_MSG:
      case PAM_TEXT_INFO:
        fprintf(stderr, "%s\n", msg[i]->msg);
        break;
      default:
        for (int j = 0; j < i; ++j) free(r[j].resp);
        free(r);
        return PAM_CONV_ERR;
    }
  }
  *resp = r;
  return PAM_SUCCESS;
}

static int private_tmp(void) {
  if (unshare(CLONE_NEWNS) != 0) return -1;
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -1;
  return mount("bench-tmp", "/tmp", "tmpfs", 0, "size=4m,mode=1777");
}

int main(int argc, char **argv) {
  const long long t_main = now_ns(), c_main = cpu_us();
  const char *barrier = NULL;
  int ready_fd = -1, use_private_tmp = 0, i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; ++i) {
    if (strcmp(argv[i], "--private-tmp") == 0) {
      use_private_tmp = 1;
    } else if (strcmp(argv[i], "--barrier") == 0 && i + 1 < argc) {
      barrier = argv[++i];
    } else if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc) {
      ready_fd = atoi(argv[++i]);
    } else {
      break;
    }
  }
  if (argc - i != 4) {
    fprintf(stderr,
            "usage: %s [--private-tmp] [--barrier FIFO] [--ready-fd N] "
            "SERVICE USER PHONE CONTROL_PORT\n",
            argv[0]);
    return 2;
  }
  const char *service = argv[i], *user = argv[i + 1];
  g_phone = argv[i + 2];
  g_control_port = atoi(argv[i + 3]);

  if (use_private_tmp) {
    const char *preload = getenv("BENCH_PRELOAD");
    if (private_tmp() != 0 || preload == NULL ||
        setenv("LD_PRELOAD", preload, 1) != 0) {
      perror("private /tmp");
      return 3;
    }
    /* The same arguments without --private-tmp. */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (args == NULL) return 3;
    int k = 0;
    for (int j = 0; j < argc; ++j)
      if (strcmp(argv[j], "--private-tmp") != 0) args[k++] = argv[j];
    execv("/proc/self/exe", args);
    perror("execv");
    return 3;
  }
  if (ready_fd >= 0) {
    if (write(ready_fd, "r", 1) != 1) return 3;
    close(ready_fd);
  }
  if (barrier != NULL) {
    int fd = open(barrier, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      perror("barrier");
      return 3;
    }
    close(fd);
  }
  const long long t_go = now_ns();

  struct pam_conv conv = {converse, NULL};
  pam_handle_t *pamh = NULL;
  int rc = pam_start(service, user, &conv, &pamh);
  const long long t_started = now_ns(), c_started = cpu_us();
  if (rc == PAM_SUCCESS) rc = pam_authenticate(pamh, 0);
  const long long t_authed = now_ns(), c_authed = cpu_us();
  if (pamh != NULL) pam_end(pamh, rc);
  const long long t_ended = now_ns(), c_ended = cpu_us();
  const long dirty_kb = private_dirty_kb();

  printf("rc=%d main=%lld cpu_main=%lld go=%lld started=%lld cpu_started=%lld "
         "prompt=%lld cpu_prompt=%lld answered=%lld cpu_answered=%lld "
         "authed=%lld cpu_authed=%lld ended=%lld cpu_ended=%lld conv_ns=%lld "
         "conv_cpu=%lld prompts=%d dirty_kb=%ld\n",
         rc, t_main, c_main, t_go, t_started, c_started, g_prompt_ns,
         g_prompt_cpu, g_answered_ns, g_answered_cpu, t_authed, c_authed,
         t_ended, c_ended, g_conv_ns, g_conv_cpu, g_prompts, dirty_kb);
  return rc == PAM_SUCCESS ? 0 : 1;
}
