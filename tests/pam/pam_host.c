/* A minimal PAM application for the tests, like pamtester: authenticates
 * USER through SERVICE, asking every prompt on stdin and printing every
 * message. With --ruid UID it first sets its real uid to UID and keeps
 * the effective and saved uid 0: the ids of su or sudo while they
 * authenticate, without exec'ing a setuid binary (which would drop the
 * LD_PRELOADed pam_wrapper and nss_wrapper).
 *
 * With --threads N it first starts N threads that keep taking the locks a
 * fork could copy held (malloc's, stdio's, the time zone's) for the whole
 * login: the module must still complete in a threaded host. (Not NSS's:
 * under nss_wrapper, which is not thread-safe, concurrent getpwnam_r calls
 * crash inside the wrapper itself.)
 *
 * Usage: pam_host [--ruid UID] [--threads N] SERVICE USER
 * Prints "pam_host: successfully authenticated" or "pam_host: " and the
 * PAM error text; exits 0 only on success. */
#define _GNU_SOURCE
#include <pthread.h>
#include <security/pam_appl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int converse(int n, const struct pam_message **msg,
                    struct pam_response **resp, void *data) {
  (void)data;
  struct pam_response *r = calloc((size_t)n, sizeof *r);
  if (r == NULL) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    const int style = msg[i]->msg_style;
    if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
      fputs(msg[i]->msg, stdout);
      fflush(stdout);
      char line[1024];
      if (fgets(line, sizeof line, stdin) == NULL) {
        for (int j = 0; j < i; ++j) free(r[j].resp);
        free(r);
        return PAM_CONV_ERR;
      }
      line[strcspn(line, "\r\n")] = '\0';
      r[i].resp = strdup(line);
      explicit_bzero(line, sizeof line);
    } else {
      printf("%s\n", msg[i]->msg);
      fflush(stdout);
    }
  }
  *resp = r;
  return PAM_SUCCESS;
}

static atomic_int g_stop;

static void *busy(void *arg) {
  (void)arg;
  unsigned n = 0;
  while (!atomic_load(&g_stop)) {
    void *p = malloc(16 + (n++ % 4096));
    char line[64];
    snprintf(line, sizeof line, "%u", n);
    flockfile(stderr);
    funlockfile(stderr);
    const time_t now = time(NULL);
    struct tm parts;
    localtime_r(&now, &parts);
    free(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int arg = 1;
  int threads = 0;
  while (arg + 1 < argc && strncmp(argv[arg], "--", 2) == 0) {
    if (strcmp(argv[arg], "--ruid") == 0) {
      const uid_t uid = (uid_t)strtoul(argv[arg + 1], NULL, 10);
      if (setresuid(uid, (uid_t)-1, (uid_t)-1) != 0) {
        perror("pam_host: setresuid");
        return 2;
      }
    } else if (strcmp(argv[arg], "--threads") == 0) {
      threads = atoi(argv[arg + 1]);
    } else {
      break;
    }
    arg += 2;
  }
  if (argc - arg != 2) {
    fprintf(stderr, "usage: pam_host [--ruid UID] [--threads N] SERVICE USER\n");
    return 2;
  }
  pthread_t ids[64];
  if (threads > 64) threads = 64;
  for (int i = 0; i < threads; ++i) pthread_create(&ids[i], NULL, busy, NULL);
  const struct pam_conv conv = {converse, NULL};
  pam_handle_t *pamh = NULL;
  int rc = pam_start(argv[arg], argv[arg + 1], &conv, &pamh);
  if (rc == PAM_SUCCESS) rc = pam_authenticate(pamh, 0);
  if (rc == PAM_SUCCESS)
    printf("pam_host: successfully authenticated\n");
  else
    printf("pam_host: %s\n", pam_strerror(pamh, rc));
  pam_end(pamh, rc);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < threads; ++i) pthread_join(ids[i], NULL);
  return rc == PAM_SUCCESS ? 0 : 1;
}
