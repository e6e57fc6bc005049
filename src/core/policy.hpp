// The policy part of the configuration: who is asked for the code, how,
// how often, and what happens when no number is known or a service is
// down.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/network.hpp"
#include "core/outcome.hpp"

namespace ptv {

enum class FailMode { Secure, Safe };
enum class NoPhone { Deny, Skip };

struct PolicySettings {
  std::string channel = "sms";  // "sms", "call" or "whatsapp"
  // Sent as Locale when starting; empty: Twilio chooses by the country.
  std::string locale;
  FailMode failmode = FailMode::Secure;
  NoPhone no_phone = NoPhone::Deny;
  int max_attempts = 3;
  // The PAM services (PAM_SERVICE) that ask for the code. Unset (empty,
  // services_set false): every service. Set: a non-empty list of distinct
  // names; any other service is left to the rest of the stack (PAM_IGNORE).
  std::vector<std::string> services;
  bool services_set = false;
  // Who skips the code (core/access.hpp): members of these groups, logins
  // from these networks (PAM_RHOST), and for grace_period_s seconds (0:
  // off) the account from the address of its last approved code.
  std::vector<std::string> exempt_groups;
  std::vector<Network> exempt_networks;
  int grace_period_s = 0;
};

// The `services` setting: a result (skipped-service) when this PAM service
// is not one that asks for the code, else nothing.
std::optional<AuthResult> skip_service(const PolicySettings& policy,
                                       std::string_view service);

// True when the process runs set-id: AT_SECURE, or real and effective user
// or group ids that differ (su and sudo, any setuid program). Its caller
// owns its signals, limits and environment: failmode = "safe" never opens.
bool running_set_id();

// Twilio or the directory is unavailable: failmode decides, except for a
// set-id caller, who could fake the outage. FailOpen is logged as a
// warning naming the account.
AuthResult unavailable(const PolicySettings& policy, bool set_id_caller,
                       const std::string& account, std::string detail,
                       Logger& log);

}  // namespace ptv
