// What a login came to: the outcome, its PAM result and its word in the
// log (result=...), and the closing log line. Shared by the module, which
// decides and logs, and the helper, which reports.
#pragma once

#include <string>

#include "util/log.hpp"

namespace ptv {

enum class Outcome {
  Approved,            // Twilio answered "approved"
  FailOpen,            // Twilio or the directory unavailable, failmode = "safe"
  ExemptGroup,         // the account is in one of exempt_groups
  ExemptNetwork,       // PAM_RHOST is in one of exempt_networks
  Grace,               // a code approved from this address within grace_period_s
  ServiceSkipped,      // `services` is set and does not list this service
  NoPhoneSkipped,      // no number and no_phone = "skip"
  UnknownUser,         // the user name is no account: nothing looked up
  NoPhoneDenied,       // no number and no_phone = "deny"
  InvalidPhone,        // a source holds something that is not E.164
  LookupFailed,        // a phone source failed (TLS, command error...)
  WrongCode,           // no right code within max_attempts
  Denied,              // Twilio refused: expired, too many tries, blocked...
  Unavailable,         // Twilio or the directory unavailable, failmode = "secure"
  TransportRejected,   // TLS failure, oversized or malformed answer
  ConversationFailed,  // the application could not ask for the code
  ConfigError,         // bad module arguments, config file or credentials
  SendLimited,         // the user's send_limit is used up: nothing sent
  StateError,          // the send_limit state cannot be used: nothing sent
  RateLimited,         // a rate limit of the Verify service refused the send
  InternalError,       // a local failure (memory, descriptors, threads...)
};

const char* describe(Outcome outcome);

// The PAM result of an outcome. Only Approved, FailOpen and the policy the
// administrator wrote (ExemptGroup, ExemptNetwork, Grace) succeed.
int pam_result_for(Outcome outcome);

struct AuthResult {
  Outcome outcome = Outcome::InternalError;
  std::string account;  // the account's own name, once resolved
  std::string masked_phone = "-";
  std::string verification_sid = "-";
  int attempts = 0;
  std::string detail;  // safe to log
};

// The one log line per outcome (account, the name as typed when it
// differs, masked phone, SID, result, time), at the outcome's priority.
void log_outcome(Logger& log, const std::string& login_name,
                 const AuthResult& r, long elapsed_ms);

// A result decided before any lookup (a configuration error, say).
AuthResult decided(Outcome outcome, std::string account, std::string detail);

}  // namespace ptv
