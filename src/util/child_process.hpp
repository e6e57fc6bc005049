// Child processes of the module (the lookup command, the LDAP lookup):
// pipes owned by RAII, SIGCHLD restored to its default while a child runs,
// and the collection of a child's output under a deadline and a size cap,
// after which the child's whole process group is killed.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <expected>
#include <functional>
#include <string>

#include "util/file_descriptor.hpp"

namespace ptv {

// A pipe whose ends are closed on exec.
struct Pipe {
  FileDescriptor read;
  FileDescriptor write;
};
bool make_pipe(Pipe& p);

// The application may reap children itself (a SIGCHLD handler, or
// SIG_IGN); the default disposition is restored while a child runs so
// that its exit status reaches us, as pam_unix does for unix_chkpwd.
class DefaultSigchld {
 public:
  DefaultSigchld();
  ~DefaultSigchld();
  DefaultSigchld(const DefaultSigchld&) = delete;
  DefaultSigchld& operator=(const DefaultSigchld&) = delete;

 private:
  struct sigaction saved_ {};
  bool saved_ok_ = false;
};

struct ChildOutput {
  std::string out;         // at most out_cap bytes of stdout
  std::string err;         // at most err_cap bytes of stderr
  bool timed_out = false;  // killed at the deadline
  bool too_long = false;   // killed for writing more than out_cap bytes
  bool exited = false;     // reaped by waitpid before the deadline
  int status = 0;          // waitpid status when exited
};

// Reads the child's stdout and stderr until both close and waits for its
// exit, all before the deadline; otherwise (or once stdout passes out_cap)
// kills the child's process group and reaps it. err_fd may be -1.
// Whatever the child has written is read before the deadline is judged,
// and time this process spent stopped (SIGSTOP from the caller of su) is
// given back: only a child that stays silent while we wait times out.
ChildOutput collect_child(pid_t pid, int out_fd, int err_fd,
                          std::chrono::steady_clock::time_point deadline,
                          std::size_t out_cap, std::size_t err_cap);

// What a child may write and by when.
struct ChildLimits {
  std::chrono::steady_clock::time_point deadline;
  std::size_t out_cap = 0;  // bytes of stdout kept; more kills the child
  std::size_t err_cap = 0;  // bytes of stderr kept; 0: no stderr pipe
  // The child takes a session of its own (setsid, which a process group
  // leader cannot): the parent leaves its group alone.
  bool own_session = false;
};

// The child's part, run right after fork with the write ends of its pipes
// (err_fd is -1 without a stderr pipe). It must end in exec or _exit, and
// call only async-signal-safe functions: the process may have threads.
using ChildBody = std::function<void(int out_fd, int err_fd)>;

// Makes the pipes, forks, puts the child in a process group of its own
// (the child does too, or takes a session), and collects its output under the
// limits (collect_child). A pipe or a process that cannot be had is the
// error: a local failure (the caller of su may have lowered the limits),
// never evidence that what the child would have asked is down.
std::expected<ChildOutput, std::string> run_child(const ChildBody& body,
                                                  const ChildLimits& limits);

// Sets the resource limits a child of the module starts with to known
// values instead of the ones the caller of su or sudo chose (prlimit can
// lower them through a setuid program): 1024 descriptors, no core dumps,
// no limits on CPU time, file size, memory or processes. A hard limit the
// caller lowered can be raised again only with CAP_SYS_RESOURCE; without
// it the soft limits are raised as far as the hard ones allow. Returns
// true only when the limits are then at least a floor the child needs
// (64 descriptors, 256 MiB of address space and data, 1 MiB of stack):
// below that, a failure of the child would be the caller's doing, not an
// outage, and the child must not run. Async-signal-safe.
bool reset_resource_limits() noexcept;

}  // namespace ptv
