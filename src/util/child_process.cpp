#include "util/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "util/stop_signals.hpp"

namespace ptv {

bool make_pipe(Pipe& p) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return false;
  p.read = FileDescriptor(fds[0]);
  p.write = FileDescriptor(fds[1]);
  return true;
}

DefaultSigchld::DefaultSigchld() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  saved_ok_ = sigaction(SIGCHLD, &dfl, &saved_) == 0;
}

DefaultSigchld::~DefaultSigchld() {
  if (saved_ok_) sigaction(SIGCHLD, &saved_, nullptr);
}

namespace {

using Clock = std::chrono::steady_clock;

// Reads what is ready on one pipe; false once it is closed.
bool drain_one(int fd, std::string& sink, std::size_t cap, bool& over) {
  char buffer[4096];
  const ssize_t got = read(fd, buffer, sizeof buffer);
  if (got < 0) return errno == EINTR || errno == EAGAIN;
  if (got == 0) return false;
  const std::size_t room = cap - std::min(cap, sink.size());
  sink.append(buffer, std::min<std::size_t>(room, static_cast<std::size_t>(got)));
  if (static_cast<std::size_t>(got) > room) over = true;
  return true;
}

long long millis_until(Clock::time_point t) {
  const auto d =
      std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now());
  return d.count() > 0 ? d.count() : 0;
}

}  // namespace

ChildOutput collect_child(pid_t pid, int out_fd, int err_fd,
                          Clock::time_point deadline, std::size_t out_cap,
                          std::size_t err_cap) {
  ChildOutput r;
  HoldStopSignals hold;
  const auto budget = deadline - Clock::now();
  int fds_open[2] = {out_fd, err_fd};
  while (fds_open[0] >= 0 || fds_open[1] >= 0) {
    pollfd fds[2] = {{fds_open[0], POLLIN, 0}, {fds_open[1], POLLIN, 0}};
    // At the deadline this is a last look (timeout 0): what has arrived
    // is read before the deadline is judged.
    const int ready = poll(
        fds, 2, static_cast<int>(std::min<long long>(millis_until(deadline), INT_MAX)));
    if (ready < 0 && errno != EINTR) break;
    bool err_over = false;  // stderr past its cap is only cut, not fatal
    for (int i = 0; ready > 0 && i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      if (!drain_one(fds[i].fd, i == 0 ? r.out : r.err,
                     i == 0 ? out_cap : err_cap, i == 0 ? r.too_long : err_over))
        fds_open[i] = -1;  // closed by the caller's owner
    }
    if (r.too_long) break;
    if (hold.continued()) deadline = std::max(deadline, Clock::now() + budget);
    if (ready == 0 && Clock::now() >= deadline) {
      r.timed_out = true;
      break;
    }
  }
  // The exit, within what is left of the time (looked at once more after
  // the deadline before it counts).
  while (!r.timed_out && !r.too_long) {
    const pid_t w = waitpid(pid, &r.status, WNOHANG);
    if (w == pid) {
      r.exited = true;
      break;
    }
    if (w < 0 && errno != EINTR) break;
    if (hold.continued()) deadline = std::max(deadline, Clock::now() + budget);
    if (Clock::now() >= deadline) {
      if (waitpid(pid, &r.status, WNOHANG) == pid) {
        r.exited = true;
        break;
      }
      r.timed_out = true;
      break;
    }
    usleep(1000);
  }
  if (!r.exited) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
    }
  }
  return r;
}

std::expected<ChildOutput, std::string> run_child(const ChildBody& body,
                                                  const ChildLimits& limits) {
  Pipe out, err;
  if (!make_pipe(out) || (limits.err_cap > 0 && !make_pipe(err)))
    return std::unexpected(std::string("pipe: ") + std::strerror(errno));
  DefaultSigchld sigchld;
  const pid_t pid = fork();
  if (pid < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    out.read.reset();
    err.read.reset();
    body(out.write.get(), err.write.get());
    _exit(127);
  }
  // Also here, so that the group exists before a kill.
  if (!limits.own_session) setpgid(pid, pid);
  out.write.reset();
  err.write.reset();
  return collect_child(pid, out.read.get(), err.read.get(), limits.deadline,
                       limits.out_cap, limits.err_cap);
}

bool reset_resource_limits() noexcept {
  struct Limit {
    int resource;
    rlim_t soft;
    rlim_t hard;
    rlim_t floor;  // the least the child needs; 0: any
  };
  constexpr rlim_t kInf = RLIM_INFINITY;
  static const Limit kLimits[] = {
      {RLIMIT_NOFILE, 1024, 1024, 64},
      {RLIMIT_CORE, 0, 0, 0},
      {RLIMIT_CPU, kInf, kInf, 0},
      {RLIMIT_FSIZE, kInf, kInf, 0},
      {RLIMIT_DATA, kInf, kInf, rlim_t{256} << 20},
      {RLIMIT_AS, kInf, kInf, rlim_t{256} << 20},
      {RLIMIT_NPROC, kInf, kInf, 0},
      {RLIMIT_STACK, rlim_t{8} << 20, kInf, rlim_t{1} << 20},
  };
  bool ok = true;
  for (const Limit& l : kLimits) {
    struct rlimit want {l.soft, l.hard};
    if (setrlimit(l.resource, &want) != 0) {
      // No CAP_SYS_RESOURCE: as far as the hard limit allows.
      struct rlimit now {};
      if (getrlimit(l.resource, &now) != 0) return false;
      want.rlim_max = now.rlim_max;
      if (want.rlim_cur > now.rlim_max) want.rlim_cur = now.rlim_max;
      (void)setrlimit(l.resource, &want);
    }
    struct rlimit got {};
    if (getrlimit(l.resource, &got) != 0) return false;
    if (l.floor != 0 && got.rlim_cur != kInf && got.rlim_cur < l.floor)
      ok = false;
  }
  return ok;
}

}  // namespace ptv
