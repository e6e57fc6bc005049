#include "authenticate.hpp"

#include <security/pam_modules.h>

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
  void run_steps() {
    const Config& cfg = r_.config;
    PhoneLookup phone = lookup_phone(
        cfg, r_.user,
        PhoneReaders{r_.read_gecos, r_.query_ldap, r_.query_command});
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
                     started.answer.twilio_code);
      return;
    }
    result_.verification_sid = started.answer.sid;
    const std::string& sid = result_.verification_sid;
    r_.log.debug("verification " + sid + " started for user " +
                 log_safe(r_.user) + " to " + result_.masked_phone);

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
        twilio_refusal("checking the code", answer.error, answer.twilio_code);
        // After 20404 or 60202 the verification is gone: nothing to cancel.
        if (answer.error != VerifyError::NotFound &&
            answer.error != VerifyError::MaxChecks &&
            answer.error != VerifyError::AuthFailed &&
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
    SendReservation slot = r_.send_gate->reserve(r_.user);
    if (slot.decision == SendDecision::Allowed) {
      stamp = slot.stamp;
      r_.log.debug("send " + std::to_string(slot.used + 1) + " of " +
                   std::to_string(r_.config.send_limit_count) + " within " +
                   std::to_string(r_.config.send_limit_window_s) +
                   " s recorded for user " + log_safe(r_.user));
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
    const std::string problem = r_.send_gate->release(r_.user, stamp);
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

  // Twilio unavailable: failmode decides. Anything else denies.
  void unavailable(const std::string& detail) {
    if (r_.config.failmode == FailMode::Safe) {
      r_.log.warning("failmode = safe: letting user " + log_safe(r_.user) +
                     " in WITHOUT the second factor because a service it "
                     "needs is unavailable (" + detail + ")");
      finish(Outcome::FailOpen, detail);
    } else {
      finish(Outcome::Unavailable, detail);
    }
  }

  void transport_failure(const char* step, const TransportError& e) {
    const std::string detail = std::string(step) + ": " + describe(e.kind) +
                               ": " + log_safe(e.detail, 200);
    if (is_unavailable(e.kind)) {
      unavailable(detail);
    } else {
      finish(Outcome::TransportRejected, detail);
    }
  }

  void twilio_refusal(const char* step, VerifyError e, int code) {
    std::string detail = std::string(step) + ": " + describe(e);
    const std::string code_text = std::to_string(code);
    if (code != 0 && detail.find(code_text) == std::string::npos)
      detail += " [Twilio code " + code_text + "]";
    if (is_unavailable(e)) {
      unavailable(detail);
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
  AuthResult result_;
};

}  // namespace

const char* describe(Outcome outcome) {
  switch (outcome) {
    case Outcome::Approved:
      return "approved";
    case Outcome::FailOpen:
      return "allowed-unavailable";
    case Outcome::NoPhoneSkipped:
      return "skipped-no-phone";
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
      return PAM_IGNORE;
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
    case Outcome::InternalError:
      return PAM_AUTH_ERR;
  }
  return PAM_AUTH_ERR;
}

AuthResult authenticate(const AuthRequest& request) {
  return Flow(request).run();
}

void log_outcome(Logger& log, const std::string& user, const AuthResult& r,
                 long elapsed_ms) {
  std::string line = "user=" + log_safe(user) + " phone=" + r.masked_phone +
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
