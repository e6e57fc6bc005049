#include "core/verification_flow.hpp"

#include <memory>
#include <optional>

#include "core/code_input.hpp"
#include "phone/lookup.hpp"
#include "phone/phone.hpp"
#include "twilio/messaging_sender.hpp"
#include "twilio/rate_limits.hpp"

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
    case VerifyError::Expired:
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
    case VerifyError::Undeliverable:
      return "A code cannot be sent to your phone number. Contact your "
             "administrator.";
    case VerifyError::RateLimited:
      return "Too many codes were requested for this account. Try again "
             "later.";
    default:
      return "The code could not be verified.";
  }
}

// After these the verification is gone (20404, 60202) or Twilio would
// refuse the cancel too (credentials, throttle, outage): nothing to cancel.
bool cancel_after(VerifyError e) {
  return e != VerifyError::NotFound && e != VerifyError::Expired &&
         e != VerifyError::MaxChecks &&
         e != VerifyError::AuthFailed && e != VerifyError::Throttled &&
         e != VerifyError::RateLimited && !is_unavailable(e);
}

// The note of the prompt after a resend or call that sent nothing: the
// login goes on with the code already sent.
const char* resend_failed(const VerifyFailure& f) {
  const auto* refused = std::get_if<Refusal>(&f);
  if (refused == nullptr)
    return "The code could not be sent again; use the code already sent. ";
  switch (refused->error) {
    case VerifyError::MaxSends:
      return "Too many codes were sent to your phone; use the code already "
             "sent. ";
    case VerifyError::RateLimited:
      return "Too many codes were requested for this account; use the code "
             "already sent. ";
    case VerifyError::Throttled:
    case VerifyError::MaxChecks:
      return "Too many codes were requested; use the code already sent. ";
    default:
      return "The code could not be sent again; use the code already sent. ";
  }
}

bool is_not_found(const VerifyFailure& f) {
  const auto* refused = std::get_if<Refusal>(&f);
  return refused != nullptr && refused->error == VerifyError::NotFound;
}

std::string attempts_left(int left) {
  return std::to_string(left) + (left == 1 ? " attempt" : " attempts") +
         " left. ";
}

class Flow {
 public:
  explicit Flow(const AuthRequest& request)
      : r_(request),
        policy_(request.settings.policy),
        deps_(request.deps),
        channel_(request.settings.policy.channel),
        locale_(request.settings.policy.locale) {}

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
    if (!resolve_account()) return;
    const std::optional<std::string> number = find_phone();
    if (!number) return;
    result_.masked_phone = mask_phone(*number);
    auto transport = deps_.transports.make();
    if (!transport) {
      finish(Outcome::InternalError,
             "cannot set up HTTP: " + transport.error().detail);
      return;
    }
    const TwilioSettings& twilio = r_.settings.twilio;
    std::unique_ptr<CodeSender> client;
    if (twilio.backend == Backend::Messaging) {
      client = std::make_unique<MessagingSender>(
          twilio, **transport, policy_.max_attempts, deps_.clock, deps_.random);
    } else {
      client = std::make_unique<VerifyClient>(twilio, **transport, deps_.sleeper);
    }
    number_ = *number;
    if (start(*client, *number)) ask_and_check(*client);
  }

  // The typed name becomes the account; an unknown name stops here,
  // before any lookup or request.
  bool resolve_account() {
    auto account = deps_.accounts.resolve(r_.user);
    if (!account) {
      finish(account.error().kind == AccountError::Kind::Unknown
                 ? Outcome::UnknownUser
                 : Outcome::InternalError,
             account.error().detail);
      return false;
    }
    account_ = std::move(*account);
    result_.account = account_.name;
    rate_limits_ = rate_limits_json(r_.settings.twilio, account_.name,
                                    r_.remote_host);
    return true;
  }

  // The number to send the code to; nothing when the login ends here.
  std::optional<std::string> find_phone() {
    PhoneLookup found = lookup_phone(deps_.sources, account_.name);
    if (!found) {
      phone_failure(found.error());
    } else if (!found->has_value()) {
      if (policy_.no_phone == NoPhone::Skip) {
        finish(Outcome::NoPhoneSkipped, "no phone number; no_phone = skip");
      } else {
        finish(Outcome::NoPhoneDenied, "no phone number; no_phone = deny");
      }
    } else {
      return std::move((*found)->number);
    }
    return std::nullopt;
  }

  void phone_failure(const PhoneError& e) {
    const std::string detail = "looking up the phone number: " + describe(e);
    switch (e.kind) {
      case PhoneErrorKind::Invalid:
        finish(Outcome::InvalidPhone, e.detail);
        return;
      case PhoneErrorKind::Unavailable:
        // Like Twilio being unreachable: failmode decides.
        unavailable(detail);
        return;
      case PhoneErrorKind::Failed:
        finish(Outcome::LookupFailed, detail);
        return;
      case PhoneErrorKind::Misconfigured:
        finish(Outcome::ConfigError, detail);
        return;
      case PhoneErrorKind::Internal:
        break;
    }
    finish(Outcome::InternalError, detail);
  }

  // Reserves a send and starts the verification; false when the login
  // ends here.
  bool start(CodeSender& client, const std::string& number) {
    std::int64_t reserved = 0;
    if (!reserve_send(reserved)) return false;
    auto started = client.start(number, channel_, locale_, rate_limits_);
    if (!started && !locale_.empty() && is_not_found(started.error())) {
      // Perhaps a locale Twilio does not know: once more without it.
      deps_.log.notice("starting the verification: Twilio answered " +
                       describe(started.error()) + " with Locale=" +
                       log_safe(locale_) + "; trying once more without Locale");
      locale_.clear();
      started = client.start(number, channel_, {}, rate_limits_);
    }
    if (started) {
      result_.verification_sid = std::move(*started);
      deps_.log.debug("verification " + result_.verification_sid +
                      " started for user " + log_safe(account_.name) + " to " +
                      result_.masked_phone);
      return true;
    }
    const char* step = "starting the verification";
    if (const auto* t = std::get_if<TransportError>(&started.error())) {
      // Unreachable: the request never left, so no message can have been
      // sent. Any other failure may have come after Twilio sent one.
      if (t->kind == TransportErrorKind::Unreachable) give_back(reserved);
      transport_failure(step, *t);
    } else if (const auto& refused = std::get<Refusal>(started.error());
               refused.error == VerifyError::NotFound) {
      // Nothing exists yet that could have expired: the service is wrong.
      finish(Outcome::ConfigError, std::string(step) + ": " + client.not_found_hint());
    } else {
      twilio_refusal(step, refused);
    }
    return false;
  }

  // The prompt: the first one names the words that send the code again
  // (without call where the backend cannot call).
  [[nodiscard]] std::string prompt(bool first, bool call) const {
    if (!first) return prompt_prefix(channel_) + result_.masked_phone + ": ";
    return prompt_prefix(channel_) + result_.masked_phone +
           (call ? " (or type resend, call): " : " (or type resend): ");
  }

  // Up to max_attempts codes, each checked where it was typed (4 to 10
  // digits, never the password: sshd's password method answers every
  // prompt with it) before it goes to Twilio. Up to kMaxResends times
  // resend or call instead, which use up no attempt; a word after those
  // is refused and uses up an attempt, so the prompts stay bounded.
  void ask_and_check(CodeSender& client) {
    const int max = policy_.max_attempts;
    std::string retry_note;
    for (int attempt = 1; attempt <= max; ++attempt) {
      result_.attempts = attempt;
      auto asked = deps_.conversation.ask_code(
          retry_note + prompt(attempt == 1 && requests_ == 0, client.offers_call()));
      if (!asked) {
        finish(Outcome::ConversationFailed, describe(asked.error()));
        cancel(client);
        return;
      }
      if (asked->request == CodeRequest::Call && !client.offers_call())
        asked->request = CodeRequest::None;  // not offered: not a code either
      if (asked->request != CodeRequest::None && requests_ < kMaxResends) {
        retry_note = resend(client, asked->request);
        --attempt;  // no attempt used
        continue;
      }
      const std::string left = attempts_left(max - attempt);
      const std::string number = "attempt " + std::to_string(attempt) + ": ";
      if (asked->request != CodeRequest::None) {
        deps_.log.notice(std::string(describe(asked->request)) + " refused: " +
                         std::to_string(kMaxResends) + " already asked in this login");
        retry_note = "No more codes can be sent in this login; " + left;
        continue;
      }
      if (asked->problem != CodeProblem::None) {
        deps_.log.debug(number + describe(asked->problem) + "; not sent to Twilio");
        retry_note = std::string("Codes are 4 to 10 digits; ") + left;
        continue;
      }
      if (!wrong_code(client, asked->code)) return;
      deps_.log.debug(number + "wrong code");
      retry_note = "Wrong code; " + left;
    }
    deps_.conversation.show_error("Wrong code.");
    finish(Outcome::WrongCode, "no right code in " + std::to_string(max) +
                                   (max == 1 ? " attempt" : " attempts"));
    cancel(client);
  }

  // Checks one code: true when it was wrong and the person may try again;
  // otherwise the login ends (approved, or why not).
  bool wrong_code(CodeSender& client, Secret& code) {
    auto checked = client.check(result_.verification_sid, code);
    code.wipe();
    const char* step = "checking the code";
    if (!checked) {
      if (const auto* t = std::get_if<TransportError>(&checked.error())) {
        transport_failure(step, *t);
        if (!is_unavailable(t->kind)) cancel(client);
      } else {
        const Refusal& refused = std::get<Refusal>(checked.error());
        twilio_refusal(step, refused);
        if (cancel_after(refused.error)) cancel(client);
      }
      return false;
    }
    if (*checked == CheckStatus::Approved) {
      finish(Outcome::Approved, "code approved");
      return false;
    }
    if (*checked == CheckStatus::Pending) return true;
    deps_.conversation.show_error("The code could not be verified.");
    finish(Outcome::Denied, "verification is no longer pending");
    cancel(client);
    return false;
  }

  // resend or call typed at the prompt: Twilio's create on the same To,
  // which sends the pending verification's code again (by a call for
  // `call`), counted by the send limit like any send. The login goes on
  // whatever happens: the note for the next prompt says what did.
  std::string resend(CodeSender& client, CodeRequest request) {
    ++requests_;
    const std::string channel = request == CodeRequest::Call ? "call" : channel_;
    const std::string head =
        std::string(describe(request)) + " " + std::to_string(requests_) +
        " of " + std::to_string(kMaxResends) + " for user " +
        log_safe(account_.name) + " to " + result_.masked_phone + " by " +
        channel + ": ";
    const char* goes_on = "; the login goes on with the code already sent";
    const SendReservation slot = reserve();
    if (slot.decision == SendDecision::LimitReached) {
      deps_.log.notice(head + "refused by the send limit: " + slot.detail + goes_on);
      return "Too many codes were sent recently; use the code already sent. ";
    }
    if (slot.decision != SendDecision::Allowed) {
      deps_.log.warning(head + "the send limit cannot be used: " + slot.detail + goes_on);
      return "No code can be sent right now; use the code already sent. ";
    }
    auto started = client.resend(number_, channel, locale_, rate_limits_);
    if (!started) {
      const auto* t = std::get_if<TransportError>(&started.error());
      if (t != nullptr && t->kind == TransportErrorKind::Unreachable)
        give_back(slot.stamp);
      deps_.log.notice(head + "not sent: " + log_safe(describe(started.error()), 200) +
                       goes_on);
      return resend_failed(started.error());
    }
    if (*started != result_.verification_sid)  // the first one had expired
      deps_.log.info(head + "Twilio started a new verification");
    result_.verification_sid = std::move(*started);
    channel_ = channel;
    deps_.log.info(head + "sent again (verification " + result_.verification_sid + ")");
    return request == CodeRequest::Call ? "Calling you with the code. "
                                        : "Code sent again. ";
  }

  // Reserves a send with the per-user send limit (always allowed without
  // one).
  SendReservation reserve() {
    SendReservation slot;
    slot.decision = SendDecision::Allowed;
    if (deps_.send_gate == nullptr) return slot;
    slot = deps_.send_gate->reserve(account_.name);
    if (slot.decision == SendDecision::Allowed) {
      const StateSettings& state = r_.settings.state;
      deps_.log.debug("send " + std::to_string(slot.used + 1) + " of " +
                      std::to_string(state.send_limit_count) + " within " +
                      std::to_string(state.send_limit_window_s) +
                      " s recorded for user " + log_safe(account_.name));
    }
    return slot;
  }

  // The per-user send limit, checked and recorded before the first start.
  bool reserve_send(std::int64_t& stamp) {
    SendReservation slot = reserve();
    if (slot.decision == SendDecision::Allowed) {
      stamp = slot.stamp;
      return true;
    }
    if (slot.decision == SendDecision::LimitReached) {
      deps_.conversation.show_error(
          "Too many codes were sent recently. Try again later.");
      finish(Outcome::SendLimited, slot.detail);
    } else {
      deps_.conversation.show_error(
          "A code cannot be sent right now. Contact your administrator.");
      finish(Outcome::StateError, slot.detail);
    }
    return false;
  }

  void give_back(std::int64_t stamp) {
    if (deps_.send_gate == nullptr) return;
    if (auto given = deps_.send_gate->release(account_.name, stamp)) {
      deps_.log.debug("nothing was sent: the send is not counted");
    } else {
      deps_.log.warning("cannot give back an unsent send: " +
                        describe(given.error()));
    }
  }

  void finish(Outcome outcome, std::string detail) {
    result_.outcome = outcome;
    result_.detail = std::move(detail);
  }

  void unavailable(const std::string& detail) {
    AuthResult r = ptv::unavailable(policy_, r_.set_id_caller, account_.name,
                                    detail, deps_.log);
    finish(r.outcome, std::move(r.detail));
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

  void twilio_refusal(const char* step, const Refusal& refused) {
    const VerifyError e = refused.error;
    const std::string detail = std::string(step) + ": " + describe(refused);
    if (is_unavailable(e)) {
      unavailable(detail);
    } else if (e == VerifyError::Throttled) {
      // Traffic causes a throttle, and anyone can make traffic: it never
      // opens, whatever failmode says.
      finish(Outcome::Unavailable, detail + "; a throttle is not an outage: "
                                            "denied under both failmodes");
    } else if (e == VerifyError::RateLimited) {
      // describe() named the rate limit; never retried in this login.
      deps_.conversation.show_error(user_message(e));
      finish(Outcome::RateLimited, detail);
    } else if (e == VerifyError::SenderRefused) {
      finish(Outcome::ConfigError, detail);
    } else if (e == VerifyError::AuthFailed) {
      finish(Outcome::ConfigError,
             detail + "; check account_sid and auth_token (or api_key_sid "
                      "and api_key_secret)");
    } else if (e == VerifyError::Malformed) {
      finish(Outcome::TransportRejected, detail);
    } else {
      deps_.conversation.show_error(user_message(e));
      finish(Outcome::Denied, detail);
    }
  }

  // Best effort: the verification should not stay usable after a failure.
  void cancel(CodeSender& client) {
    const std::string& sid = result_.verification_sid;
    auto canceled = client.cancel(sid);
    if (canceled) {
      result_.detail += "; verification canceled";
    } else if (const auto* t = std::get_if<TransportError>(&canceled.error())) {
      deps_.log.debug("cancel of " + sid + " failed: " + describe(t->kind));
    } else {
      deps_.log.debug("cancel of " + sid + " refused: " +
                      describe(std::get<Refusal>(canceled.error()).error));
    }
  }

  const AuthRequest& r_;
  const PolicySettings& policy_;
  const FlowDeps& deps_;
  Account account_;
  AuthResult result_;
  std::string number_;   // the number the code goes to
  std::string channel_;  // the last channel used: the prompt's wording
  std::string locale_;   // cleared when Twilio did not take it
  std::string rate_limits_;  // the RateLimits of every create; may be empty
  int requests_ = 0;     // resend and call asked in this login
};

}  // namespace

AuthResult authenticate(const AuthRequest& request) {
  return Flow(request).run();
}

}  // namespace ptv
