#include "admin/user_view.hpp"

#include <ctime>
#include <vector>

#include "core/access.hpp"
#include "phone/phone.hpp"

namespace ptv::admin {

namespace {

// A GraceStore that finds nothing: lookup has no PAM_RHOST, and grace
// needs one; the entries are shown from the state store instead.
class NoGrace final : public GraceStore {
 public:
  std::expected<std::optional<std::int64_t>, StateError> find(
      const std::string&, const std::string&) override {
    return std::nullopt;
  }
  std::expected<void, StateError> record(const std::string&, const std::string&,
                                         std::int64_t) override {
    return {};
  }
};

void report_exemption(const PolicySettings& policy, const Account& account,
                      UserView& view, Report& report) {
  PrintLogger log;
  SystemGroups groups;
  NoGrace grace;
  const auto allowed = exempt_or_grace(policy, account, "", {log, groups, grace});
  view.exempt = allowed && allowed->outcome == Outcome::ExemptGroup;
  if (view.exempt)
    report.info("policy: exempt (" + allowed->detail +
                "): result=allowed-exempt-group, no code is asked for");
  else
    report.info("policy: not exempt by group; a code is asked for unless an "
                "exempt network or grace applies to the login's address");
  if (!policy.exempt_networks.empty()) {
    std::vector<std::string> nets;
    for (const Network& n : policy.exempt_networks) nets.push_back(n.text);
    report.info("policy: logins from " + joined(nets) + " skip the code");
  }
}

void report_state(const Config& config, const Account& account, UserView& view,
                  Report& report) {
  const SendLimitSettings s = send_limit_settings(config.state);
  const std::int64_t now = realtime_now();
  const auto state = account_state(s, account.name, now);
  if (!state) {
    report.problem("state: " + describe(state.error()));
    return;
  }
  const std::size_t used = state->sends.size();
  std::string line = "send_limit: " + std::to_string(used) + " of " +
                     std::to_string(s.count) + " sends used in the last " +
                     std::to_string(s.window_s) + " s";
  if (used >= static_cast<std::size_t>(s.count)) {
    view.limit_reached = true;
    const std::int64_t frees = state->sends[used - s.count] + s.window_s;
    line += "; limit reached, the next send is allowed at " + time_text(frees);
  }
  report.info(line);
  if (config.policy.grace_period_s <= 0 && state->grace_until.empty()) return;
  std::string grace = "grace: " + std::to_string(state->grace_until.size()) +
                      " valid entr" + (state->grace_until.size() == 1 ? "y" : "ies");
  if (!state->grace_until.empty())
    grace += ", the last expiring at " + time_text(state->grace_until.back());
  report.info(grace);
}

void report_phone(const Config& config, const Account& account, UserView& view,
                  Report& report) {
  PrintLogger log;
  std::vector<std::unique_ptr<NumberSource>> owned;
  std::vector<NumberSource*> sources;
  for (PhoneSource which : config.phone.sources) {
    owned.push_back(phone_source(which, config, account, log));
    sources.push_back(owned.back().get());
  }
  const PhoneLookup found = lookup_phone(sources, account.name);
  if (!found) {
    view.lookup_failed = true;
    report.problem("phone: " + describe(found.error()));
  } else if (!found->has_value()) {
    report.info(std::string("phone: no number in any source; no_phone = ") +
                (config.policy.no_phone == NoPhone::Skip
                     ? "skip: result=skipped-no-phone (PAM_IGNORE)"
                     : "deny: result=denied-no-phone"));
  } else {
    view.phone = **found;
    report.info("phone: " + mask_phone((*found)->number) + " from source " +
                (*found)->source);
  }
}

}  // namespace

std::string time_text(std::int64_t t) {
  const std::time_t when = static_cast<std::time_t>(t);
  std::tm tm{};
  char text[32] = "?";
  if (localtime_r(&when, &tm) != nullptr)
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

std::optional<Account> account_for(const std::string& user, Report& report) {
  auto account = resolve_account(user);
  if (!account) {
    report.problem("user " + log_safe(user) + ": " + account.error().detail);
    return std::nullopt;
  }
  report.info("user: " + log_safe(account->name) + " (uid " +
              std::to_string(account->uid) + ")");
  return std::move(*account);
}

UserView view_user(const Config& config, const Account& account, Report& report) {
  UserView view;
  report_exemption(config.policy, account, view, report);
  report_state(config, account, view, report);
  report_phone(config, account, view, report);
  return view;
}

}  // namespace ptv::admin
