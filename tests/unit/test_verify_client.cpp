// The three requests of the Verify client, over a recording transport.
#include <deque>
#include <string>
#include <vector>

#include "unit_test.hpp"
#include "verify_client.hpp"

using ptv::HttpResponse;
using ptv::TransportError;
using ptv::TransportErrorKind;
using ptv::VerifyError;

namespace {

const std::string kService = "VA0123456789abcdef0123456789abcdef";
const std::string kSid = "VE00112233445566778899aabbccddeeff";
const std::string kBase = "https://verify.example.test";

struct Request {
  std::string url;
  std::string body;
};

class RecordingTransport final : public ptv::HttpTransport {
 public:
  std::vector<Request> requests;
  std::deque<std::expected<HttpResponse, TransportError>> replies;

  std::expected<HttpResponse, TransportError> post_form(
      const std::string& url, const ptv::Secret& body) override {
    requests.push_back({url, std::string(body.view())});
    if (replies.empty()) return HttpResponse{500, "", "", -1};
    auto r = std::move(replies.front());
    replies.pop_front();
    return r;
  }
};

HttpResponse json(long status, std::string body) {
  return HttpResponse{status, "application/json", std::move(body), -1};
}

ptv::Config make_config(const std::string& api_url = kBase) {
  ptv::Config c;
  c.account_sid = "AC0123456789abcdef0123456789abcdef";
  c.auth_token = ptv::Secret("token");
  c.service_sid = kService;
  c.api_url = api_url;
  return c;
}

void test_service_url(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  ptv::VerifyClient client(c, http);
  assert_str_eq(client.service_url(), kBase + "/v2/Services/" + kService);
  const ptv::Config prefixed = make_config("https://emu.example.test:8443/base");
  ptv::VerifyClient client2(prefixed, http);
  assert_str_eq(client2.service_url(),
                "https://emu.example.test:8443/base/v2/Services/" + kService);
}

void test_start_request(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  http.replies.push_back(json(
      201, "{\"sid\":\"" + kSid + "\",\"status\":\"pending\"}"));
  ptv::VerifyClient client(c, http);
  const auto reply = client.start("+15551234567");
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].url,
                kBase + "/v2/Services/" + kService + "/Verifications");
  assert_str_eq(http.requests[0].body, "To=%2B15551234567&Channel=sms");
  assert_false(reply.transport_failed);
  assert_true(reply.answer.error == VerifyError::None);
  assert_str_eq(reply.answer.sid, kSid);
}

void test_start_uses_configured_channel(void**) {
  ptv::Config c = make_config();
  c.channel = "whatsapp";
  RecordingTransport http;
  ptv::VerifyClient client(c, http);
  (void)client.start("+442079460000");
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].body, "To=%2B442079460000&Channel=whatsapp");
}

void test_check_request(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  http.replies.push_back(json(200, "{\"status\":\"approved\",\"valid\":true}"));
  ptv::VerifyClient client(c, http);
  const ptv::Secret code("123456");
  const auto reply = client.check(kSid, code);
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].url,
                kBase + "/v2/Services/" + kService + "/VerificationCheck");
  assert_str_eq(http.requests[0].body,
                "VerificationSid=" + kSid + "&Code=123456");
  assert_false(reply.transport_failed);
  assert_true(reply.answer.error == VerifyError::None);
  assert_true(reply.answer.status == ptv::CheckStatus::Approved);
}

void test_cancel_request(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  http.replies.push_back(json(200, "{\"status\":\"canceled\"}"));
  ptv::VerifyClient client(c, http);
  const auto reply = client.cancel(kSid);
  assert_int_equal(http.requests.size(), 1);
  assert_str_eq(http.requests[0].url,
                kBase + "/v2/Services/" + kService + "/Verifications/" + kSid);
  assert_str_eq(http.requests[0].body, "Status=canceled");
  assert_false(reply.transport_failed);
  assert_true(reply.answer == VerifyError::None);
}

void test_path_segments_encoded(void**) {
  const ptv::Config c = make_config();
  RecordingTransport http;
  ptv::VerifyClient client(c, http);
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
  ptv::VerifyClient client(c, http);
  const auto failed = client.start("+15551234567");
  assert_true(failed.transport_failed);
  assert_true(failed.transport.kind == TransportErrorKind::Timeout);
  assert_str_eq(failed.transport.detail, "timed out after 10000 ms");
  const auto answered = client.check(kSid, ptv::Secret("1234"));
  assert_false(answered.transport_failed);
  assert_true(answered.answer.error == VerifyError::NotFound);
  assert_int_equal(answered.answer.twilio_code, 20404);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
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
