#include "core/outcome.hpp"

#include <security/_pam_types.h>

namespace ptv {

const char* describe(Outcome outcome) {
  switch (outcome) {
    case Outcome::Approved:
      return "approved";
    case Outcome::FailOpen:
      return "allowed-unavailable";
    case Outcome::ExemptGroup:
      return "allowed-exempt-group";
    case Outcome::ExemptNetwork:
      return "allowed-exempt-network";
    case Outcome::Grace:
      return "allowed-grace";
    case Outcome::ServiceSkipped:
      return "skipped-service";
    case Outcome::NoPhoneSkipped:
      return "skipped-no-phone";
    case Outcome::UnknownUser:
      return "denied-unknown-user";
    case Outcome::NoPhoneDenied:
      return "denied-no-phone";
    case Outcome::InvalidPhone:
      return "denied-invalid-phone";
    case Outcome::LookupFailed:
      return "denied-lookup-error";
    case Outcome::WrongCode:
      return "denied-wrong-code";
    case Outcome::Denied:
      return "denied-by-twilio";
    case Outcome::Unavailable:
      return "denied-unavailable";
    case Outcome::TransportRejected:
      return "denied-bad-response";
    case Outcome::ConversationFailed:
      return "denied-conversation-error";
    case Outcome::ConfigError:
      return "denied-config-error";
    case Outcome::SendLimited:
      return "denied-send-limit";
    case Outcome::StateError:
      return "denied-state-error";
    case Outcome::RateLimited:
      return "denied-rate-limited";
    case Outcome::InternalError:
      return "denied-internal-error";
  }
  return "denied";
}

int pam_result_for(Outcome outcome) {
  switch (outcome) {
    case Outcome::Approved:
    case Outcome::FailOpen:
    case Outcome::ExemptGroup:
    case Outcome::ExemptNetwork:
    case Outcome::Grace:
      return PAM_SUCCESS;
    case Outcome::NoPhoneSkipped:
    case Outcome::ServiceSkipped:
      return PAM_IGNORE;
    case Outcome::UnknownUser:
      return PAM_USER_UNKNOWN;
    case Outcome::ConversationFailed:
      return PAM_CONV_ERR;
    case Outcome::ConfigError:
      return PAM_SERVICE_ERR;
    case Outcome::Unavailable:
      return PAM_AUTHINFO_UNAVAIL;
    case Outcome::NoPhoneDenied:
    case Outcome::InvalidPhone:
    case Outcome::LookupFailed:
    case Outcome::WrongCode:
    case Outcome::Denied:
    case Outcome::TransportRejected:
    case Outcome::SendLimited:
    case Outcome::StateError:
    case Outcome::RateLimited:
    case Outcome::InternalError:
      return PAM_AUTH_ERR;
  }
  return PAM_AUTH_ERR;
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

AuthResult decided(Outcome outcome, std::string account, std::string detail) {
  return AuthResult{.outcome = outcome,
                    .account = std::move(account),
                    .detail = std::move(detail)};
}

}  // namespace ptv
