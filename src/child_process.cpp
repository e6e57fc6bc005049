#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

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

ChildOutput collect_child(pid_t pid, int out_fd, int err_fd,
                          std::chrono::steady_clock::time_point deadline,
                          std::size_t out_cap, std::size_t err_cap) {
  using Clock = std::chrono::steady_clock;
  ChildOutput r;
  auto millis_left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 Clock::now())
        .count();
  };
  int fds_open[2] = {out_fd, err_fd};
  while (fds_open[0] >= 0 || fds_open[1] >= 0) {
    const long long left = millis_left();
    if (left <= 0) {
      r.timed_out = true;
      break;
    }
    pollfd fds[2] = {{fds_open[0], POLLIN, 0}, {fds_open[1], POLLIN, 0}};
    const int ready =
        poll(fds, 2, static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    char buffer[4096];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = read(fds[i].fd, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds_open[i] = -1;  // closed by the caller's owner
        continue;
      }
      std::string& sink = i == 0 ? r.out : r.err;
      const std::size_t cap = i == 0 ? out_cap : err_cap;
      const std::size_t room = cap - std::min(cap, sink.size());
      sink.append(buffer,
                  std::min<std::size_t>(room, static_cast<std::size_t>(got)));
      if (i == 0 && static_cast<std::size_t>(got) > room) r.too_long = true;
    }
    if (r.too_long) break;
  }
  // The exit, within what is left of the time.
  while (!r.timed_out && !r.too_long) {
    const pid_t w = waitpid(pid, &r.status, WNOHANG);
    if (w == pid) {
      r.exited = true;
      break;
    }
    if (w < 0 && errno != EINTR) break;
    if (millis_left() <= 0) {
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

}  // namespace ptv
