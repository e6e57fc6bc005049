#include "phone/command_source.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "util/child_process.hpp"
#include "util/safe_path.hpp"
#include "util/log.hpp"

namespace ptv {

namespace {

using Clock = std::chrono::steady_clock;
using Kind = PhoneErrorKind;

constexpr std::size_t kMaxStderr = 512;


// Everything the child needs, prepared before fork(): between fork and
// exec only async-signal-safe calls are made.
struct ChildPlan {
  std::string resolved;
  std::string argv0;
  std::string user;
  uid_t uid = 0;
  gid_t gid = 0;
};

[[noreturn]] void child_fail(int err_fd, const char* what) {
  const int saved = errno;
  const char* text = strerror(saved);  // not async-signal-safe in theory; glibc's is
  (void)!write(err_fd, what, strlen(what));
  (void)!write(err_fd, ": ", 2);
  (void)!write(err_fd, text, strlen(text));
  _exit(127);
}

[[noreturn]] void run_child_command(const ChildPlan& plan, int out_fd, int err_fd,
                            char* const argv[], char* const envp[]) {
  // Its own process group, so that a timeout kills whatever it started.
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGALRM})
    signal(sig, SIG_DFL);
  const int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0) child_fail(err_fd, "open /dev/null");
  if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
    child_fail(err_fd, "dup2");
  err_fd = 2;
  close_range(3, ~0U, 0);
  // The command must not inherit limits the caller of su chose: a command
  // that fails for lack of descriptors could report a temporary failure
  // (exit 75), which failmode = "safe" would take for an outage.
  if (!reset_resource_limits()) {
    errno = EAGAIN;
    child_fail(err_fd, "resource limits below what the command needs");
  }
  if (geteuid() == 0) {
    const gid_t groups[1] = {plan.gid};
    if (setgroups(1, groups) != 0) child_fail(err_fd, "setgroups");
  }
  if (setresgid(plan.gid, plan.gid, plan.gid) != 0) child_fail(err_fd, "setresgid");
  if (setresuid(plan.uid, plan.uid, plan.uid) != 0) child_fail(err_fd, "setresuid");
  if (plan.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    errno = EPERM;
    child_fail(err_fd, "privileges could be regained");
  }
  if (chdir("/") != 0) child_fail(err_fd, "chdir /");
  execve(plan.resolved.c_str(), argv, envp);
  child_fail(err_fd, "execve");
}

}  // namespace

std::expected<std::string, std::string> check_command_file(
    const std::string& path) {
  return check_safe_executable(path, "lookup_command");
}

SourceValues interpret_command_output(std::string_view output) {
  std::string_view line = output.substr(0, output.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' ||
                           line.back() == '\t'))
    line.remove_suffix(1);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
    line.remove_prefix(1);
  if (line.empty()) {
    // Nothing at all is "no number"; a blank first line before other
    // output is not how the contract is written, and is refused.
    bool blank = true;
    for (char c : output)
      if (c != '\n' && c != '\r' && c != ' ' && c != '\t') blank = false;
    if (blank) return std::vector<std::string>{};  // the command printed nothing
    return phone_error(Kind::Failed,
                       "the first line of the command's output is empty");
  }
  if (line.size() > 64 || line.find('\0') != std::string_view::npos)
    return std::vector<std::string>{std::string(line.substr(0, 64)) + "?"};
  return std::vector<std::string>{std::string(line)};
}

namespace {

// The lookup_command_user's ids, and the rules they must pass.
std::expected<ChildPlan, PhoneError> plan_child(const CommandSettings& settings,
                                                std::string resolved,
                                                const std::string& user) {
  ChildPlan plan;
  plan.resolved = std::move(resolved);
  plan.argv0 = settings.path;
  plan.user = user;
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  const int rc = getpwnam_r(settings.user.c_str(), &pw, buffer.data(),
                            buffer.size(), &found);
  if (rc != 0 || found == nullptr)
    return phone_error(Kind::Misconfigured,
                       "lookup_command_user \"" + log_safe(settings.user) +
                           "\" does not exist");
  if (pw.pw_uid == 0)
    return phone_error(Kind::Misconfigured,
                       "lookup_command_user must not be root (uid 0)");
  plan.uid = pw.pw_uid;
  plan.gid = pw.pw_gid;
  if (geteuid() != 0 && geteuid() != plan.uid)
    return phone_error(Kind::Failed,
                       "the module runs as uid " + std::to_string(geteuid()) +
                           " and cannot switch to lookup_command_user");
  return plan;
}

// How the command ended, in the source's terms.
SourceValues judge(const CommandSettings& settings, const ChildOutput& child) {
  const std::string cmd = "lookup_command " + log_safe(settings.path, 200);
  const std::string first_err = child.err.substr(0, child.err.find('\n'));
  const std::string err_note =
      first_err.empty() ? "" : " (stderr: " + log_safe(first_err, 200) + ")";
  if (child.timed_out)
    return phone_error(Kind::Failed,
                       cmd + " did not finish within lookup_timeout_ms (" +
                           std::to_string(settings.timeout_ms) + " ms) and was killed");
  if (child.too_long)
    return phone_error(Kind::Failed, cmd + " printed more than " +
                                         std::to_string(kMaxCommandOutput) +
                                         " bytes and was killed");
  if (!child.exited || !WIFEXITED(child.status))
    return phone_error(
        Kind::Failed,
        cmd + (child.exited && WIFSIGNALED(child.status)
                   ? " was killed by signal " + std::to_string(WTERMSIG(child.status))
                   : std::string(" ended abnormally")) + err_note);
  const int code = WEXITSTATUS(child.status);
  if (code == kCommandTempFail)
    return phone_error(Kind::Unavailable,
                       cmd + " reported a temporary failure (exit 75)" + err_note);
  if (code != 0)
    return phone_error(Kind::Failed,
                       cmd + " exited with status " + std::to_string(code) + err_note);
  SourceValues values = interpret_command_output(child.out);
  if (!values) values.error().detail = cmd + ": " + values.error().detail;
  return values;
}

}  // namespace

SourceValues run_lookup_command(const CommandSettings& settings,
                                const std::string& user) {
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(settings.timeout_ms);
  auto resolved = check_command_file(settings.path);
  if (!resolved) return phone_error(Kind::Misconfigured, resolved.error());
  auto plan = plan_child(settings, std::move(*resolved), user);
  if (!plan) return std::unexpected(plan.error());
  // Prepared before fork: the child only makes async-signal-safe calls.
  char* argv[] = {plan->argv0.data(), plan->user.data(), nullptr};
  std::string path_env = "PATH=/usr/local/bin:/usr/bin:/bin";
  char* envp[] = {path_env.data(), nullptr};
  const ChildPlan& p = *plan;
  auto child = run_child(
      [&p, &argv, &envp](int out_fd, int err_fd) {
        run_child_command(p, out_fd, err_fd, argv, envp);
      },
      ChildLimits{deadline, kMaxCommandOutput, kMaxStderr});
  // A pipe or a process that cannot be had is a local failure (the caller
  // of su may have lowered the limits), never an outage.
  if (!child) return phone_error(Kind::Internal, child.error());
  return judge(settings, *child);
}

}  // namespace ptv
