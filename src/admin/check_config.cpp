// check (a): the configuration as the module loads it, its policy and the
// state store.
#include <sys/stat.h>

#include <cstdio>

#include "admin/setup.hpp"
#include "core/access.hpp"

namespace ptv::admin {

namespace {

std::string file_mode(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "?";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
  return std::string("owner uid ") + std::to_string(st.st_uid) + ", mode " + mode;
}

const char* word(FailMode m) { return m == FailMode::Safe ? "safe" : "secure"; }
const char* word(NoPhone n) { return n == NoPhone::Skip ? "skip" : "deny"; }

void check_exempt_groups(const PolicySettings& policy, Report& report) {
  if (policy.exempt_groups.empty()) {
    report.ok("exempt_groups: none (no group skips the code)");
    return;
  }
  SystemGroups groups;
  for (const std::string& name : policy.exempt_groups) {
    if (const auto gid = groups.group_id(name))
      report.ok("exempt_groups: group \"" + log_safe(name) + "\" is gid " +
                std::to_string(*gid));
    else
      report.problem("exempt_groups: group \"" + log_safe(name) +
                     "\" does not resolve; it exempts no one (the module "
                     "logs a warning at every login)");
  }
}

void report_policy(const PolicySettings& p, Report& report) {
  report.ok("policy: channel " + p.channel + ", max_attempts " +
            std::to_string(p.max_attempts) + ", failmode " + word(p.failmode) +
            ", no_phone " + word(p.no_phone) +
            (p.locale.empty() ? std::string() : ", locale " + p.locale));
  if (p.services_set)
    report.ok("services: " + joined(p.services) +
              " (any other PAM service is left to the rest of the stack)");
  else
    report.ok("services: not set (every PAM service that reaches the module "
              "asks for a code)");
  check_exempt_groups(p, report);
  std::vector<std::string> networks;
  for (const Network& n : p.exempt_networks) networks.push_back(n.text);
  report.ok("exempt_networks: " +
            (networks.empty() ? std::string("none") : joined(networks)));
  report.ok("grace_period_s: " + (p.grace_period_s > 0
                                      ? std::to_string(p.grace_period_s) + " s"
                                      : std::string("0 (no grace)")));
}

}  // namespace

std::optional<Config> load_setup(const std::string& path, Report& report) {
  auto config = load_config_file(path);
  if (!config) {
    report.problem(describe(config.error()));
    return std::nullopt;
  }
  return std::move(*config);
}

void PrintLogger::log(int priority, std::string_view message) {
  static constexpr const char* kNames[] = {"emerg", "alert", "crit",  "err",
                                           "warning", "notice", "info", "debug"};
  const char* name = kNames[priority & 7];
  std::printf("log %s: %.*s\n", name, static_cast<int>(message.size()),
              message.data());
  std::fflush(stdout);
}

void check_configuration(const std::string& path, const Config& config,
                         Report& report) {
  report.ok("configuration " + path + " loads (" + file_mode(path) + ")");
  report_policy(config.policy, report);
  report.ok("phone_sources: " + std::to_string(config.phone.sources.size()) +
            " source(s)");
}

void check_state(const StateSettings& state, Report& report) {
  const SendLimitSettings s = send_limit_settings(state);
  report.ok("send_limit: " + std::to_string(s.count) + " codes per " +
            std::to_string(s.window_s) + " s per user");
  const auto usage = table_usage(s, realtime_now());
  if (!usage) {
    report.problem("state_dir: " + describe(usage.error()));
    return;
  }
  if (!usage->exists) {
    report.ok("state_dir " + s.state_dir + ": no state.v1 yet (the first send "
              "creates it; twilio-verify-state create makes it now)");
    return;
  }
  report.ok("state_dir " + s.state_dir + ": state.v1 usable (" +
            std::to_string(usage->counting_sends) + " users with sends in the "
            "window, " + std::to_string(usage->grace_entries) +
            " grace entries)");
  if (usage->damaged != 0)
    report.warning("state_dir: " + std::to_string(usage->damaged) +
                   " damaged slot(s) in state.v1 (a torn write; they match no one)");
}

}  // namespace ptv::admin
