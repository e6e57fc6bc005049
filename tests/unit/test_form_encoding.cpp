// application/x-www-form-urlencoded bodies and URL path segments.
#include <string>
#include <vector>

#include "twilio/form_encoding.hpp"
#include "unit_test.hpp"

namespace {

std::string form(std::string_view v) {
  std::string out;
  ptv::append_encoded(out, v, true);
  return out;
}

void test_plus_of_phone_number(void**) {
  assert_str_eq(form("+15551234567"), "%2B15551234567");
  assert_str_eq(ptv::url_encode("+15551234567"), "%2B15551234567");
}

void test_space(void**) {
  assert_str_eq(form("a b"), "a+b");
  assert_str_eq(form(" "), "+");
  assert_str_eq(ptv::url_encode("a b"), "a%20b");
  assert_str_eq(ptv::url_encode(" "), "%20");
}

void test_unreserved_kept(void**) {
  const std::string unreserved =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  assert_str_eq(form(unreserved), unreserved);
  assert_str_eq(ptv::url_encode(unreserved), unreserved);
}

void test_reserved_encoded(void**) {
  assert_str_eq(form("&=+/?#%"), "%26%3D%2B%2F%3F%23%25");
  assert_str_eq(ptv::url_encode("a/b"), "a%2Fb");
  assert_str_eq(ptv::url_encode("!*'();:@$,[]"),
                "%21%2A%27%28%29%3B%3A%40%24%2C%5B%5D");
  assert_str_eq(ptv::url_encode(std::string_view("\0\n\x7f", 3)), "%00%0A%7F");
}

void test_utf8_bytes_encoded(void**) {
  assert_str_eq(form("\xc3\xa9"), "%C3%A9");  // e acute
  assert_str_eq(ptv::url_encode("\xe2\x82\xac"), "%E2%82%AC");  // euro sign
  assert_str_eq(ptv::url_encode("\xff"), "%FF");
}

void test_append_keeps_existing(void**) {
  std::string out = "x=";
  ptv::append_encoded(out, "a b", true);
  assert_str_eq(out, "x=a+b");
  ptv::append_encoded(out, "", false);
  assert_str_eq(out, "x=a+b");
}

void test_form_encode(void**) {
  assert_str_eq(
      ptv::form_encode({{"To", "+15551234567"}, {"Channel", "sms"}}).view(),
      "To=%2B15551234567&Channel=sms");
  assert_str_eq(
      ptv::form_encode({{"Channel", "sms"}, {"To", "+15551234567"}}).view(),
      "Channel=sms&To=%2B15551234567");
  assert_str_eq(ptv::form_encode({{"Status", "canceled"}}).view(),
                "Status=canceled");
  assert_str_eq(ptv::form_encode({{"a b", "c&d=e"}}).view(), "a+b=c%26d%3De");
  assert_str_eq(ptv::form_encode({{"a", ""}, {"", "b"}}).view(), "a=&=b");
  assert_true(ptv::form_encode({}).empty());
  assert_str_eq(ptv::form_encode({{"x", "1"}, {"y", "2"}, {"z", "3"}}).view(),
                "x=1&y=2&z=3");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plus_of_phone_number),
      cmocka_unit_test(test_space),
      cmocka_unit_test(test_unreserved_kept),
      cmocka_unit_test(test_reserved_encoded),
      cmocka_unit_test(test_utf8_bytes_encoded),
      cmocka_unit_test(test_append_keeps_existing),
      cmocka_unit_test(test_form_encode),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
