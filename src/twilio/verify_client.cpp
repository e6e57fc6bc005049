#include "twilio/verify_client.hpp"

#include <algorithm>
#include <thread>

#include "twilio/form_encoding.hpp"

namespace ptv {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Below this, a retry has no real chance: give up instead.
constexpr milliseconds kMinRetryBudget{100};

void real_sleep(milliseconds d) { std::this_thread::sleep_for(d); }

}  // namespace

template <typename Answer, typename Interpret>
Reply<Answer> VerifyClient::send(const std::string& url, const Secret& body,
                                 milliseconds budget, Interpret interpret) {
  const auto deadline = Clock::now() + budget;
  auto left = [&deadline] {
    return std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  };
  Reply<Answer> reply;
  for (int attempt = 1;; ++attempt) {
    auto response = http_.post_form(url, body, left());
    const bool may_retry = attempt == 1;
    if (!response) {
      if (may_retry && response.error().kind == TransportErrorKind::Unreachable &&
          left() >= kMinRetryBudget)
        continue;  // nothing reached Twilio: safe to try once more
      reply.transport_failed = true;
      reply.transport = std::move(response.error());
      return reply;
    }
    // A rate limit of the service refused it: retrying cannot help, and is
    // never done within one login.
    if (may_retry && response->status == 429 && response->retry_after_s >= 0 &&
        !response->reached_rate_limit) {
      const milliseconds wait{response->retry_after_s * 1000};
      if (wait + kMinRetryBudget <= left()) {
        (sleep_ != nullptr ? sleep_ : real_sleep)(wait);
        continue;  // a 429 was not processed: safe to try once more
      }
    }
    reply.answer = interpret(*response);
    return reply;
  }
}

std::string VerifyClient::service_url() const {
  return config_.api_url + "/v2/Services/" + url_encode(config_.service_sid);
}

Reply<StartResult> VerifyClient::start(const std::string& to) {
  const Secret body =
      form_encode({{"To", to}, {"Channel", config_.channel}});
  return send<StartResult>(service_url() + "/Verifications", body,
                           milliseconds{config_.timeout_ms}, interpret_start);
}

Reply<CheckResult> VerifyClient::check(const std::string& verification_sid,
                                       const Secret& code) {
  const Secret body = form_encode(
      {{"VerificationSid", verification_sid}, {"Code", code.view()}});
  return send<CheckResult>(service_url() + "/VerificationCheck", body,
                           milliseconds{config_.timeout_ms}, interpret_check);
}

Reply<VerifyError> VerifyClient::cancel(const std::string& verification_sid) {
  const Secret body = form_encode({{"Status", "canceled"}});
  return send<VerifyError>(
      service_url() + "/Verifications/" + url_encode(verification_sid), body,
      milliseconds{std::min(config_.timeout_ms, kCancelBudgetMs)},
      interpret_cancel);
}

}  // namespace ptv
