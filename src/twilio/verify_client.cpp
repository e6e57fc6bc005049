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

// A failure of the transport or of Twilio, as the client's error.
template <typename T>
std::expected<T, VerifyFailure> answer_or_failure(
    std::expected<HttpResponse, TransportError> response,
    std::expected<T, Refusal> (*interpret)(const HttpResponse&)) {
  if (!response) return std::unexpected(VerifyFailure(std::move(response.error())));
  auto answer = interpret(*response);
  if (!answer) return std::unexpected(VerifyFailure(std::move(answer.error())));
  if constexpr (std::is_void_v<T>) {
    return {};
  } else {
    return std::move(*answer);
  }
}

}  // namespace

std::string describe(const VerifyFailure& f) {
  if (const auto* t = std::get_if<TransportError>(&f))
    return std::string(describe(t->kind)) + ": " + t->detail;
  return describe(std::get<Refusal>(f));
}

std::expected<HttpResponse, TransportError> VerifyClient::send(
    const std::string& url, const Secret& body, milliseconds budget) {
  const auto deadline = Clock::now() + budget;
  auto left = [&deadline] {
    return std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  };
  for (int attempt = 1;; ++attempt) {
    auto response = http_.post_form(url, body, left());
    if (attempt > 1) return response;
    if (!response) {
      if (response.error().kind == TransportErrorKind::Unreachable &&
          left() >= kMinRetryBudget)
        continue;  // nothing reached Twilio: safe to try once more
      return response;
    }
    // A rate limit of the service refused it: retrying cannot help, and is
    // never done within one login.
    if (response->status == 429 && response->retry_after_s >= 0 &&
        !response->reached_rate_limit) {
      const milliseconds wait{response->retry_after_s * 1000};
      if (wait + kMinRetryBudget <= left()) {
        if (sleeper_ != nullptr) {
          sleeper_->sleep(wait);
        } else {
          std::this_thread::sleep_for(wait);
        }
        continue;  // a 429 was not processed: safe to try once more
      }
    }
    return response;
  }
}

std::string VerifyClient::service_url() const {
  return settings_.api_url + "/v2/Services/" + url_encode(settings_.service_sid);
}

std::expected<std::string, VerifyFailure> VerifyClient::start(
    const std::string& to, const std::string& channel, const std::string& locale,
    const std::string& rate_limits) {
  std::vector<FormField> fields = {
      {"To", to}, {"Channel", channel}};
  if (!locale.empty()) fields.push_back({"Locale", locale});
  if (!rate_limits.empty()) fields.push_back({"RateLimits", rate_limits});
  const Secret body = form_encode(fields);
  return answer_or_failure<std::string>(
      send(service_url() + "/Verifications", body,
           milliseconds{settings_.timeout_ms}),
      interpret_start);
}

std::expected<CheckStatus, VerifyFailure> VerifyClient::check(
    const std::string& verification_sid, const Secret& code) {
  const Secret body = form_encode(
      {{"VerificationSid", verification_sid}, {"Code", code.view()}});
  return answer_or_failure<CheckStatus>(
      send(service_url() + "/VerificationCheck", body,
           milliseconds{settings_.timeout_ms}),
      interpret_check);
}

std::expected<void, VerifyFailure> VerifyClient::cancel(
    const std::string& verification_sid) {
  const Secret body = form_encode({{"Status", "canceled"}});
  return answer_or_failure<void>(
      send(service_url() + "/Verifications/" + url_encode(verification_sid), body,
           milliseconds{std::min(settings_.timeout_ms, kCancelBudgetMs)}),
      interpret_cancel);
}

std::expected<ServiceInfo, VerifyFailure> VerifyClient::fetch_service() {
  return answer_or_failure<ServiceInfo>(
      http_.get(service_url(), milliseconds{settings_.timeout_ms}),
      interpret_service);
}

}  // namespace ptv
