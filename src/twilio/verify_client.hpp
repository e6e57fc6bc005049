// The Twilio Verify v2 client: the three requests the module makes, built
// exactly as Twilio's OpenAPI document describes them.
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <variant>

#include "net/http_transport.hpp"
#include "twilio/code_sender.hpp"
#include "twilio/settings.hpp"
#include "twilio/verify_response.hpp"

namespace ptv {

// The wait before a retry; tests and fuzzers pass one that does not sleep.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void sleep(std::chrono::milliseconds d) = 0;
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
class VerifyClient final : public CodeSender {
 public:
  // sleeper null: really sleep.
  VerifyClient(const TwilioSettings& settings, HttpTransport& http,
               Sleeper* sleeper = nullptr)
      : settings_(settings), http_(http), sleeper_(sleeper) {}

  // POST {api_url}/v2/Services/{service_sid}/Verifications  To, Channel,
  // Locale when one is given and RateLimits (a JSON object, rate_limits.hpp)
  // when there is one; the verification's SID. On a To with a pending
  // verification Twilio sends its code again (a resend) on the channel
  // given, and answers the same verification.
  std::expected<std::string, VerifyFailure> start(
      const std::string& to, const std::string& channel,
      const std::string& locale = {}, const std::string& rate_limits = {}) override;
  // A resend is a create on the same To (see start).
  std::expected<std::string, VerifyFailure> resend(
      const std::string& to, const std::string& channel,
      const std::string& locale, const std::string& rate_limits) override {
    return start(to, channel, locale, rate_limits);
  }
  // POST .../VerificationCheck  VerificationSid, Code
  std::expected<CheckStatus, VerifyFailure> check(
      const std::string& verification_sid, const Secret& code) override;
  // POST .../Verifications/{sid}  Status=canceled
  std::expected<void, VerifyFailure> cancel(
      const std::string& verification_sid) override;
  [[nodiscard]] bool offers_call() const override { return true; }
  [[nodiscard]] std::string not_found_hint() const override {
    return "Twilio knows no service " + settings_.service_sid +
           " (20404); check service_sid";
  }
  // GET {api_url}/v2/Services/{service_sid}: the service, which proves the
  // trust store, the proxy, the credentials and the SID. Sends nothing and
  // costs nothing; never retried. twilio-verify-admin check only.
  std::expected<ServiceInfo, VerifyFailure> fetch_service();

  [[nodiscard]] std::string service_url() const;

 private:
  // One request and its retry: the answer, or the transport's failure.
  std::expected<HttpResponse, TransportError> send(
      const std::string& url, const Secret& body, std::chrono::milliseconds budget);

  const TwilioSettings& settings_;
  HttpTransport& http_;
  Sleeper* sleeper_;
};

}  // namespace ptv
