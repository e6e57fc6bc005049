// The Twilio part of the configuration (the twilio = { ... } group): the
// account and its credentials, the Verify service, and how it is reached.
#pragma once

#include <string>
#include <vector>

#include "util/secret.hpp"

namespace ptv {

inline constexpr const char* kDefaultApiUrl = "https://verify.twilio.com";

// One bucket of a Verify rate limit: at most `max` creates of a
// verification per key within `interval_s` seconds.
struct RateLimitBucket {
  long max = 0;
  long interval_s = 0;
};

// One of the Verify service's rate limits (rate_limits.account or
// rate_limits.client_ip): its unique name on the service and its buckets.
// An empty unique_name: not declared.
struct RateLimit {
  std::string unique_name;
  std::vector<RateLimitBucket> buckets;
  [[nodiscard]] bool declared() const { return !unique_name.empty(); }
};

// rate_limits = { account = { ... }; client_ip = { ... }; }: the keys sent
// as RateLimits on every create of a verification.
struct RateLimitSettings {
  RateLimit account;    // keyed by a pseudonym of the account
  RateLimit client_ip;  // keyed by PAM_RHOST when it is an IP address
};

// Bounds of the settings. Twilio's document gives no range for a bucket;
// these keep a bucket within a day, as the send limit's window is.
inline constexpr long kMaxBucketMax = 100000;
inline constexpr long kMaxBucketIntervalS = 86400;
inline constexpr std::size_t kMaxRateLimitNameLength = 64;

struct TwilioSettings {
  std::string account_sid;
  Secret auth_token;
  std::string api_key_sid;
  Secret api_key_secret;
  std::string service_sid;
  std::string api_url = kDefaultApiUrl;
  std::string ca_file;  // empty: the system trust store
  std::string proxy;    // empty: no proxy (the environment is never used)
  long connect_timeout_ms = 3000;
  long timeout_ms = 10000;
  RateLimitSettings rate_limits;  // the root setting rate_limits

  // The Basic auth user: the API key SID when one is set, else the account.
  [[nodiscard]] const std::string& auth_user() const {
    return api_key_sid.empty() ? account_sid : api_key_sid;
  }
  [[nodiscard]] const Secret& auth_secret() const {
    return api_key_sid.empty() ? auth_token : api_key_secret;
  }
};

}  // namespace ptv
