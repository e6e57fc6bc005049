#include "twilio/rate_limits.hpp"

#include "core/network.hpp"
#include "util/sha256.hpp"

namespace ptv {

namespace {

// Names are letters, digits, "_" and "-" (config), values hex digits or an
// address's canonical text: nothing in them needs escaping.
void add_key(std::string& json, std::string_view name, std::string_view value) {
  json += json.empty() ? "{" : ",";
  json += "\"";
  json += name;
  json += "\":\"";
  json += value;
  json += "\"";
}

}  // namespace

std::string account_pseudonym(const TwilioSettings& twilio, std::string_view account) {
  return hmac_sha256_hex(twilio.auth_secret().view(), account).substr(0, 32);
}

std::string rate_limits_json(const TwilioSettings& twilio, std::string_view account,
                             std::string_view remote_host) {
  const RateLimitSettings& limits = twilio.rate_limits;
  std::string json;
  if (limits.account.declared())
    add_key(json, limits.account.unique_name, account_pseudonym(twilio, account));
  if (limits.client_ip.declared())
    if (const auto address = parse_ip_literal(remote_host))
      add_key(json, limits.client_ip.unique_name, canonical_text(*address));
  if (!json.empty()) json += "}";
  return json;
}

}  // namespace ptv
