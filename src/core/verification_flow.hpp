// The verification flow, run by the helper: the phone lookup from the
// first source the module could not answer itself, the send limit (asked of
// the module), start the verification, ask for the code (through the
// module), check it, cancel on failure. The helper wires in the relays to
// the module and the real transport; unit tests and fuzzers wire in fakes.
#pragma once

#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/account.hpp"
#include "config/config.hpp"
#include "core/conversation.hpp"
#include "net/http_transport.hpp"
#include "util/log.hpp"
#include "phone/phone.hpp"
#include "core/outcome.hpp"
#include "core/send_gate.hpp"
#include "twilio/verify_client.hpp"

namespace ptv {

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

// Runs the flow; the result starts as a failure and only an explicit
// approval (or failmode = "safe" with Twilio unavailable) changes that.
AuthResult authenticate(const AuthRequest& request);

}  // namespace ptv
