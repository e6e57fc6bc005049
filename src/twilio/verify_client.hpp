// The Twilio Verify v2 client: the three requests the module makes, built
// exactly as Twilio's OpenAPI document describes them.
#pragma once

#include <chrono>
#include <string>

#include "config/config.hpp"
#include "net/http_transport.hpp"
#include "twilio/verify_response.hpp"

namespace ptv {

// The outcome of one request: a transport failure, or Twilio's answer.
template <typename Answer>
struct Reply {
  bool transport_failed = false;
  TransportError transport;  // when transport_failed
  Answer answer;             // otherwise
};

// Time budgets. Each request (start, check, cancel) ends within its budget,
// its one retry included, so a whole login spends at most
//   timeout_ms * (1 + max_attempts) + min(timeout_ms, kCancelBudgetMs)
// waiting for Twilio (time the user spends typing is not counted).
inline constexpr long kCancelBudgetMs = 3000;

// A request is retried once, within its budget, only where a retry cannot
// send a second SMS or count a second check:
//  - the connection failed before the request went out (DNS failure,
//    connection refused, connect timeout);
//  - Twilio answered 429 with a Retry-After (seconds) that fits in what is
//    left of the budget, and named no rate limit of the service
//    (Twilio-Reached-Rate-Limit): Twilio did not process the request.
// Timeouts after the request was sent, 5xx answers and broken exchanges are
// not retried: Twilio may have acted on the request.
class VerifyClient {
 public:
  using Sleeper = void (*)(std::chrono::milliseconds);
  VerifyClient(const Config& config, HttpTransport& http,
               Sleeper sleeper = nullptr)
      : config_(config), http_(http), sleep_(sleeper) {}

  // POST {api_url}/v2/Services/{service_sid}/Verifications  To, Channel
  Reply<StartResult> start(const std::string& to);
  // POST .../VerificationCheck  VerificationSid, Code
  Reply<CheckResult> check(const std::string& verification_sid,
                           const Secret& code);
  // POST .../Verifications/{sid}  Status=canceled
  Reply<VerifyError> cancel(const std::string& verification_sid);

  [[nodiscard]] std::string service_url() const;

 private:
  template <typename Answer, typename Interpret>
  Reply<Answer> send(const std::string& url, const Secret& body,
                     std::chrono::milliseconds budget, Interpret interpret);

  const Config& config_;
  HttpTransport& http_;
  Sleeper sleep_;
};

}  // namespace ptv
