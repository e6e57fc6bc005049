#include "core/verification_flow.hpp"

#include <algorithm>

#include "core/code_input.hpp"
#include "twilio/verify_client.hpp"

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
      // Checked where it was typed: 4 to 10 digits, never the password
      // (sshd's password method answers every prompt with it).
      auto asked = r_.conversation.ask_code(retry_note + prompt_tail);
      if (!asked) {
        finish(Outcome::ConversationFailed, describe(asked.error()));
        cancel(client);
        return;
      }
      CodeCheck typed = std::move(*asked);
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

AuthResult authenticate(const AuthRequest& request) {
  return Flow(request).run();
}

}  // namespace ptv
