// check, lookup, status and reset: the commands that send nothing.
#include <syslog.h>
#include <unistd.h>

#include "admin/user_view.hpp"

namespace ptv::admin {

int run_check(const Options& options) {
  Report report(options.quiet);
  const auto config = load_setup(options.conf, report);
  if (!config) return report.exit_status();
  check_configuration(options.conf, *config, report);
  check_state(config->state, report);
  check_twilio(config->twilio, report);
  check_rate_limits(config->twilio, report);
  check_phone_sources(*config, options.user, report);
  check_pam(options, *config, report);
  if (!report.failed()) report.info("every check passed");
  return report.exit_status();
}

int run_lookup(const Options& options) {
  Report report;
  const auto config = load_setup(options.conf, report);
  if (!config) return report.exit_status();
  const auto account = account_for(options.user, report);
  if (!account) return report.exit_status();
  (void)view_user(*config, *account, report);
  return report.exit_status();
}

namespace {

void status_of_table(const SendLimitSettings& s, Report& report) {
  const auto usage = table_usage(s, realtime_now());
  if (!usage) {
    report.problem("state: " + describe(usage.error()));
    return;
  }
  if (!usage->exists) {
    report.info("state: " + s.state_dir + "/state.v1 does not exist yet: "
                "nothing recorded");
    return;
  }
  report.info("state: " + s.state_dir + "/state.v1, " +
              std::to_string(usage->slots) + " slots");
  report.info("send_limit: " + std::to_string(s.count) + " per " +
              std::to_string(s.window_s) + " s; " +
              std::to_string(usage->counting_sends) +
              " account(s) with sends in the window");
  report.info("grace: " + std::to_string(usage->grace_entries) + " valid entr" +
              (usage->grace_entries == 1 ? "y" : "ies"));
  if (usage->damaged != 0)
    report.warning("state: " + std::to_string(usage->damaged) + " damaged slot(s)");
}

// The account's own name when it resolves (as the module keys it), else
// the name as given, so that a deleted account can still be cleared.
std::string state_name(const std::string& user, Report& report) {
  const auto account = resolve_account(user);
  if (account) return account->name;
  report.warning("user " + log_safe(user) + ": " + account.error().detail +
                 "; using the name as given");
  return user;
}

void status_of_user(const SendLimitSettings& s, const std::string& name,
                    Report& report) {
  const auto state = account_state(s, name, realtime_now());
  if (!state) {
    report.problem("state: " + describe(state.error()));
    return;
  }
  report.info("user: " + log_safe(name));
  report.info("send_limit: " + std::to_string(state->sends.size()) + " of " +
              std::to_string(s.count) + " sends used in the last " +
              std::to_string(s.window_s) + " s");
  for (const std::int64_t t : state->sends) report.info("  send at " + time_text(t));
  report.info("grace: " + std::to_string(state->grace_until.size()) +
              " valid entr" + (state->grace_until.size() == 1 ? "y" : "ies"));
  for (const std::int64_t t : state->grace_until)
    report.info("  grace until " + time_text(t));
}

}  // namespace

int run_status(const Options& options) {
  Report report;
  const auto config = load_setup(options.conf, report);
  if (!config) return report.exit_status();
  const SendLimitSettings s = send_limit_settings(config->state);
  if (options.user.empty())
    status_of_table(s, report);
  else
    status_of_user(s, state_name(options.user, report), report);
  return report.exit_status();
}

int run_reset(const Options& options) {
  Report report;
  const auto config = load_setup(options.conf, report);
  if (!config) return report.exit_status();
  const SendLimitSettings s = send_limit_settings(config->state);
  const std::string name = state_name(options.user, report);
  const auto before = account_state(s, name, realtime_now());
  const auto reset = before ? reset_account(s, name)
                            : std::expected<void, StateError>(
                                  std::unexpected(before.error()));
  if (!reset) {
    report.problem("reset " + log_safe(name) + ": " + describe(reset.error()));
    return report.exit_status();
  }
  const std::string what = "reset user=" + log_token(name) + ": cleared " +
                           std::to_string(before->sends.size()) +
                           " send(s) in the window and " +
                           std::to_string(before->grace_until.size()) +
                           " grace entr" +
                           (before->grace_until.size() == 1 ? "y" : "ies");
  openlog("twilio-verify-admin", LOG_PID, LOG_AUTHPRIV);
  syslog(LOG_NOTICE, "%s (by uid %d)", what.c_str(), static_cast<int>(getuid()));
  closelog();
  report.ok(what + "; logged to syslog (authpriv)");
  return report.exit_status();
}

}  // namespace ptv::admin
