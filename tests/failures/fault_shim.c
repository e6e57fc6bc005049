/* Injects local resource failures into the real module for the failure
 * table, preloaded after pam_wrapper: PTV_FAULT names the calls that fail
 * and the errno they fail with, for example
 *   PTV_FAULT=socket:EMFILE          every socket() fails (no descriptors)
 *   PTV_FAULT=pthread_create:EAGAIN  no thread can start
 *   PTV_FAULT=fork:EAGAIN            no process can start
 * Everything else goes to libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static int failing(const char *call) {
  const char *spec = getenv("PTV_FAULT");
  if (spec == NULL) return 0;
  const size_t n = strlen(call);
  for (const char *p = spec; (p = strstr(p, call)) != NULL; p += n) {
    if ((p == spec || p[-1] == ',') && p[n] == ':') {
      const char *e = p + n + 1;
      if (strncmp(e, "EMFILE", 6) == 0) return EMFILE;
      if (strncmp(e, "EAGAIN", 6) == 0) return EAGAIN;
      if (strncmp(e, "ENOMEM", 6) == 0) return ENOMEM;
      return EIO;
    }
  }
  return 0;
}

int socket(int domain, int type, int protocol) {
  static int (*real)(int, int, int);
  const int err = failing("socket");
  if (err != 0) {
    errno = err;
    return -1;
  }
  if (real == NULL) real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
  return real(domain, type, protocol);
}

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *),
                   void *arg) {
  static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                     void *);
  const int err = failing("pthread_create");
  if (err != 0) return err;
  if (real == NULL)
    real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
                    void *))dlsym(RTLD_NEXT, "pthread_create");
  return real(t, a, f, arg);
}

pid_t fork(void) {
  static pid_t (*real)(void);
  const int err = failing("fork");
  if (err != 0) {
    errno = err;
    return -1;
  }
  if (real == NULL) real = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
  return real();
}
