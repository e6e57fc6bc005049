// The Twilio Verify v2 client: the three requests the module makes, built
// exactly as Twilio's OpenAPI document describes them.
#pragma once

#include <string>

#include "config.hpp"
#include "http_transport.hpp"
#include "verify_response.hpp"

namespace ptv {

// The outcome of one request: a transport failure, or Twilio's answer.
template <typename Answer>
struct Reply {
  bool transport_failed = false;
  TransportError transport;  // when transport_failed
  Answer answer;             // otherwise
};

class VerifyClient {
 public:
  VerifyClient(const Config& config, HttpTransport& http)
      : config_(config), http_(http) {}

  // POST {api_url}/v2/Services/{service_sid}/Verifications  To, Channel
  Reply<StartResult> start(const std::string& to);
  // POST .../VerificationCheck  VerificationSid, Code
  Reply<CheckResult> check(const std::string& verification_sid,
                           const Secret& code);
  // POST .../Verifications/{sid}  Status=canceled
  Reply<VerifyError> cancel(const std::string& verification_sid);

  [[nodiscard]] std::string service_url() const;

 private:
  const Config& config_;
  HttpTransport& http_;
};

}  // namespace ptv
