// The pieces that keep the caller of su from faking an outage: the stop
// signal guard, the collection of a child's answer across a stop of this
// process, the module's own name resolution and its classification, the
// resource limits a child starts with, and Secret's moves.
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <new>
#include <chrono>
#include <string>

#include "util/child_process.hpp"
#include "net/resolve.hpp"
#include "util/secret.hpp"
#include "util/stop_signals.hpp"
#include "unit_test.hpp"

using ptv::TransportErrorKind;
using Clock = std::chrono::steady_clock;

// Every allocation through operator new is counted: a Secret's move must
// not allocate (a copy could throw inside noexcept: std::terminate in sshd).
static std::size_t g_allocations = 0;
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n != 0 ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
using std::chrono::milliseconds;

namespace {

bool is_blocked(int sig) {
  sigset_t now;
  sigemptyset(&now);
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, sig) == 1;
}

// A process that stops this one after `after_ms`, for `stop_ms`, then
// continues it.
pid_t stop_me(long after_ms, long stop_ms) {
  const pid_t me = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    usleep(static_cast<useconds_t>(after_ms * 1000));
    kill(me, SIGSTOP);
    usleep(static_cast<useconds_t>(stop_ms * 1000));
    kill(me, SIGCONT);
    _exit(0);
  }
  return pid;
}

// A child that writes `answer` to a new pipe after `delay_ms` (nullptr:
// only waits that long); this process keeps the pipe's read end.
pid_t answering_child(ptv::Pipe& pipe, long delay_ms, const char* answer) {
  assert_true(ptv::make_pipe(pipe));
  const pid_t child = fork();
  if (child == 0) {
    pipe.read.reset();
    std::this_thread::sleep_for(milliseconds(delay_ms));
    if (answer != nullptr)
      (void)!write(pipe.write.get(), answer, std::strlen(answer));
    _exit(0);
  }
  pipe.write.reset();
  return child;
}

// Waits for child `pid`, which must have exited with status 0.
void expect_exit_zero(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

void reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void test_guard_holds_and_restores(void**) {
  assert_false(is_blocked(SIGTSTP));
  {
    ptv::HoldStopSignals hold;
    for (int sig : {SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT})
      assert_true(is_blocked(sig));
    assert_false(hold.continued());
  }
  for (int sig : {SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT})
    assert_false(is_blocked(sig));
}

void test_guard_sees_a_stop(void**) {
  ptv::HoldStopSignals hold;
  const pid_t helper = stop_me(50, 200);
  reap(helper);  // returns once we were stopped and continued
  assert_true(hold.continued());
  assert_false(hold.continued());  // once per stop
  // A SIGCONT without a stop (the invoking user may send one): counted as
  // one too, which only makes the module wait longer.
  kill(getpid(), SIGCONT);
  assert_true(hold.continued());
}

// The child answers at 100 ms; this process is stopped from 20 ms to well
// past the deadline (300 ms). The answer that arrived meanwhile is read:
// no timeout. The paired case: a child that never answers times out.
void test_collect_reads_before_judging(void**) {
  ptv::Pipe pipe;
  const pid_t child = answering_child(pipe, 100, "answer");
  const pid_t helper = stop_me(20, 900);
  const auto deadline = Clock::now() + milliseconds(300);
  const ptv::ChildOutput out =
      ptv::collect_child(child, pipe.read.get(), -1, deadline, 64, 0);
  reap(helper);
  assert_false(out.timed_out);
  assert_true(out.exited);
  assert_str_eq(out.out, "answer");

  // The deadline already passed while this process was busy elsewhere
  // (not scheduled, say), and the child's answer is waiting in the pipe:
  // it is read, not judged late.
  ptv::Pipe ready;
  const auto stale = Clock::now() + milliseconds(10);
  const pid_t quick = answering_child(ready, 0, "early");
  usleep(200000);
  const ptv::ChildOutput early =
      ptv::collect_child(quick, ready.read.get(), -1, stale, 64, 0);
  assert_false(early.timed_out);
  assert_true(early.exited);
  assert_str_eq(early.out, "early");

  ptv::Pipe silent;
  const pid_t sleeper = answering_child(silent, 10000, nullptr);
  const auto started = Clock::now();
  const ptv::ChildOutput late = ptv::collect_child(
      sleeper, silent.read.get(), -1, Clock::now() + milliseconds(200), 64, 0);
  assert_true(late.timed_out);
  assert_true(Clock::now() - started < milliseconds(2000));
}

void test_resolver_classification(void**) {
  // What the resolver says about the name: an outage.
  for (int rc : {EAI_NONAME, EAI_AGAIN, EAI_FAIL})
    assert_true(ptv::classify_resolver_failure(rc, 0) ==
                TransportErrorKind::Unreachable);
  // The same answers when glibc could not open a descriptor or allocate:
  // it says "no such name" with errno EMFILE. Local, never an outage.
  for (int err : {EMFILE, ENFILE, ENOMEM, ENOBUFS})
    for (int rc : {EAI_NONAME, EAI_AGAIN, EAI_FAIL})
      assert_true(ptv::classify_resolver_failure(rc, err) ==
                  TransportErrorKind::LocalResource);
  assert_true(ptv::classify_resolver_failure(EAI_MEMORY, 0) ==
              TransportErrorKind::LocalResource);
  assert_true(ptv::classify_resolver_failure(EAI_SYSTEM, EIO) ==
              TransportErrorKind::LocalResource);
  assert_true(ptv::classify_resolver_failure(EAI_SERVICE, 0) ==
              TransportErrorKind::Internal);
}

void test_resolver_real_names(void**) {
  const auto deadline = Clock::now() + milliseconds(3000);
  auto local = ptv::resolve_addresses("localhost", 443, deadline);
  assert_true(local.has_value());
  bool loopback = false;
  for (const std::string& a : *local)
    loopback |= a == "127.0.0.1" || a == "[::1]";
  assert_true(loopback);
  auto none = ptv::resolve_addresses("nonexistent.invalid", 443,
                                     Clock::now() + milliseconds(3000));
  assert_false(none.has_value());
  assert_true(none.error().kind == TransportErrorKind::Unreachable);
  assert_contains(none.error().detail, "nonexistent.invalid");
}

// Out of descriptors while resolving: glibc's answer is "no such name",
// and the module must see through it.
void test_resolver_out_of_descriptors(void**) {
  const pid_t pid = fork();
  if (pid == 0) {
    struct rlimit tight {};
    getrlimit(RLIMIT_NOFILE, &tight);
    // Everything below the limit in use: no descriptor for /etc/hosts.
    while (dup(0) >= 0) {
    }
    auto r = ptv::resolve_addresses("localhost", 443,
                                    Clock::now() + milliseconds(3000));
    _exit(!r.has_value() && r.error().kind == TransportErrorKind::LocalResource
              ? 0
              : 1);
  }
  expect_exit_zero(pid);
}

void test_host_of_url(void**) {
  struct Case {
    const char* url;
    int default_port;
    const char* host;
    int port;
    bool literal;
  };
  const Case cases[] = {
      {"https://verify.twilio.com", 443, "verify.twilio.com", 443, false},
      {"https://127.0.0.1:8443/base", 443, "127.0.0.1", 8443, true},
      {"https://[::1]:9000", 443, "::1", 9000, true},
      {"http://user:pw@proxy.example:3128", 1080, "proxy.example", 3128, false},
  };
  for (const Case& c : cases) {
    const auto h = ptv::host_of_url(c.url, c.default_port);
    assert_true(h.has_value());
    assert_str_eq(h->host, c.host);
    assert_int_equal(h->port, c.port);
    assert_int_equal(h->literal, c.literal);
  }
  assert_int_equal(ptv::host_of_url("http://proxy.example", 1080)->port, 1080);
  assert_false(ptv::host_of_url("https://host:99999", 443).has_value());
  assert_false(ptv::host_of_url("https://host:12a", 443).has_value());
  assert_false(ptv::host_of_url("https://[::1", 443).has_value());
  assert_false(ptv::host_of_url("https://:443", 443).has_value());
}

// A child starts with known limits, not the caller's; below the floor it
// says so.
void test_child_limits(void**) {
  const pid_t pid = fork();
  if (pid == 0) {
    struct rlimit low {8, 8};  // what prlimit --nofile=8 leaves
    struct rlimit cpu {1, RLIM_INFINITY};
    setrlimit(RLIMIT_CPU, &cpu);
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) _exit(2);
    const bool ok = ptv::reset_resource_limits();
    struct rlimit files {}, core {}, cpu_now {};
    getrlimit(RLIMIT_NOFILE, &files);
    getrlimit(RLIMIT_CORE, &core);
    getrlimit(RLIMIT_CPU, &cpu_now);
    // With CAP_SYS_RESOURCE the hard limit is raised again and the child
    // may run; without it, the floor (64) is not met and it must not.
    const bool raised = files.rlim_cur == 1024;
    if (core.rlim_cur != 0) _exit(3);
    if (cpu_now.rlim_cur != RLIM_INFINITY) _exit(4);
    _exit(ok == raised ? 0 : 5);
  }
  expect_exit_zero(pid);
  // With the usual limits the floor is met.
  const pid_t normal = fork();
  if (normal == 0) _exit(ptv::reset_resource_limits() ? 0 : 1);
  expect_exit_zero(normal);
}

// A move leaves no copy of a short secret in the source's buffer.
void test_secret_move_wipes_source(void**) {
  ptv::Secret a("123456");
  const char* old = a.view().data();  // the small-string buffer
  ptv::Secret b(std::move(a));
  assert_str_eq(b.view(), "123456");
  assert_true(a.empty());
  assert_int_equal(std::string(old, 6).find("123456"), std::string::npos);
  ptv::Secret c("a-long-secret-that-is-on-the-heap-0123456789");
  ptv::Secret d("987654");
  const char* d_buffer = d.view().data();
  const std::size_t before = g_allocations;
  ptv::Secret e(std::move(c));
  c = std::move(e);
  assert_int_equal(g_allocations, before);  // no allocation, so no throw
  d = std::move(c);
  assert_int_equal(g_allocations, before);
  assert_str_eq(d.view(), "a-long-secret-that-is-on-the-heap-0123456789");
  assert_true(c.empty());
  assert_int_equal(std::string(d_buffer, 6).find("987654"), std::string::npos);
  static_assert(std::is_nothrow_move_constructible_v<ptv::Secret>);
  static_assert(std::is_nothrow_move_assignable_v<ptv::Secret>);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_guard_holds_and_restores),
      cmocka_unit_test(test_guard_sees_a_stop),
      cmocka_unit_test(test_collect_reads_before_judging),
      cmocka_unit_test(test_resolver_classification),
      cmocka_unit_test(test_resolver_real_names),
      cmocka_unit_test(test_resolver_out_of_descriptors),
      cmocka_unit_test(test_host_of_url),
      cmocka_unit_test(test_child_limits),
      cmocka_unit_test(test_secret_move_wipes_source),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
