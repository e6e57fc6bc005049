#include "core/client_flow.hpp"

#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>

#include "phone/phone.hpp"

namespace ptv {

namespace {

bool is_remote(PhoneSource s) {
  return s == PhoneSource::Ldap || s == PhoneSource::Command;
}

AuthResult finished(Outcome outcome, std::string account, std::string detail) {
  AuthResult r;
  r.outcome = outcome;
  r.account = std::move(account);
  r.detail = std::move(detail);
  return r;
}

// The sources the module reads itself, up to the first one only the
// helper can ask: what they decide, or the index where the helper goes on.
struct LocalLookup {
  std::optional<AuthResult> decided;  // no code to send: the outcome
  std::uint32_t helper_from = 0;      // otherwise: the helper's first source
};

LocalLookup look_up_locally(const Config& cfg, const Account& account) {
  const auto& all = cfg.phone_sources;
  const auto remote = std::find_if(all.begin(), all.end(), is_remote);
  const std::vector<PhoneSource> local(all.begin(), remote);
  const GecosReader gecos = [&account](const std::string&) {
    return std::optional<std::string>(account.gecos);
  };
  const PhoneLookup found =
      lookup_phone_in(local, cfg, account.name, PhoneReaders{gecos, {}, {}});
  using Kind = PhoneLookup::Kind;
  if (found.kind == Kind::Found)  // the helper reads the same entry again
    return {std::nullopt, static_cast<std::uint32_t>(found.index)};
  if (found.kind == Kind::Invalid)
    return {finished(Outcome::InvalidPhone, account.name, found.problem), 0};
  if (remote != all.end())
    return {std::nullopt, static_cast<std::uint32_t>(remote - all.begin())};
  if (cfg.no_phone == NoPhone::Skip)
    return {finished(Outcome::NoPhoneSkipped, account.name,
                     "no phone number; no_phone = skip"),
            0};
  return {finished(Outcome::NoPhoneDenied, account.name,
                   "no phone number; no_phone = deny"),
          0};
}

}  // namespace

AuthResult authenticate_client(const ClientRequest& r) {
  if (!r.resolve_account)
    return finished(Outcome::InternalError, {}, "no account resolver");
  auto account = r.resolve_account(r.login_name);
  if (!account)
    return finished(account.error().kind == AccountError::Kind::Unknown
                        ? Outcome::UnknownUser
                        : Outcome::InternalError,
                    {}, account.error().detail);
  if (account->name.empty())
    return finished(Outcome::InternalError, {}, "the account has no name");
  LocalLookup local = look_up_locally(r.config, *account);
  if (local.decided) return std::move(*local.decided);

  auto link = r.start_helper ? r.start_helper()
                             : std::unexpected(std::string("no helper"));
  if (!link)
    return finished(Outcome::InternalError, account->name,
                    "cannot start the helper: " + link.error());
  RequestMsg request;
  request.config_path = r.config_path;
  request.account = account->name;
  request.gecos = account->gecos;
  request.first_source = local.helper_from;
  request.set_id = r.set_id_caller;
  request.debug = r.log.debug_enabled();
  const HelperCall call{std::move(request), r.conversation, r.log, r.send_gate,
                        helper_wait_bound(r.config)};
  AuthResult result = run_helper(**link, call);
  result.account = account->name;
  return result;
}

std::optional<AuthResult> skip_service(const Config& config,
                                       std::string_view service) {
  if (config.services.empty()) return std::nullopt;  // unset: every service
  if (std::find(config.services.begin(), config.services.end(), service) !=
      config.services.end())
    return std::nullopt;
  return finished(Outcome::ServiceSkipped, {},
                  "service " + log_token(service) +
                      " is not in services: the code is not asked for");
}

bool running_set_id() {
  return getauxval(AT_SECURE) != 0 || getuid() != geteuid() ||
         getgid() != getegid();
}

namespace {

int priority_of(Outcome outcome) {
  switch (outcome) {
    case Outcome::Approved:
    case Outcome::NoPhoneSkipped:
      return LOG_INFO;
    case Outcome::FailOpen:
    case Outcome::SendLimited:
    case Outcome::RateLimited:
      return LOG_WARNING;
    case Outcome::ConfigError:
    case Outcome::StateError:
    case Outcome::InternalError:
    case Outcome::InvalidPhone:
    case Outcome::LookupFailed:
    case Outcome::TransportRejected:
      return LOG_ERR;
    default:
      return LOG_NOTICE;
  }
}

}  // namespace

void log_outcome(Logger& log, const std::string& login_name,
                 const AuthResult& r, long elapsed_ms) {
  // The account's own name; the name as typed too when they differ (or
  // alone when no account was found).
  std::string line = "user=" + log_token(r.account.empty() ? login_name
                                                           : r.account);
  if (!r.account.empty() && r.account != login_name)
    line += " login_name=" + log_token(login_name);
  line += " phone=" + r.masked_phone + " sid=" + r.verification_sid +
          " result=" + describe(r.outcome) +
          " attempts=" + std::to_string(r.attempts) +
          " elapsed_ms=" + std::to_string(elapsed_ms);
  if (!r.detail.empty()) line += " (" + r.detail + ")";
  log.log(priority_of(r.outcome), line);
}

}  // namespace ptv
