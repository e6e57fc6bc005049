// The Twilio part of the configuration (the twilio = { ... } group): the
// account and its credentials, the Verify service, and how it is reached.
#pragma once

#include <string>

#include "util/secret.hpp"

namespace ptv {

inline constexpr const char* kDefaultApiUrl = "https://verify.twilio.com";

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

  // The Basic auth user: the API key SID when one is set, else the account.
  [[nodiscard]] const std::string& auth_user() const {
    return api_key_sid.empty() ? account_sid : api_key_sid;
  }
  [[nodiscard]] const Secret& auth_secret() const {
    return api_key_sid.empty() ? auth_token : api_key_secret;
  }
};

}  // namespace ptv
