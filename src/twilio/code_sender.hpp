// What sends and checks the code, whichever Twilio API does it: the Verify
// client (Twilio makes the code and checks it) or the Messaging sender
// (the helper makes the code, sends it in an SMS and checks it itself).
// The verification flow asks only this.
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <variant>

#include "net/http_transport.hpp"
#include "twilio/verify_response.hpp"

namespace ptv {

// Why a request brought no answer: the transport failed (nothing usable
// came back), or Twilio refused.
using VerifyFailure = std::variant<TransportError, Refusal>;
std::string describe(const VerifyFailure& f);

class CodeSender {
 public:
  virtual ~CodeSender() = default;
  // Sends a code to `to` on `channel`; the SID of what was started (the
  // verification, or the first message).
  virtual std::expected<std::string, VerifyFailure> start(
      const std::string& to, const std::string& channel,
      const std::string& locale, const std::string& rate_limits) = 0;
  // Sends the same code again; the SID of what it belongs to.
  virtual std::expected<std::string, VerifyFailure> resend(
      const std::string& to, const std::string& channel,
      const std::string& locale, const std::string& rate_limits) = 0;
  virtual std::expected<CheckStatus, VerifyFailure> check(
      const std::string& sid, const Secret& code) = 0;
  // Makes the code unusable (best effort).
  virtual std::expected<void, VerifyFailure> cancel(const std::string& sid) = 0;
  // Whether `call` (the code by a voice call) is offered.
  [[nodiscard]] virtual bool offers_call() const = 0;
  // What a 404 to the first send means, for the log.
  [[nodiscard]] virtual std::string not_found_hint() const = 0;
};

// The monotonic clock the Messaging code's lifetime is measured on; tests
// pass a fake.
class MonotonicClock {
 public:
  virtual ~MonotonicClock() = default;
  virtual std::chrono::steady_clock::time_point now() = 0;
};

}  // namespace ptv
