// The Messaging backend's sender: the helper makes the code (messaging_code
// .hpp), sends it in an SMS through Programmable Messaging and checks the
// typed codes itself, at most max_attempts times and never after
// code_ttl_s on the monotonic clock.
#pragma once

#include <chrono>
#include <string>

#include "net/http_transport.hpp"
#include "twilio/code_sender.hpp"
#include "twilio/messaging_code.hpp"
#include "twilio/settings.hpp"

namespace ptv {

class MessagingSender final : public CodeSender {
 public:
  // clock null: the steady clock; random null: getrandom().
  MessagingSender(const TwilioSettings& settings, HttpTransport& http,
                  int max_attempts, MonotonicClock* clock = nullptr,
                  RandomBytes random = nullptr);

  // Makes the code and sends it: POST {messaging.api_url}/2010-04-01/
  // Accounts/{AccountSid}/Messages.json  To, Body, From or
  // MessagingServiceSid, ValidityPeriod. The first message's SID.
  std::expected<std::string, VerifyFailure> start(
      const std::string& to, const std::string& channel,
      const std::string& locale, const std::string& rate_limits) override;
  // The same code in a new message, while it is valid.
  std::expected<std::string, VerifyFailure> resend(
      const std::string& to, const std::string& channel,
      const std::string& locale, const std::string& rate_limits) override;
  // Approved or Pending (wrong); Expired once the code outlived code_ttl_s
  // or was used, MaxChecks after max_attempts checks.
  std::expected<CheckStatus, VerifyFailure> check(const std::string& sid,
                                                  const Secret& code) override;
  // Wipes the code: nothing at Twilio to cancel.
  std::expected<void, VerifyFailure> cancel(const std::string& sid) override;
  [[nodiscard]] bool offers_call() const override { return false; }
  [[nodiscard]] std::string not_found_hint() const override;

  [[nodiscard]] std::string messages_url() const;

 private:
  std::expected<std::string, VerifyFailure> send(const std::string& to);
  [[nodiscard]] bool expired();

  const TwilioSettings& settings_;
  HttpTransport& http_;
  int max_attempts_;
  MonotonicClock* clock_;
  RandomBytes random_;
  Secret code_;  // empty: none made yet, or used, expired or canceled
  std::chrono::steady_clock::time_point made_{};
  std::string sid_;  // the first message's SID
  int checks_ = 0;
};

}  // namespace ptv
