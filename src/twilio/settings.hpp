// The Twilio part of the configuration (the twilio = { ... } group): the
// account and its credentials, the Verify service or the Messaging sender
// (backend, messaging = { ... }), and how Twilio is reached.
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

// Which Twilio API sends and checks the code: Verify (Twilio makes the
// code and checks it), or Programmable Messaging (the helper makes the
// code, sends it in an SMS and checks it itself).
enum class Backend { Verify, Messaging };

inline constexpr const char* kDefaultMessagingApiUrl = "https://api.twilio.com";
inline constexpr const char* kDefaultMessageBody = "Your login code for %h is %c";

// messaging = { ... }: the sender (a number or a Messaging Service, exactly
// one), the code and the text of the message.
struct MessagingSettings {
  std::string from;                   // E.164, or empty
  std::string messaging_service_sid;  // MG + 32 hex digits, or empty
  std::string api_url = kDefaultMessagingApiUrl;
  int code_length = 6;   // 6 to 10 digits
  int code_ttl_s = 300;  // 60 to 900
  std::string body = kDefaultMessageBody;  // %c the code, %h the host, %%
};

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
  Backend backend = Backend::Verify;  // the root setting backend
  MessagingSettings messaging;        // the root group messaging

  // The Basic auth user: the API key SID when one is set, else the account.
  [[nodiscard]] const std::string& auth_user() const {
    return api_key_sid.empty() ? account_sid : api_key_sid;
  }
  [[nodiscard]] const Secret& auth_secret() const {
    return api_key_sid.empty() ? auth_token : api_key_secret;
  }
};

}  // namespace ptv
