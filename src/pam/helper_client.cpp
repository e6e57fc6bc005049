#include "pam/helper_client.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/child_process.hpp"
#include "util/file_descriptor.hpp"
#include "util/safe_path.hpp"

namespace ptv {

namespace {

using std::chrono::milliseconds;

// How long the helper may take to go once its socket is closed.
constexpr milliseconds kExitWait{2000};

class HelperProcess final : public HelperLink {
 public:
  HelperProcess(std::unique_ptr<DefaultSigchld> sigchld, pid_t pid,
                FileDescriptor socket)
      : sigchld_(std::move(sigchld)),
        pid_(pid),
        socket_(std::move(socket)),
        channel_(socket_.get()) {}
  ~HelperProcess() override {
    socket_.reset();  // the helper sees the end of the conversation
    // Its exit, bounded; then it is killed. Reaped either way.
    const auto deadline = std::chrono::steady_clock::now() + kExitWait;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid_, SIGKILL);
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        return;
      }
      usleep(2000);
    }
  }
  MessageChannel& channel() override { return channel_; }
  void abandon() override { kill(pid_, SIGKILL); }

 private:
  // Held from before the fork until the helper is reaped: its exit status
  // reaches us, not a SIGCHLD handler of the application.
  std::unique_ptr<DefaultSigchld> sigchld_;
  pid_t pid_;
  FileDescriptor socket_;
  MessageChannel channel_;
};

// In the child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void become_helper(int socket, const char* path,
                                char* const argv[], char* const envp[]) {
  if (dup2(socket, 0) < 0) _exit(127);
  const int null_fd = open("/dev/null", O_RDWR);
  if (null_fd < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0) _exit(127);
  close_range(3, ~0U, 0);
  if (setsid() < 0) _exit(127);  // no controlling terminal: no Ctrl-Z
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  // All ids root: su's invoking user keeps su's real uid, and with it the
  // right to signal su's children; not this one.
  if (setgroups(0, nullptr) != 0 || setresgid(0, 0, 0) != 0 ||
      setresuid(0, 0, 0) != 0)
    _exit(126);
  (void)reset_resource_limits();  // the helper checks the result itself
  execve(path, argv, envp);
  _exit(127);
}

}  // namespace

std::expected<std::unique_ptr<HelperLink>, std::string> start_helper_process(
    const std::string& path) {
  auto resolved = check_safe_executable(path, "helper");
  if (!resolved) return std::unexpected(resolved.error());
  if (geteuid() != 0)
    return std::unexpected(std::string(
        "the module runs as uid " + std::to_string(geteuid()) +
        " and cannot start the helper as root"));
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return std::unexpected(std::string("socketpair: ") + std::strerror(errno));
  FileDescriptor ours(fds[0]), theirs(fds[1]);
  // Prepared before fork: the child only calls async-signal-safe functions
  // (the host application may have other threads).
  std::string argv0 = "twilio-verify-helper";
  char* argv[] = {argv0.data(), nullptr};
  char* envp[] = {nullptr};
  auto sigchld = std::make_unique<DefaultSigchld>();
  const pid_t pid = fork();
  if (pid < 0)
    return std::unexpected(std::string("cannot start the helper: fork: ") +
                           std::strerror(errno));
  if (pid == 0) become_helper(theirs.get(), resolved->c_str(), argv, envp);
  theirs.reset();
  try {
    return std::make_unique<HelperProcess>(std::move(sigchld), pid,
                                           std::move(ours));
  } catch (...) {  // out of memory: the helper is killed and reaped first
    kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw;
  }
}

milliseconds helper_wait_bound(const TwilioSettings& twilio,
                               const PhoneSettings& phone) {
  long ms = 2 * twilio.timeout_ms + std::min<long>(twilio.timeout_ms, 3000) + 3000;
  for (PhoneSource s : phone.sources) {
    if (s == PhoneSource::Ldap) ms += phone.ldap.timeout_ms + 200;
    if (s == PhoneSource::Command) ms += phone.command.timeout_ms + 200;
  }
  return milliseconds{ms};
}

namespace {

AuthResult helper_failed(std::string detail) {
  return decided(Outcome::InternalError, {}, "helper: " + std::move(detail));
}

std::string failure_text(const ChannelFailure& f, milliseconds bound) {
  switch (f.error) {
    case ChannelError::Closed:
      return "it ended without an answer";
    case ChannelError::TimedOut:
      return "no answer within " + std::to_string(bound.count()) + " ms";
    case ChannelError::Malformed:
      return "it answered garbage (" + f.detail + ")";
    case ChannelError::Io:
      break;
  }
  return "the connection failed (" + f.detail + ")";
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool is_sid_or_dash(std::string_view s) {
  if (s == "-") return true;
  // A Verify verification, or the Messaging backend's first message.
  if (s.size() != 34 ||
      !(s.starts_with("VE") || s.starts_with("SM") || s.starts_with("MM")))
    return false;
  return std::all_of(s.begin() + 2, s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
  });
}

bool is_masked_or_dash(std::string_view s) {
  if (s == "-" || s == "(invalid)") return true;
  return s.size() >= 8 && s.size() <= 16 && s.front() == '+' &&
         std::all_of(s.begin() + 1, s.end(),
                     [](char c) { return c == '*' || (c >= '0' && c <= '9'); });
}

// The helper's result, as far as the module will take it: outcomes only
// the module decides, or fields that could carry anything into the log,
// are a broken helper; failmode safe never opens for a set-id caller.
AuthResult accept_result(AuthResult r, const RequestMsg& req, bool code_asked) {
  switch (r.outcome) {
    case Outcome::ServiceSkipped:
    case Outcome::UnknownUser:
    case Outcome::ExemptGroup:
    case Outcome::ExemptNetwork:
    case Outcome::Grace:
      return helper_failed("it answered an outcome only the module decides");
    default:
      break;
  }
  if (!is_sid_or_dash(r.verification_sid) || !is_masked_or_dash(r.masked_phone))
    return helper_failed("it answered a malformed result");
  if (r.outcome == Outcome::NoPhoneSkipped && code_asked)
    return helper_failed("it answered skipped-no-phone after a send or a code "
                         "prompt");
  if (!printable(r.detail)) r.detail = log_safe(r.detail, 4096);
  if (r.outcome == Outcome::FailOpen && req.set_id) {
    r.outcome = Outcome::Unavailable;
    r.detail += "; failmode = safe does not apply to set-id callers";
  }
  return r;
}

// One question of the helper answered; false when it was out of turn.
struct Answerer {
  const HelperCall& call;
  MessageChannel& ch;
  bool ok = true;

  void operator()(const PromptMsg& m) {
    auto code = call.conversation.ask_code(log_safe(m.text, 1024));
    if (code && code->request != CodeRequest::None) {
      // A word, checked here: it crosses as a request, never as a code.
      ok = ch.send(ResendMsg{code->request}, call.wait_bound).has_value();
    } else if (code) {
      ok = ch.send(CodeMsg{code->problem, std::move(code->code)}, call.wait_bound)
               .has_value();
    } else {
      ok = ch.send(ConversationFailedMsg{code.error()}, call.wait_bound).has_value();
    }
  }
  void operator()(const ShowErrorMsg& m) {
    call.conversation.show_error(log_safe(m.text, 1024));
  }
  void operator()(const LogMsg& m) {
    const int priority = std::clamp(m.priority, LOG_ERR, LOG_DEBUG);
    call.log.log(priority, printable(m.text) ? m.text : log_safe(m.text, 4096));
  }
  void operator()(const ReserveMsg&) {
    SendReservation r;
    r.decision = SendDecision::Allowed;
    if (call.send_gate != nullptr) r = call.send_gate->reserve(call.request.account);
    ok = ch.send(ReservedMsg{std::move(r)}, call.wait_bound).has_value();
  }
  void operator()(const ReleaseMsg& m) {
    ReleasedMsg released;
    if (call.send_gate != nullptr)
      released.released = call.send_gate->release(call.request.account, m.stamp);
    ok = ch.send(released, call.wait_bound).has_value();
  }
  template <typename Other>
  void operator()(const Other&) {
    ok = false;  // a message the helper never sends
  }
};

}  // namespace

AuthResult run_helper(HelperLink& link, const HelperCall& call) {
  MessageChannel& ch = link.channel();
  const auto broken = [&link](std::string detail) {
    link.abandon();
    return helper_failed(std::move(detail));
  };
  if (auto sent = ch.send(call.request, call.wait_bound); !sent)
    return broken("cannot send it the request: " +
                  failure_text(sent.error(), call.wait_bound));
  bool code_asked = false;  // a send reserved or a code prompt relayed
  for (;;) {
    auto m = ch.receive(call.wait_bound);
    if (!m) return broken(failure_text(m.error(), call.wait_bound));
    if (auto* result = std::get_if<ResultMsg>(&*m))
      return accept_result(std::move(result->result), call.request, code_asked);
    code_asked = code_asked || std::holds_alternative<PromptMsg>(*m) ||
                 std::holds_alternative<ReserveMsg>(*m);
    Answerer answer{call, ch};
    std::visit(answer, *m);
    if (!answer.ok)
      return broken(std::string("it sent a ") + message_name(*m) +
                    " out of turn, or went away");
  }
}

AuthResult HelperVerifier::verify(const Account& account,
                                  std::uint32_t first_source, bool set_id_caller,
                                  std::string_view remote_host) {
  auto link = w_.starter.start();
  if (!link)
    return decided(Outcome::InternalError, account.name,
                   "cannot start the helper: " + link.error());
  RequestMsg request;
  request.config_path = w_.config_path;
  request.account = account.name;
  request.gecos = account.gecos;
  request.first_source = first_source;
  request.set_id = set_id_caller;
  request.debug = w_.log.debug_enabled();
  if (remote_host.size() <= kMaxRemoteHostBytes)
    request.remote_host = std::string(remote_host);
  const HelperCall call{std::move(request), w_.conversation, w_.log,
                        w_.send_gate, w_.wait_bound};
  return run_helper(**link, call);
}

}  // namespace ptv
