// The RateLimits field of a create (Verify's Programmable Rate Limits):
// the keys a login is counted under by the service's rate limits, built
// from rate_limits = { ... }. The account's key is a pseudonym, never the
// name itself; the client's key is its IP address, never a host name.
#pragma once

#include <string>
#include <string_view>

#include "twilio/settings.hpp"

namespace ptv {

// The account's key: the first 32 hex digits of HMAC-SHA-256 keyed with
// the account's secret (auth_token, or api_key_secret with an API key)
// over the account's own name. The same on every host that shares the
// credentials; without the secret it names no one.
std::string account_pseudonym(const TwilioSettings& twilio, std::string_view account);

// The RateLimits JSON object ({"pam_account":"...","pam_client_ip":"..."}),
// with a key for each declared rate limit that has a value: client_ip only
// when remote_host (PAM_RHOST) is an IP literal, in its canonical text.
// Empty when no key applies (no RateLimits is sent).
std::string rate_limits_json(const TwilioSettings& twilio, std::string_view account,
                             std::string_view remote_host);

}  // namespace ptv
