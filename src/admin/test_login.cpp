// test: one complete login on this terminal as the module makes it: the
// module's side of the flow (core/client_flow) with the real helper, the
// state store and the account's groups; the prompts on this terminal.
#include <security/pam_modules.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "admin/user_view.hpp"
#include "core/client_flow.hpp"
#include "pam/helper_client.hpp"
#include "phone/phone.hpp"

namespace ptv::admin {

namespace {

constexpr std::size_t kMaxReply = 256;

// One line from stdin, a byte at a time (no stdio buffer keeps a copy),
// with echo off when hidden and stdin is a terminal.
std::expected<Secret, ConversationError> read_reply(bool hidden) {
  termios saved{};
  const bool tty = hidden && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  Secret line;
  line.reserve(kMaxReply + 1);
  char c = 0;
  ssize_t n = 0;
  while ((n = read(STDIN_FILENO, &c, 1)) == 1 && c != '\n')
    if (line.size() < kMaxReply) line.push_back(c);
  c = 0;
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::printf("\n");
  }
  if (n != 1 && line.size() == 0) return std::unexpected(ConversationError::NoReply);
  return line;
}

class TerminalConversation final : public Conversation {
 public:
  std::expected<Secret, ConversationError> ask_hidden(
      std::string_view prompt) override {
    std::printf("%.*s", static_cast<int>(prompt.size()), prompt.data());
    std::fflush(stdout);
    return read_reply(true);
  }
  void show_error(std::string_view message) override {
    std::printf("%.*s\n", static_cast<int>(message.size()), message.data());
    std::fflush(stdout);
  }
};

const char* pam_name(int rc) {
  switch (rc) {
    case PAM_SUCCESS: return "PAM_SUCCESS";
    case PAM_IGNORE: return "PAM_IGNORE";
    case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
    case PAM_CONV_ERR: return "PAM_CONV_ERR";
    case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
    case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
    case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
    default: return "another PAM result";
  }
}

bool confirmed(const Config& config, const Account& account, const FoundPhone& phone) {
  std::printf("Send a real code by %s to %s (source %s) for %s? It counts as a "
              "send. [y/N] ",
              config.policy.channel.c_str(), mask_phone(phone.number).c_str(),
              phone.source.c_str(), log_safe(account.name).c_str());
  std::fflush(stdout);
  const auto answer = read_reply(false);
  return answer && (answer->view() == "y" || answer->view() == "yes");
}

AuthResult login(const Config& config, const Options& options,
                 Conversation& conversation, Logger& log) {
  SystemAccounts accounts;
  HelperProgram program(options.helper.empty() ? kDefaultHelperPath : options.helper);
  StateDirSendGate send_gate(send_limit_settings(config.state));
  StateDirGrace grace(send_limit_settings(config.state));
  SystemGroups groups;
  HelperVerifier helper({program, options.conf,
                         helper_wait_bound(config.twilio, config.phone),
                         conversation, log, &send_gate});
  const ClientRequest request{{config.policy, config.phone},
                              {log, accounts, helper, groups, grace},
                              options.user,
                              running_set_id(),
                              {}};
  return authenticate_client(request);
}

}  // namespace

int run_test(const Options& options) {
  Report report;
  const auto config = load_setup(options.conf, report);
  if (!config) return report.exit_status();
  report.ok("configuration " + options.conf + " loaded (services is not "
            "applied: this login has no PAM service)");
  const auto account = account_for(options.user, report);
  if (!account) return report.exit_status();
  const UserView view = view_user(*config, *account, report);
  const bool sends = !view.exempt && view.phone && !view.limit_reached;
  if (sends && !options.yes && !confirmed(*config, *account, *view.phone)) {
    report.problem("not confirmed: nothing was sent");
    return report.exit_status();
  }
  report.info("login: as the module, with the helper " +
              (options.helper.empty() ? std::string(kDefaultHelperPath) : options.helper));
  PrintLogger log;
  log.set_debug(true);
  TerminalConversation conversation;
  const auto started = std::chrono::steady_clock::now();
  const AuthResult result = login(*config, options, conversation, log);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  log_outcome(log, options.user, result, static_cast<long>(elapsed.count()));
  const int rc = pam_result_for(result.outcome);
  const std::string line = std::string("result: ") + describe(result.outcome) +
                           ", the module would return " + pam_name(rc);
  if (rc == PAM_SUCCESS)
    report.ok(line);
  else
    report.problem(line);
  return report.exit_status();
}

}  // namespace ptv::admin
