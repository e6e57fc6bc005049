// The authentication flow, independent of libpam: phone lookup, start the
// verification, ask for the code, check it, cancel on failure. The PAM
// entry point wires in the real conversation, transport and logger; unit
// tests and fuzzers wire in fakes.
#pragma once

#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "account.hpp"
#include "config.hpp"
#include "conversation.hpp"
#include "http_transport.hpp"
#include "log.hpp"
#include "phone.hpp"
#include "send_limit.hpp"
#include "verify_client.hpp"

namespace ptv {

enum class Outcome {
  Approved,            // Twilio answered "approved"
  FailOpen,            // Twilio or the directory unavailable, failmode = "safe"
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

// The PAM result of an outcome. Only Approved and FailOpen succeed.
int pam_result_for(Outcome outcome);

using TransportFactory = std::function<
    std::expected<std::unique_ptr<HttpTransport>, TransportError>()>;

struct AuthRequest {
  const Config& config;
  const std::string& user;  // as the client typed it (PAM_USER)
  Conversation& conversation;
  Logger& log;
  // Turns the typed name into the account; nothing else runs for a name
  // that is no account.
  const AccountResolver& resolve_account;
  const TransportFactory& make_transport;  // called only once a number is known
  // How the client waits before retrying a 429 (nullptr: really sleep).
  VerifyClient::Sleeper sleep = nullptr;
  // Reserves each verification start against the per-user send limit.
  // Null: no limit (unit tests and fuzzers of the rest of the flow).
  SendGate* send_gate = nullptr;
  // The directory and command sources (empty: listed sources fail closed).
  SourceQuery query_ldap = nullptr;
  SourceQuery query_command = nullptr;
  // The process runs set-id (su, sudo): its caller owns its signals, limits
  // and environment, so failmode = "safe" never opens.
  bool set_id_caller = false;
};

struct AuthResult {
  Outcome outcome = Outcome::InternalError;
  std::string account;  // the account's own name, once resolved
  std::string masked_phone = "-";
  std::string verification_sid = "-";
  int attempts = 0;
  std::string detail;  // safe to log
};

// Runs the flow; the result starts as a failure and only an explicit
// approval (or failmode = "safe" with Twilio unavailable) changes that.
AuthResult authenticate(const AuthRequest& request);

// The `services` setting: a result (skipped-service) when this PAM service
// is not one that asks for the code, else nothing.
std::optional<AuthResult> skip_service(const Config& config,
                                       std::string_view service);

// True when the process runs set-id: AT_SECURE, or real and effective user
// or group ids that differ (su and sudo, any setuid program).
bool running_set_id();

// The one log line per outcome (account, the name as typed when it
// differs, masked phone, SID, result, time).
void log_outcome(Logger& log, const std::string& login_name,
                 const AuthResult& r, long elapsed_ms);

}  // namespace ptv
