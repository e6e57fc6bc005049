// The module's side of a login: every decision that needs no network. The
// account, the phone sources the module can read itself (the file's users
// list, GECOS), the no_phone decision, and only when a code is to be sent
// or a directory or command must be asked, the helper, whose result it
// takes, checks and logs. A login that needs no code never starts the
// helper.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/account.hpp"
#include "config/config.hpp"
#include "core/conversation.hpp"
#include "pam/helper_client.hpp"
#include "util/log.hpp"
#include "core/outcome.hpp"
#include "core/send_gate.hpp"

namespace ptv {

struct ClientRequest {
  const Config& config;
  const std::string& config_path;  // handed to the helper, which reads it too
  const std::string& login_name;   // as the client typed it (PAM_USER)
  Conversation& conversation;
  Logger& log;
  const AccountResolver& resolve_account;
  const HelperStarter& start_helper;
  SendGate* send_gate = nullptr;  // null: no limit (tests)
  bool set_id_caller = false;     // the process runs set-id (su, sudo)
};

// The result starts as a failure; only the helper's approval (or failmode
// = "safe" on an outage, never for a set-id caller) changes that.
AuthResult authenticate_client(const ClientRequest& request);

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
