/*
 * Measures, in a fresh process, what one step of a login costs: CPU
 * (user+system, getrusage), wall time, and the process's peak RSS after it.
 * Every library is loaded with dlopen(RTLD_NOW), as libpam loads a module,
 * so that its loading is part of the step that needs it.
 *
 *   load_probe dlopen LIB       dlopen(LIB), then dlclose (as pam_end does)
 *   load_probe curlinit         dlopen libcurl, then curl_global_init
 *   load_probe tls MODE PATH HOST PORT
 *                               OpenSSL only: load libssl, initialise it
 *                               and make a client SSL_CTX; load the trust
 *                               anchors (MODE cafile: a PEM bundle, read
 *                               whole; capath: a hashed directory, read
 *                               on demand); connect and complete a verified
 *                               TLS handshake with HOST:PORT
 *
 * Prints "step=NAME wall_us=W cpu_us=C maxrss_kb=K" lines.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long cpu_us(long *maxrss) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (maxrss != NULL) *maxrss = ru.ru_maxrss;
  return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static long long t0, c0;
static void start(void) {
  t0 = now_us();
  c0 = cpu_us(NULL);
}
static void stop(const char *step) {
  long rss = 0;
  const long long c = cpu_us(&rss);
  printf("step=%s wall_us=%lld cpu_us=%lld maxrss_kb=%ld\n", step,
         now_us() - t0, c - c0, rss);
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (p == NULL) {
    fprintf(stderr, "%s: %s\n", name, dlerror());
    exit(1);
  }
  return p;
}

/* The OpenSSL 3 entry points used, with their real signatures. */
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_method_st SSL_METHOD;
typedef struct x509_verify_param_st X509_VERIFY_PARAM;

static int tls(const char *mode, const char *path, const char *host,
               int port) {
  start();
  void *crypto = dlopen("libcrypto.so.3", RTLD_NOW);
  void *ssl = dlopen("libssl.so.3", RTLD_NOW);
  stop("dlopen_libssl");
  if (crypto == NULL || ssl == NULL) return 1;
  int (*init_ssl)(unsigned long long, const void *) =
      sym(ssl, "OPENSSL_init_ssl");
  const SSL_METHOD *(*client_method)(void) = sym(ssl, "TLS_client_method");
  SSL_CTX *(*ctx_new)(const SSL_METHOD *) = sym(ssl, "SSL_CTX_new");
  int (*load)(SSL_CTX *, const char *, const char *) =
      sym(ssl, "SSL_CTX_load_verify_locations");
  void (*set_verify)(SSL_CTX *, int, void *) = sym(ssl, "SSL_CTX_set_verify");
  SSL *(*ssl_new)(SSL_CTX *) = sym(ssl, "SSL_new");
  int (*set_fd)(SSL *, int) = sym(ssl, "SSL_set_fd");
  X509_VERIFY_PARAM *(*param)(SSL *) = sym(ssl, "SSL_get0_param");
  int (*set_ip)(X509_VERIFY_PARAM *, const char *) =
      sym(crypto, "X509_VERIFY_PARAM_set1_ip_asc");
  int (*connect_tls)(SSL *) = sym(ssl, "SSL_connect");
  long (*verify_result)(const SSL *) = sym(ssl, "SSL_get_verify_result");

  start();
  init_ssl(0x00000040L /* OPENSSL_INIT_LOAD_CONFIG */, NULL);
  SSL_CTX *ctx = ctx_new(client_method());
  stop("openssl_init");
  start();
  const int ok = strcmp(mode, "cafile") == 0 ? load(ctx, path, NULL)
                                             : load(ctx, NULL, path);
  stop(strcmp(mode, "cafile") == 0 ? "load_cafile" : "load_capath");
  if (ok != 1) return 1;
  set_verify(ctx, 1 /* SSL_VERIFY_PEER */, NULL);

  start();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, host, &sa.sin_addr);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return 1;
  SSL *s = ssl_new(ctx);
  set_fd(s, fd);
  set_ip(param(s), host);
  const int hs = connect_tls(s);
  stop("tls_handshake");
  close(fd);
  return hs == 1 && verify_result(s) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "dlopen") == 0) {
    start();
    void *h = dlopen(argv[2], RTLD_NOW);
    stop("dlopen");
    if (h == NULL) {
      fprintf(stderr, "%s\n", dlerror());
      return 1;
    }
    start();
    dlclose(h);
    stop("dlclose");
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "curlinit") == 0) {
    start();
    void *h = dlopen("libcurl.so.4", RTLD_NOW);
    stop("dlopen");
    if (h == NULL) return 1;
    int (*init)(long) = (int (*)(long))sym(h, "curl_global_init");
    start();
    init(3L /* CURL_GLOBAL_DEFAULT */);
    stop("curl_global_init");
    return 0;
  }
  if (argc >= 6 && strcmp(argv[1], "tls") == 0)
    return tls(argv[2], argv[3], argv[4], atoi(argv[5]));
  fprintf(stderr,
          "usage: %s dlopen LIB | curlinit | tls cafile|capath PATH HOST PORT\n",
          argv[0]);
  return 2;
}
