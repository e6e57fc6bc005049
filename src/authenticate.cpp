#include "authenticate.hpp"

#include <sys/auxv.h>
#include <unistd.h>

#include <security/pam_modules.h>

#include <algorithm>

#include "code_input.hpp"
#include "verify_client.hpp"

namespace ptv {

namespace {

// Transport failures that mean Twilio cannot be reached or is failing.
// A TLS failure is not one of them: it can be an attacker in the path.
bool is_unavailable(TransportErrorKind kind) {
  return kind == TransportErrorKind::Unreachable ||
         kind == TransportErrorKind::Timeout ||
         kind == TransportErrorKind::Protocol;
}

std::string prompt_prefix(const std::string& channel) {
  if (channel == "call") return "Code from the call to ";
  if (channel == "whatsapp") return "WhatsApp code sent to ";
  return "SMS code sent to ";
}

// What the user is told when Twilio refuses; the log gets the details.
const char* user_message(VerifyError e) {
  switch (e) {
    case VerifyError::NotFound:
      return "The code has expired or was already used. Log in again to "
             "get a new one.";
    case VerifyError::MaxChecks:
      return "Too many wrong codes. Log in again to get a new one.";
    case VerifyError::MaxSends:
      return "Too many codes were sent to your phone. Try again later.";
    case VerifyError::Landline:
    case VerifyError::FraudGuard:
    case VerifyError::GeoBlocked:
    case VerifyError::InvalidParameter:
      return "A code cannot be sent to your phone number. Contact your "
             "administrator.";
    case VerifyError::RateLimited:
      return "Too many codes were requested for this account. Try again "
             "later.";
    default:
      return "The code could not be verified.";
  }
}

class Flow {
 public:
  explicit Flow(const AuthRequest& request) : r_(request) {}

  AuthResult run() {
    try {
      run_steps();
    } catch (const std::bad_alloc&) {
      result_.outcome = Outcome::InternalError;
      result_.detail = "out of memory";
    }
    return std::move(result_);
  }

 private:
  // The typed name becomes the account; an unknown name stops here,
  // before any lookup or request.
  bool resolve_account() {
    if (!r_.resolve_account) {
      finish(Outcome::InternalError, "no account resolver");
      return false;
    }
    auto account = r_.resolve_account(r_.user);
    if (!account) {
      if (account.error().kind == AccountError::Kind::Unknown) {
        finish(Outcome::UnknownUser, account.error().detail);
      } else {
        finish(Outcome::InternalError, account.error().detail);
      }
      return false;
    }
    account_ = std::move(*account);
    result_.account = account_.name;
    return true;
  }

  void run_steps() {
    const Config& cfg = r_.config;
    if (!resolve_account()) return;
    const std::string& user = account_.name;
    const GecosReader gecos =
        [this](const std::string&) -> std::optional<std::string> {
      return account_.gecos;
    };
    PhoneLookup phone = lookup_phone(
        cfg, user, PhoneReaders{gecos, r_.query_ldap, r_.query_command});
    const auto lookup_error = [&phone] {
      return "looking up the phone number: " + phone.source + ": " + phone.problem;
    };
    switch (phone.kind) {
      case PhoneLookup::Kind::Unavailable:
        // Like Twilio being unreachable: failmode decides.
        unavailable(lookup_error());
        return;
      case PhoneLookup::Kind::Failed:
        finish(Outcome::LookupFailed, lookup_error());
        return;
      case PhoneLookup::Kind::Misconfigured:
        finish(Outcome::ConfigError, lookup_error());
        return;
      case PhoneLookup::Kind::Internal:
        finish(Outcome::InternalError, lookup_error());
        return;
      default:
        break;
    }
    if (phone.kind == PhoneLookup::Kind::NotFound) {
      if (cfg.no_phone == NoPhone::Skip) {
        finish(Outcome::NoPhoneSkipped, "no phone number; no_phone = skip");
      } else {
        finish(Outcome::NoPhoneDenied, "no phone number; no_phone = deny");
      }
      return;
    }
    if (phone.kind == PhoneLookup::Kind::Invalid) {
      finish(Outcome::InvalidPhone, phone.problem);
      return;
    }
    result_.masked_phone = mask_phone(phone.number);

    auto transport = r_.make_transport();
    if (!transport) {
      finish(Outcome::InternalError,
             "cannot set up HTTP: " + transport.error().detail);
      return;
    }
    VerifyClient client(cfg, **transport, r_.sleep);

    std::int64_t reserved = 0;
    if (!reserve_send(reserved)) return;
    auto started = client.start(phone.number);
    if (started.transport_failed) {
      // Unreachable: the request never left, so no message can have been
      // sent. Any other failure may have come after Twilio sent one.
      if (started.transport.kind == TransportErrorKind::Unreachable)
        give_back(reserved);
      transport_failure("starting the verification", started.transport);
      return;
    }
    if (started.answer.error == VerifyError::NotFound) {
      // Nothing exists yet that could have expired: the service is wrong.
      finish(Outcome::ConfigError,
             "starting the verification: Twilio knows no service " +
                 cfg.service_sid + " (20404); check service_sid");
      return;
    }
    if (started.answer.error != VerifyError::None) {
      twilio_refusal("starting the verification", started.answer.error,
                     started.answer.twilio_code, started.answer.rate_limit);
      return;
    }
    result_.verification_sid = started.answer.sid;
    const std::string& sid = result_.verification_sid;
    r_.log.debug("verification " + sid + " started for user " +
                 log_safe(user) + " to " + result_.masked_phone);

    const std::string prompt_tail =
        prompt_prefix(cfg.channel) + result_.masked_phone + ": ";
    std::string retry_note;
    for (int attempt = 1; attempt <= cfg.max_attempts; ++attempt) {
      result_.attempts = attempt;
      auto reply = r_.conversation.ask_hidden(retry_note + prompt_tail);
      if (!reply) {
        finish(Outcome::ConversationFailed, describe(reply.error()));
        cancel(client);
        return;
      }
      CodeCheck typed = check_typed_code(reply->view());
      const bool is_password = typed.problem == CodeProblem::None &&
                               r_.conversation.is_password(typed.code.view());
      reply->wipe();
      if (is_password) {
        // sshd's password method answers every prompt with the password;
        // a password must never travel to Twilio as a code.
        typed.code.wipe();
        typed.problem = CodeProblem::IsPassword;
      }
      const int left = cfg.max_attempts - attempt;
      const std::string left_note =
          std::to_string(left) + (left == 1 ? " attempt" : " attempts") +
          " left. ";
      if (typed.problem != CodeProblem::None) {
        r_.log.debug("attempt " + std::to_string(attempt) + ": " +
                     describe(typed.problem) + "; not sent to Twilio");
        retry_note = std::string("Codes are 4 to 10 digits; ") + left_note;
        continue;
      }
      auto checked = client.check(sid, typed.code);
      typed.code.wipe();
      if (checked.transport_failed) {
        transport_failure("checking the code", checked.transport);
        if (!is_unavailable(checked.transport.kind)) cancel(client);
        return;
      }
      const CheckResult& answer = checked.answer;
      if (answer.error != VerifyError::None) {
        twilio_refusal("checking the code", answer.error, answer.twilio_code,
                       answer.rate_limit);
        // After 20404 or 60202 the verification is gone: nothing to cancel;
        // a throttled or unavailable Twilio would refuse the cancel too.
        if (answer.error != VerifyError::NotFound &&
            answer.error != VerifyError::MaxChecks &&
            answer.error != VerifyError::AuthFailed &&
            answer.error != VerifyError::Throttled &&
            answer.error != VerifyError::RateLimited &&
            !is_unavailable(answer.error))
          cancel(client);
        return;
      }
      if (answer.status == CheckStatus::Approved) {
        finish(Outcome::Approved, "code approved");
        return;
      }
      if (answer.status != CheckStatus::Pending) {
        r_.conversation.show_error("The code could not be verified.");
        finish(Outcome::Denied, "verification is no longer pending");
        cancel(client);
        return;
      }
      r_.log.debug("attempt " + std::to_string(attempt) + ": wrong code");
      retry_note = "Wrong code; " + left_note;
    }
    r_.conversation.show_error("Wrong code.");
    finish(Outcome::WrongCode, "no right code in " +
                                   std::to_string(cfg.max_attempts) +
                                   (cfg.max_attempts == 1 ? " attempt"
                                                          : " attempts"));
    cancel(client);
  }

  // The per-user send limit, checked and recorded before every start.
  bool reserve_send(std::int64_t& stamp) {
    if (r_.send_gate == nullptr) return true;
    SendReservation slot = r_.send_gate->reserve(account_.name);
    if (slot.decision == SendDecision::Allowed) {
      stamp = slot.stamp;
      r_.log.debug("send " + std::to_string(slot.used + 1) + " of " +
                   std::to_string(r_.config.send_limit_count) + " within " +
                   std::to_string(r_.config.send_limit_window_s) +
                   " s recorded for user " + log_safe(account_.name));
      return true;
    }
    if (slot.decision == SendDecision::LimitReached) {
      r_.conversation.show_error(
          "Too many codes were sent recently. Try again later.");
      finish(Outcome::SendLimited, slot.detail);
    } else {
      r_.conversation.show_error(
          "A code cannot be sent right now. Contact your administrator.");
      finish(Outcome::StateError, slot.detail);
    }
    return false;
  }

  void give_back(std::int64_t stamp) {
    if (r_.send_gate == nullptr) return;
    const std::string problem = r_.send_gate->release(account_.name, stamp);
    if (problem.empty()) {
      r_.log.debug("nothing was sent: the send is not counted");
    } else {
      r_.log.warning("cannot give back an unsent send: " + problem);
    }
  }

  void finish(Outcome outcome, std::string detail) {
    result_.outcome = outcome;
    result_.detail = std::move(detail);
  }

  // Twilio (or the directory) unavailable: failmode decides, except for a
  // set-id caller, who owns this process and could fake the outage.
  void unavailable(const std::string& detail) {
    if (r_.config.failmode != FailMode::Safe) {
      finish(Outcome::Unavailable, detail);
    } else if (r_.set_id_caller) {
      finish(Outcome::Unavailable,
             detail + "; failmode = safe does not apply to set-id callers "
                      "(su, sudo): denied as with failmode = secure");
    } else {
      r_.log.warning("failmode = safe: letting user " +
                     log_safe(account_.name.empty() ? r_.user : account_.name) +
                     " in WITHOUT the second factor because a service it "
                     "needs is unavailable (" + detail + ")");
      finish(Outcome::FailOpen, detail);
    }
  }

  void transport_failure(const char* step, const TransportError& e) {
    const std::string detail = std::string(step) + ": " + describe(e.kind) +
                               ": " + log_safe(e.detail, 200);
    if (is_unavailable(e.kind)) {
      unavailable(detail);
    } else if (e.kind == TransportErrorKind::LocalResource) {
      finish(Outcome::InternalError, detail);
    } else {
      finish(Outcome::TransportRejected, detail);
    }
  }

  void twilio_refusal(const char* step, VerifyError e, int code,
                      const std::string& rate_limit = {}) {
    std::string detail = std::string(step) + ": " + describe(e);
    const std::string code_text = std::to_string(code);
    if (code != 0 && detail.find(code_text) == std::string::npos)
      detail += " [Twilio code " + code_text + "]";
    if (is_unavailable(e)) {
      unavailable(detail);
      return;
    }
    if (e == VerifyError::Throttled) {
      // Traffic causes a throttle, and anyone can make traffic: it never
      // opens, whatever failmode says.
      finish(Outcome::Unavailable,
             detail + "; a throttle is not an outage: denied under both "
                      "failmodes");
      return;
    }
    if (e == VerifyError::RateLimited) {
      r_.conversation.show_error(user_message(e));
      finish(Outcome::RateLimited,
             detail + ": rate limit " +
                 (rate_limit.empty() ? std::string("(unnamed)")
                                     : "\"" + log_safe(rate_limit, 100) + "\""));
      return;
    }
    if (e == VerifyError::AuthFailed) {
      finish(Outcome::ConfigError,
             detail + "; check account_sid and auth_token (or api_key_sid "
                      "and api_key_secret)");
      return;
    }
    if (e == VerifyError::Malformed) {
      finish(Outcome::TransportRejected, detail);
      return;
    }
    r_.conversation.show_error(user_message(e));
    finish(Outcome::Denied, detail);
  }

  // Best effort: the verification should not stay usable after a failure.
  void cancel(VerifyClient& client) {
    auto reply = client.cancel(result_.verification_sid);
    if (reply.transport_failed) {
      r_.log.debug("cancel of " + result_.verification_sid + " failed: " +
                   describe(reply.transport.kind));
    } else if (reply.answer != VerifyError::None) {
      r_.log.debug("cancel of " + result_.verification_sid + " refused: " +
                   describe(reply.answer));
    } else {
      result_.detail += "; verification canceled";
    }
  }

  const AuthRequest& r_;
  Account account_;
  AuthResult result_;
};

}  // namespace

const char* describe(Outcome outcome) {
  switch (outcome) {
    case Outcome::Approved:
      return "approved";
    case Outcome::FailOpen:
      return "allowed-unavailable";
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

AuthResult authenticate(const AuthRequest& request) {
  return Flow(request).run();
}

std::optional<AuthResult> skip_service(const Config& config,
                                       std::string_view service) {
  if (config.services.empty()) return std::nullopt;  // unset: every service
  if (std::find(config.services.begin(), config.services.end(), service) !=
      config.services.end())
    return std::nullopt;
  AuthResult r;
  r.outcome = Outcome::ServiceSkipped;
  r.detail = "service " + log_token(service) +
             " is not in services: the code is not asked for";
  return r;
}

bool running_set_id() {
  return getauxval(AT_SECURE) != 0 || getuid() != geteuid() ||
         getgid() != getegid();
}

void log_outcome(Logger& log, const std::string& login_name,
                 const AuthResult& r, long elapsed_ms) {
  // The account's own name; the name as typed too when they differ (or
  // alone when no account was found).
  std::string line =
      r.account.empty() ? "user=" + log_token(login_name)
                        : "user=" + log_token(r.account);
  if (!r.account.empty() && r.account != login_name)
    line += " login_name=" + log_token(login_name);
  line += " phone=" + r.masked_phone +
                     " sid=" + r.verification_sid +
                     " result=" + describe(r.outcome) +
                     " attempts=" + std::to_string(r.attempts) +
                     " elapsed_ms=" + std::to_string(elapsed_ms);
  if (!r.detail.empty()) line += " (" + r.detail + ")";
  int priority = LOG_NOTICE;
  switch (r.outcome) {
    case Outcome::Approved:
    case Outcome::NoPhoneSkipped:
      priority = LOG_INFO;
      break;
    case Outcome::FailOpen:
    case Outcome::SendLimited:
    case Outcome::RateLimited:
      priority = LOG_WARNING;
      break;
    case Outcome::ConfigError:
    case Outcome::StateError:
    case Outcome::InternalError:
    case Outcome::InvalidPhone:
    case Outcome::LookupFailed:
    case Outcome::TransportRejected:
      priority = LOG_ERR;
      break;
    default:
      break;
  }
  log.log(priority, line);
}

}  // namespace ptv
