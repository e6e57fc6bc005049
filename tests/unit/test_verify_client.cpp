// The three requests of the Verify client, over a recording transport.
#include <deque>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "fakes.hpp"
#include "twilio/verify_client.hpp"
#include "unit_test.hpp"

using ptv::HttpResponse;
using ptv::TransportError;
using ptv::TransportErrorKind;
using ptv::VerifyError;
using ptv_fakes::json;
using ptv_fakes::kBase;
using ptv_fakes::kService;
using ptv_fakes::kSid;

namespace {

struct Request {
  std::string url;
  std::string body;
};

class RecordingTransport final : public ptv::HttpTransport {
 public:
  std::vector<Request> requests;
  std::vector<long> budgets;  // ms each request was given
  std::deque<std::expected<HttpResponse, TransportError>> replies;

  std::expected<HttpResponse, TransportError> post_form(
      const std::string& url, const ptv::Secret& body,
      std::chrono::milliseconds budget) override {
    budgets.push_back(budget.count());
    requests.push_back({url, std::string(body.view())});
    if (replies.empty()) return HttpResponse{500, "", "", -1};
    auto r = std::move(replies.front());
    replies.pop_front();
    return r;
  }
};

// A reply of the client, read part by part.
template <typename T>
bool transport_failed(const std::expected<T, ptv::VerifyFailure>& r) {
  return !r && std::holds_alternative<TransportError>(r.error());
}
template <typename T>
TransportError transport_of(const std::expected<T, ptv::VerifyFailure>& r) {
  return transport_failed(r) ? std::get<TransportError>(r.error()) : TransportError{};
}
// Twilio's refusal (a default, Malformed, one when there is none).
template <typename T>
ptv::Refusal refusal_of(const std::expected<T, ptv::VerifyFailure>& r) {
  if (r || transport_failed(r)) return ptv::Refusal{};
  return std::get<ptv::Refusal>(r.error());
}

ptv::Config make_config(const std::string& api_url = kBase) {
  ptv::Config c;
  c.twilio.account_sid = ptv_fakes::kAccount;
  c.twilio.auth_token = ptv::Secret("token");
  c.twilio.service_sid = kService;
  c.twilio.api_url = api_url;
  return c;
}

void test_service_url(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  ptv::VerifyClient client(c.twilio, http);
  assert_str_eq(client.service_url(), kBase + "/v2/Services/" + kService);
  const ptv::Config prefixed = make_config("https://emu.example.test:8443/base");
  ptv::VerifyClient client2(prefixed.twilio, http);
  assert_str_eq(client2.service_url(),
                "https://emu.example.test:8443/base/v2/Services/" + kService);
}

void test_start_request(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  http.replies.push_back(json(
      201, "{\"sid\":\"" + kSid + "\",\"status\":\"pending\"}"));
  ptv::VerifyClient client(c.twilio, http);
  const auto reply = client.start("+15551234567", c.policy.channel);
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].url,
                kBase + "/v2/Services/" + kService + "/Verifications");
  assert_str_eq(http.requests[0].body, "To=%2B15551234567&Channel=sms");
  assert_false(transport_failed(reply));
  assert_true(reply.has_value());
  assert_str_eq(reply.value_or(""), kSid);
}

void test_start_uses_configured_channel(void**) {
  ptv::Config c = make_config();
  c.policy.channel = "whatsapp";
  RecordingTransport http;
  ptv::VerifyClient client(c.twilio, http);
  (void)client.start("+442079460000", c.policy.channel);
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].body, "To=%2B442079460000&Channel=whatsapp");
}

void test_check_request(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  http.replies.push_back(json(200, "{\"status\":\"approved\",\"valid\":true}"));
  ptv::VerifyClient client(c.twilio, http);
  const ptv::Secret code("123456");
  const auto reply = client.check(kSid, code);
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].url,
                kBase + "/v2/Services/" + kService + "/VerificationCheck");
  assert_str_eq(http.requests[0].body,
                "VerificationSid=" + kSid + "&Code=123456");
  assert_false(transport_failed(reply));
  assert_true(reply.has_value());
  assert_true(reply == ptv::CheckStatus::Approved);
}

void test_cancel_request(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  http.replies.push_back(json(200, "{\"status\":\"canceled\"}"));
  ptv::VerifyClient client(c.twilio, http);
  const auto reply = client.cancel(kSid);
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].url,
                kBase + "/v2/Services/" + kService + "/Verifications/" + kSid);
  assert_str_eq(http.requests[0].body, "Status=canceled");
  assert_false(transport_failed(reply));
  assert_true(reply.has_value());
}

void test_path_segments_encoded(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  ptv::VerifyClient client(c.twilio, http);
  (void)client.cancel("VE1/../x?y");
  assert_str_eq(http.requests[0].url, kBase + "/v2/Services/" + kService +
                                          "/Verifications/VE1%2F..%2Fx%3Fy");
}

void test_transport_failure_passed_on(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  http.replies.push_back(std::unexpected(
      TransportError{TransportErrorKind::Timeout, "timed out after 10000 ms"}));
  http.replies.push_back(json(404, "{\"code\":20404}"));
  ptv::VerifyClient client(c.twilio, http);
  const auto failed = client.start("+15551234567", c.policy.channel);
  assert_true(transport_failed(failed));
  assert_true(transport_of(failed).kind == TransportErrorKind::Timeout);
  assert_str_eq(transport_of(failed).detail, "timed out after 10000 ms");
  const auto answered = client.check(kSid, ptv::Secret("1234"));
  assert_false(transport_failed(answered));
  assert_true(refusal_of(answered).error == VerifyError::NotFound);
  assert_int_equal(refusal_of(answered).twilio_code, 20404);
}

}  // namespace


// ------------------------------------------------------------ retries

TransportError unreachable() {
  return TransportError{TransportErrorKind::Unreachable, "refused"};
}

HttpResponse throttled(long retry_after) {
  HttpResponse r;
  r.status = 429;
  r.content_type = "application/json";
  r.body = "{\"code\":20429,\"status\":429}";
  r.retry_after_s = retry_after;
  return r;
}

std::string started_body() {
  return "{\"sid\":\"" + kSid + "\",\"status\":\"pending\"}";
}

std::vector<long> g_slept;
struct RecordSleep final : ptv::Sleeper {
  void sleep(std::chrono::milliseconds d) override { g_slept.push_back(d.count()); }
} g_record_sleep;

// A start over the scripted replies, then a 201 that one try too many
// would reach; the waits are recorded from an empty g_slept.
struct Started {
  std::size_t requests;
  std::expected<std::string, ptv::VerifyFailure> reply;
};

Started start_after(const ptv::Config& c, std::vector<ptv_fakes::Reply> replies) {
  RecordingTransport http;
  for (auto& r : replies) http.replies.push_back(std::move(r));
  http.replies.push_back(json(201, started_body()));
  g_slept.clear();
  ptv::VerifyClient client(c.twilio, http, &g_record_sleep);
  auto reply = client.start("+15551234567", c.policy.channel);
  return {http.requests.size(), std::move(reply)};
}

void test_unreachable_retried_once_then_succeeds(void**) {
  const Started s = start_after(make_config(), {std::unexpected(unreachable())});
  assert_int_equal(s.requests, 2);
  assert_false(transport_failed(s.reply));
  assert_true(s.reply.has_value());
}

void test_unreachable_twice_fails_after_two_tries(void**) {
  const Started s = start_after(
      make_config(),
      {std::unexpected(unreachable()), std::unexpected(unreachable())});
  assert_int_equal(s.requests, 2);
  assert_true(transport_failed(s.reply));
  assert_true(transport_of(s.reply).kind == TransportErrorKind::Unreachable);
}

void test_timeout_and_5xx_never_retried(void**) {
  const ptv::Config c = make_config();
  const std::vector<ptv_fakes::Reply> first = {
      std::unexpected(TransportError{TransportErrorKind::Timeout, "timed out"}),
      json(503, "{\"code\":20500}"),
      std::unexpected(TransportError{TransportErrorKind::Protocol, "empty reply"})};
  for (const auto& reply : first)
    assert_int_equal(start_after(c, {reply}).requests, 1);  // the SMS may have gone out
}

void test_429_with_retry_after_retried_after_waiting(void**) {
  const Started s = start_after(make_config(), {throttled(2)});  // timeout_ms 10000
  assert_int_equal(s.requests, 2);
  assert_int_equal(g_slept.size(), 1);
  assert_int_equal(g_slept[0], 2000);
  assert_true(s.reply.has_value());
}

void test_429_retry_after_beyond_budget_not_retried(void**) {
  ptv::Config c = make_config();
  c.twilio.timeout_ms = 3000;
  const Started s = start_after(c, {throttled(5)});
  assert_int_equal(s.requests, 1);
  assert_int_equal(g_slept.size(), 0);
  assert_true(refusal_of(s.reply).error == VerifyError::Throttled);
}

void test_429_without_retry_after_not_retried(void**) {
  const Started s = start_after(make_config(), {throttled(-1)});
  assert_int_equal(s.requests, 1);
  assert_true(refusal_of(s.reply).error == VerifyError::Throttled);
}

// A rate limit of the service refused the start: never retried within the
// login, even with a Retry-After that would fit.
void test_429_naming_a_rate_limit_never_retried(void**) {
  HttpResponse limited = throttled(1);
  limited.reached_rate_limit = true;
  limited.rate_limit_name = "pam_account";
  const Started s = start_after(make_config(), {limited});
  assert_int_equal(s.requests, 1);
  assert_int_equal(g_slept.size(), 0);
  assert_true(refusal_of(s.reply).error == VerifyError::RateLimited);
  assert_str_eq(refusal_of(s.reply).rate_limit, "pam_account");
}

void test_429_retried_at_most_once(void**) {
  const Started s = start_after(make_config(), {throttled(0), throttled(0)});
  assert_int_equal(s.requests, 2);
  assert_true(refusal_of(s.reply).error == VerifyError::Throttled);
}

void test_budgets_per_request(void**) {
  ptv::Config c = make_config();
  c.twilio.timeout_ms = 8000;
  RecordingTransport http;
  http.replies.push_back(json(201, started_body()));
  http.replies.push_back(json(200, "{\"status\":\"pending\"}"));
  http.replies.push_back(json(200, "{\"status\":\"canceled\"}"));
  ptv::VerifyClient client(c.twilio, http, &g_record_sleep);
  (void)client.start("+15551234567", c.policy.channel);
  (void)client.check(kSid, ptv::Secret("123456"));
  (void)client.cancel(kSid);
  assert_int_equal(http.budgets.size(), 3);
  // start and check get timeout_ms; the best-effort cancel at most 3 s.
  assert_in_range(http.budgets[0], 7900, 8000);
  assert_in_range(http.budgets[1], 7900, 8000);
  assert_in_range(http.budgets[2], 2900, 3000);
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unreachable_retried_once_then_succeeds),
      cmocka_unit_test(test_unreachable_twice_fails_after_two_tries),
      cmocka_unit_test(test_timeout_and_5xx_never_retried),
      cmocka_unit_test(test_429_with_retry_after_retried_after_waiting),
      cmocka_unit_test(test_429_retry_after_beyond_budget_not_retried),
      cmocka_unit_test(test_429_without_retry_after_not_retried),
      cmocka_unit_test(test_429_retried_at_most_once),
      cmocka_unit_test(test_429_naming_a_rate_limit_never_retried),
      cmocka_unit_test(test_budgets_per_request),
      cmocka_unit_test(test_service_url),
      cmocka_unit_test(test_start_request),
      cmocka_unit_test(test_start_uses_configured_channel),
      cmocka_unit_test(test_check_request),
      cmocka_unit_test(test_cancel_request),
      cmocka_unit_test(test_path_segments_encoded),
      cmocka_unit_test(test_transport_failure_passed_on),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
