// Interpretation of Twilio Verify answers.
#include <optional>
#include <string>
#include <vector>

#include "unit_test.hpp"
#include "twilio/verify_response.hpp"

using ptv::CheckStatus;
using ptv::HttpResponse;
using ptv::VerifyError;

namespace {

const std::string kSid = "VE0123456789abcdef0123456789abcdef";
const char* kJson = "application/json";

HttpResponse resp(long status, std::string content_type, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

std::string start_body(const std::string& sid, const std::string& status) {
  return "{\"sid\":\"" + sid + "\",\"service_sid\":\"VA0123456789abcdef0123456789abcdef\","
         "\"to\":\"+15551234567\",\"channel\":\"sms\",\"status\":\"" + status +
         "\",\"valid\":false}";
}

std::string error_body(int code) {
  return "{\"code\":" + std::to_string(code) +
         ",\"message\":\"an error\",\"more_info\":\"https://www.twilio.com/docs/"
         "errors/" + std::to_string(code) + "\",\"status\":400}";
}

// An interpreted answer, read field by field: no error (nullopt) for an
// answer, Twilio's code and rate limit name for a refusal.
template <typename T>
std::optional<VerifyError> error_of(const std::expected<T, ptv::Refusal>& r) {
  if (r) return std::nullopt;
  return r.error().error;
}
template <typename T>
int code_of(const std::expected<T, ptv::Refusal>& r) {
  return r ? 0 : r.error().twilio_code;
}
template <typename T>
std::string rate_limit_of(const std::expected<T, ptv::Refusal>& r) {
  return r ? std::string() : r.error().rate_limit;
}
template <typename T>
const char* describe_of(const std::expected<T, ptv::Refusal>& r) {
  return r ? "answer" : ptv::describe(r.error().error);
}
std::string sid_of(const std::expected<std::string, ptv::Refusal>& r) {
  return r.value_or("");
}
std::optional<CheckStatus> status_of(const std::expected<CheckStatus, ptv::Refusal>& r) {
  if (!r) return std::nullopt;
  return *r;
}

void test_start_pending(void**) {
  auto r = ptv::interpret_start(resp(201, kJson, start_body(kSid, "pending")));
  assert_true(r.has_value());
  assert_str_eq(sid_of(r), kSid);
  r = ptv::interpret_start(resp(200, kJson, start_body(kSid, "pending")));
  assert_true(r.has_value());
  assert_str_eq(sid_of(r), kSid);
  const std::string upper = "VE0123456789ABCDEF0123456789ABCDEF";
  r = ptv::interpret_start(resp(201, kJson, start_body(upper, "pending")));
  assert_true(r.has_value());
  assert_str_eq(sid_of(r), upper);
}

void test_start_bad_sid(void**) {
  auto r = ptv::interpret_start(
      resp(201, kJson, "{\"status\":\"pending\"}"));
  assert_true(error_of(r) == VerifyError::Malformed);
  assert_true(sid_of(r).empty());
  for (const std::string& sid :
       {std::string("VE123"), std::string("VA") + kSid.substr(2),
        kSid.substr(0, 33), kSid + "0", std::string("VE0123456789abcdef0123456789abcdeg"),
        std::string("VE/../../Services/x"), std::string("")}) {
    r = ptv::interpret_start(resp(201, kJson, start_body(sid, "pending")));
    assert_true(error_of(r) == VerifyError::Malformed);
    assert_true(sid_of(r).empty());
  }
  r = ptv::interpret_start(
      resp(201, kJson, "{\"sid\":12345,\"status\":\"pending\"}"));
  assert_true(error_of(r) == VerifyError::Malformed);
}

void test_start_status_not_pending(void**) {
  for (const char* status : {"approved", "canceled", "failed", "", "PENDING"}) {
    const auto r =
        ptv::interpret_start(resp(201, kJson, start_body(kSid, status)));
    assert_true(error_of(r) == VerifyError::Malformed);
  }
  const auto r = ptv::interpret_start(
      resp(201, kJson, "{\"sid\":\"" + kSid + "\"}"));
  assert_true(error_of(r) == VerifyError::Malformed);
}

void test_check_approved(void**) {
  auto r = ptv::interpret_check(
      resp(200, kJson, "{\"status\":\"approved\",\"valid\":true}"));
  assert_true(r.has_value());
  assert_true(status_of(r) == CheckStatus::Approved);
  r = ptv::interpret_check(resp(200, kJson, "{\"status\":\"approved\"}"));
  assert_true(r.has_value());
  assert_true(status_of(r) == CheckStatus::Approved);
}

void test_check_approved_but_not_valid(void**) {
  for (const char* valid : {"false", "\"true\"", "1", "null"}) {
    const auto r = ptv::interpret_check(resp(
        200, kJson,
        std::string("{\"status\":\"approved\",\"valid\":") + valid + "}"));
    assert_true(error_of(r) == VerifyError::Malformed);
    assert_true(status_of(r) != CheckStatus::Approved);
  }
}

void test_check_pending_and_other(void**) {
  auto r = ptv::interpret_check(
      resp(200, kJson, "{\"status\":\"pending\",\"valid\":false}"));
  assert_true(r.has_value());
  assert_true(status_of(r) == CheckStatus::Pending);
  for (const char* status : {"canceled", "failed", "expired", "Approved",
                             "approved ", "deleted"}) {
    r = ptv::interpret_check(resp(
        200, kJson, std::string("{\"status\":\"") + status + "\"}"));
    assert_true(r.has_value());
    assert_true(status_of(r) == CheckStatus::Other);
  }
  // An embedded NUL does not make "approved".
  r = ptv::interpret_check(
      resp(200, kJson, "{\"status\":\"approved\\u0000x\",\"valid\":true}"));
  assert_true(status_of(r) != CheckStatus::Approved);
  // No status at all, or a status that is not a string.
  r = ptv::interpret_check(resp(200, kJson, "{\"valid\":true}"));
  assert_true(error_of(r) == VerifyError::Malformed);
  r = ptv::interpret_check(resp(200, kJson, "{\"status\":true,\"valid\":true}"));
  assert_true(error_of(r) == VerifyError::Malformed);
  assert_true(status_of(r) != CheckStatus::Approved);
}

struct ErrorCase {
  long status;
  int code;  // 0: no JSON body
  VerifyError want;
};

void test_error_classification(void**) {
  const std::vector<ErrorCase> cases = {
      {401, 20003, VerifyError::AuthFailed},
      {401, 0, VerifyError::AuthFailed},
      {404, 20404, VerifyError::NotFound},
      {404, 0, VerifyError::NotFound},
      {400, 60200, VerifyError::InvalidParameter},
      {429, 60202, VerifyError::MaxChecks},
      {429, 60203, VerifyError::MaxSends},
      {429, 20429, VerifyError::Throttled},
      {429, 0, VerifyError::Throttled},
      {403, 60205, VerifyError::Landline},
      {403, 60410, VerifyError::FraudGuard},
      {403, 60605, VerifyError::GeoBlocked},
      {403, 20003, VerifyError::Rejected},
      {400, 21211, VerifyError::Rejected},
      {400, 60202, VerifyError::Rejected},
      {400, 0, VerifyError::Rejected},
      {409, 0, VerifyError::Rejected},
      {499, 0, VerifyError::Rejected},
      {500, 0, VerifyError::Unavailable},
      {502, 0, VerifyError::Unavailable},
      {503, 20500, VerifyError::Unavailable},
      {599, 0, VerifyError::Unavailable},
      {302, 0, VerifyError::Malformed},
      {301, 0, VerifyError::Malformed},
      {100, 0, VerifyError::Malformed},
      {0, 0, VerifyError::Malformed},
      {600, 0, VerifyError::Malformed},
  };
  for (const ErrorCase& c : cases) {
    const HttpResponse r =
        c.code != 0 ? resp(c.status, kJson, error_body(c.code))
                    : resp(c.status, "text/html", "<html>error</html>");
    const auto s = ptv::interpret_start(r);
    const auto k = ptv::interpret_check(r);
    const auto x = ptv::interpret_cancel(r);
    if (error_of(s) != c.want || error_of(k) != c.want || error_of(x) != c.want)
      fail_msg("HTTP %ld code %d: start \"%s\", check \"%s\", cancel \"%s\", "
               "expected \"%s\"",
               c.status, c.code, describe_of(s), describe_of(k),
               describe_of(x), ptv::describe(c.want));
    assert_int_equal(code_of(s), c.code);
    assert_int_equal(code_of(k), c.code);
    assert_true(sid_of(s).empty());
  }
}

void test_error_code_needs_json(void**) {
  // The same body labelled as HTML: the Twilio code is not read.
  auto r =
      ptv::interpret_start(resp(429, "text/html", error_body(60203)));
  assert_true(error_of(r) == VerifyError::Throttled);
  assert_int_equal(code_of(r), 0);
  r = ptv::interpret_start(resp(429, kJson, error_body(60203)));
  assert_true(error_of(r) == VerifyError::MaxSends);
  // A code that is not an integer is ignored.
  r = ptv::interpret_start(resp(429, kJson, "{\"code\":\"60203\"}"));
  assert_true(error_of(r) == VerifyError::Throttled);
}

// A 429 that names one of the service's rate limits is a refusal that
// denies (never retried); any other 429 is Twilio's throttle; 60202 and
// 60203 keep their meaning whatever the header says.
void test_429_rate_limit_header(void**) {
  HttpResponse r = resp(429, kJson, error_body(20429));
  r.reached_rate_limit = true;
  r.rate_limit_name = "pam_account";
  const auto s = ptv::interpret_start(r);
  assert_true(error_of(s) == VerifyError::RateLimited);
  assert_str_eq(rate_limit_of(s), "pam_account");
  const auto k = ptv::interpret_check(r);
  assert_true(error_of(k) == VerifyError::RateLimited);
  assert_str_eq(rate_limit_of(k), "pam_account");
  assert_false(ptv::is_unavailable(VerifyError::RateLimited));
  assert_false(ptv::is_unavailable(VerifyError::Throttled));

  r.reached_rate_limit = false;
  assert_true(error_of(ptv::interpret_start(r)) == VerifyError::Throttled);
  assert_str_eq(rate_limit_of(ptv::interpret_start(r)), "");

  HttpResponse m = resp(429, kJson, error_body(60203));
  m.reached_rate_limit = true;
  assert_true(error_of(ptv::interpret_start(m)) == VerifyError::MaxSends);
  HttpResponse c = resp(429, kJson, error_body(60202));
  c.reached_rate_limit = true;
  assert_true(error_of(ptv::interpret_check(c)) == VerifyError::MaxChecks);
}

void test_malformed_json(void**) {
  const std::string ok = "{\"status\":\"approved\",\"valid\":true}";
  assert_true(status_of(ptv::interpret_check(resp(200, kJson, ok))) ==
              CheckStatus::Approved);
  const std::vector<std::string> bad = {
      "",
      "{",
      "{\"status\":\"approved\"",                 // truncated
      "{\"status\":\"appro",                      // truncated in a string
      "[{\"status\":\"approved\",\"valid\":true}]",  // array
      "\"approved\"",
      "null",
      "true",
      ok + " x",                                  // trailing garbage
      ok + "{}",
      ok + ok,
      std::string(ok) + '\0',
      std::string(ok) + std::string("\0garbage", 8),
      "{status:\"approved\"}",
      "{\"status\":\"approved\" \"valid\":true}",
      "<html>{\"status\":\"approved\"}</html>",
      // nested deeper than the parser allows
      "{\"status\":\"approved\",\"valid\":true,\"x\":" + std::string(40, '[') +
          std::string(40, ']') + "}",
  };
  for (const std::string& body : bad) {
    const auto k = ptv::interpret_check(resp(200, kJson, body));
    if (error_of(k) != VerifyError::Malformed)
      fail_msg("check accepted body \"%s\"", body.c_str());
    assert_true(error_of(ptv::interpret_start(resp(201, kJson, body))) ==
                VerifyError::Malformed);
  }
  // White space after the object is fine.
  assert_true(status_of(ptv::interpret_check(resp(200, kJson, ok + " \r\n\t"))) ==
              CheckStatus::Approved);
}

// Only strict JSON is an answer: the lenient extensions of the parser
// (single quotes, trailing commas, leading zeros) are not JSON.
void test_json_must_be_strict(void**) {
  assert_true(status_of(ptv::interpret_check(
                  resp(200, kJson, "{\"status\":\"approved\"}"))) == CheckStatus::Approved);
  const std::vector<std::string> lenient = {
      "{'status':'approved'}",
      "{\"status\":\"approved\",}",
      "{\"status\":\"approved\",\"x\":[1,]}",
      "{\"status\":\"approved\",\"x\":01}",
  };
  for (const std::string& body : lenient) {
    const auto k = ptv::interpret_check(resp(200, kJson, body));
    if (error_of(k) != VerifyError::Malformed)
      fail_msg("check accepted non-JSON body \"%s\"", body.c_str());
  }
}

void test_content_type(void**) {
  const std::string ok = "{\"status\":\"approved\",\"valid\":true}";
  for (const char* ct : {"text/html", "text/plain", "", "application/jsonp",
                         "application/json-patch+json", "application/xml",
                         "json", "text/json"}) {
    const auto k = ptv::interpret_check(resp(200, ct, ok));
    if (error_of(k) != VerifyError::Malformed)
      fail_msg("check accepted content type \"%s\"", ct);
    assert_true(error_of(ptv::interpret_start(
                    resp(201, ct, start_body(kSid, "pending")))) == VerifyError::Malformed);
  }
  for (const char* ct : {"application/json", "application/json; charset=utf-8",
                         "application/json;charset=UTF-8",
                         "Application/JSON"}) {
    const auto k = ptv::interpret_check(resp(200, ct, ok));
    if (!k.has_value() || status_of(k) != CheckStatus::Approved)
      fail_msg("check refused content type \"%s\"", ct);
    assert_true(ptv::interpret_start(resp(201, ct, start_body(kSid, "pending")))
                    .has_value());
  }
}

void test_cancel(void**) {
  assert_true(
      ptv::interpret_cancel(resp(200, kJson, start_body(kSid, "canceled"))).has_value());
  assert_true(ptv::interpret_cancel(resp(204, "", "")).has_value());
  assert_true(error_of(ptv::interpret_cancel(resp(404, kJson, error_body(20404)))) ==
              VerifyError::NotFound);
  assert_true(error_of(ptv::interpret_cancel(resp(500, "", ""))) ==
              VerifyError::Unavailable);
  assert_true(error_of(ptv::interpret_cancel(resp(302, "", ""))) ==
              VerifyError::Malformed);
}

// The Service fetch of twilio-verify-admin check.
void test_service(void**) {
  const std::string va = "VA0123456789abcdef0123456789abcdef";
  auto body = [](const std::string& sid, const std::string& length) {
    return "{\"sid\":\"" + sid + "\",\"friendly_name\":\"Logins\"," +
           "\"code_length\":" + length + "}";
  };
  const auto ok = ptv::interpret_service(resp(200, kJson, body(va, "6")));
  assert_true(ok.has_value());
  assert_true(ok->sid == va && ok->friendly_name == "Logins" && ok->code_length == 6);
  assert_true(error_of(ptv::interpret_service(resp(200, kJson, body(kSid, "6")))) ==
              VerifyError::Malformed);
  assert_true(error_of(ptv::interpret_service(resp(200, kJson, body(va, "11")))) ==
              VerifyError::Malformed);
  assert_true(error_of(ptv::interpret_service(resp(401, kJson, error_body(20003)))) ==
              VerifyError::AuthFailed);
  assert_true(error_of(ptv::interpret_service(resp(404, kJson, error_body(20404)))) ==
              VerifyError::NotFound);
  assert_true(error_of(ptv::interpret_service(resp(200, "text/html", body(va, "6")))) ==
              VerifyError::Malformed);
}

void test_is_unavailable(void**) {
  const VerifyError all[] = {
      VerifyError::Unavailable, VerifyError::Throttled, VerifyError::RateLimited,
      VerifyError::AuthFailed, VerifyError::NotFound,
      VerifyError::InvalidParameter, VerifyError::MaxChecks,
      VerifyError::MaxSends,   VerifyError::Landline,
      VerifyError::FraudGuard, VerifyError::GeoBlocked,
      VerifyError::Rejected,   VerifyError::Malformed,
  };
  for (VerifyError e : all) {
    assert_int_equal(ptv::is_unavailable(e), e == VerifyError::Unavailable);
    assert_non_null(ptv::describe(e));
    assert_true(ptv::describe(e)[0] != '\0');
  }
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_start_pending),
      cmocka_unit_test(test_service),
      cmocka_unit_test(test_start_bad_sid),
      cmocka_unit_test(test_start_status_not_pending),
      cmocka_unit_test(test_check_approved),
      cmocka_unit_test(test_check_approved_but_not_valid),
      cmocka_unit_test(test_check_pending_and_other),
      cmocka_unit_test(test_error_classification),
      cmocka_unit_test(test_error_code_needs_json),
      cmocka_unit_test(test_429_rate_limit_header),
      cmocka_unit_test(test_malformed_json),
      cmocka_unit_test(test_json_must_be_strict),
      cmocka_unit_test(test_content_type),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_is_unavailable),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
