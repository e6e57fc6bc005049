// The verification flow, run by the helper: the account, the phone lookup
// over the sources the module could not ask itself, the send limit (asked
// of the module), start the verification, ask for the code (through the
// module), check it, cancel on failure. Its settings are three parts of
// the configuration; its dependencies one struct of interfaces, which the
// helper fills with the relays to the module and the real transport, and
// unit tests and fuzzers with fakes.
#pragma once

#include <span>
#include <string>

#include "core/account.hpp"
#include "core/conversation.hpp"
#include "core/outcome.hpp"
#include "core/policy.hpp"
#include "core/send_gate.hpp"
#include "net/http_transport.hpp"
#include "phone/source.hpp"
#include "state/settings.hpp"
#include "twilio/settings.hpp"
#include "twilio/code_sender.hpp"
#include "twilio/messaging_code.hpp"
#include "twilio/verify_client.hpp"
#include "util/log.hpp"

namespace ptv {

// How many times one login may ask for the code again (resend or call).
inline constexpr int kMaxResends = 2;

struct FlowSettings {
  const PolicySettings& policy;
  const TwilioSettings& twilio;
  const StateSettings& state;  // for the send limit's log lines
};

struct FlowDeps {
  Conversation& conversation;
  Logger& log;
  // Turns the typed name into the account; nothing else runs for a name
  // that is no account.
  AccountDirectory& accounts;
  // Asked only once a number is known.
  TransportMaker& transports;
  // The phone sources, in the order they are asked.
  std::span<NumberSource* const> sources;
  // Reserves each verification start against the per-user send limit.
  // Null: no limit (unit tests and fuzzers of the rest of the flow).
  SendGate* send_gate = nullptr;
  // How the client waits before retrying a 429 (null: really sleep).
  Sleeper* sleeper = nullptr;
  // The Messaging backend's clock for the code's lifetime (null: the
  // steady clock) and its random bytes (null: getrandom()).
  MonotonicClock* clock = nullptr;
  RandomBytes random = nullptr;
};

struct AuthRequest {
  FlowSettings settings;
  FlowDeps deps;
  const std::string& user;  // as the client typed it (PAM_USER)
  // The process runs set-id (su, sudo): its caller owns its signals, limits
  // and environment, so failmode = "safe" never opens.
  bool set_id_caller = false;
  // PAM_RHOST as the application set it: the client_ip rate limit's key
  // when it is an IP address.
  std::string_view remote_host;
};

// Runs the flow; the result starts as a failure and only an explicit
// approval (or failmode = "safe" with Twilio unavailable) changes that.
AuthResult authenticate(const AuthRequest& request);

}  // namespace ptv
