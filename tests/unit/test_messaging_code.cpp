// The Messaging backend's code: its generator (uniform digits from
// getrandom() by rejection sampling, no fallback on failure), its
// constant-time comparison, and the message body that carries it.
#include <array>
#include <cstring>
#include <string>

#include "twilio/message_body.hpp"
#include "twilio/messaging_code.hpp"
#include "unit_test.hpp"

namespace {

// 10 positions x 10^5 codes. The critical value of chi-square with 9
// degrees of freedom at p = 1e-6 is 44.81 (the regularised upper gamma
// function Q(4.5, x / 2) = 1e-6; 42.0 would be p = 3.3e-6): a uniform
// generator fails one position by chance with probability 1e-6, all ten
// with at most 1e-5, so the test does not fail by chance.
constexpr double kCritical = 44.81;
constexpr int kCodes = 100000;
constexpr std::size_t kLength = 10;

void test_digits_uniform(void**) {
  std::array<std::array<long, 10>, kLength> counts{};
  for (int i = 0; i < kCodes; ++i) {
    auto code = ptv::generate_code(kLength);
    assert_true(code.has_value());
    assert_int_equal(code->size(), kLength);
    for (std::size_t p = 0; p < kLength; ++p) {
      const char c = code->view()[p];
      assert_true(c >= '0' && c <= '9');
      ++counts[p][static_cast<std::size_t>(c - '0')];
    }
  }
  const double expected = kCodes / 10.0;
  for (std::size_t p = 0; p < kLength; ++p) {
    double chi2 = 0;
    for (long n : counts[p]) chi2 += (n - expected) * (n - expected) / expected;
    if (chi2 >= kCritical) {
      print_error("position %zu: chi-square %.2f >= %.2f\n", p, chi2, kCritical);
      fail();
    }
  }
}

// Bytes 250 to 255 are drawn again, never folded into a digit.
int g_calls = 0;
std::expected<void, std::string> high_then_low(unsigned char* out, std::size_t n) {
  ++g_calls;
  for (std::size_t i = 0; i < n; ++i)
    out[i] = g_calls == 1 ? static_cast<unsigned char>(250 + i % 6)
                          : static_cast<unsigned char>(i == 0 ? 249 : 13);
  return {};
}
std::expected<void, std::string> broken(unsigned char*, std::size_t) {
  return std::unexpected(std::string("getrandom: Function not implemented"));
}

void test_rejection_and_failure(void**) {
  g_calls = 0;
  auto code = ptv::generate_code(6, high_then_low);
  assert_true(code.has_value());
  assert_int_equal(g_calls, 2);
  assert_string_equal(code->c_str(), "933333");
  auto failed = ptv::generate_code(6, broken);  // an error, never a fallback
  assert_false(failed.has_value());
  assert_string_equal(failed.error().c_str(), "getrandom: Function not implemented");
}

// Every wrong code costs the same byte operations as the right one: a
// wrong first digit, a wrong last digit, a shorter or longer code.
void test_compare_same_path(void**) {
  std::size_t right = 0, first = 0, last = 0, shorter = 0, longer = 0, empty = 0;
  assert_true(ptv::codes_equal("123456", "123456", &right));
  assert_false(ptv::codes_equal("123456", "923456", &first));
  assert_false(ptv::codes_equal("123456", "123459", &last));
  assert_false(ptv::codes_equal("123456", "12345", &shorter));
  assert_false(ptv::codes_equal("123456", "1234560", &longer));
  assert_false(ptv::codes_equal("123456", "", &empty));
  assert_int_equal(right, ptv::kMaxCompareLength);
  for (std::size_t ops : {first, last, shorter, longer, empty})
    assert_int_equal(ops, right);
  // A zero byte typed past the end is not taken for padding.
  assert_false(ptv::codes_equal("123456", std::string_view("123456\0", 7)));
  assert_true(ptv::codes_equal("0123456789", "0123456789"));
}

void test_render_body(void**) {
  const ptv::Secret m = ptv::render_body("Code for %h is %c (100%%)", "123456", "web1");
  assert_string_equal(m.c_str(), "Code for web1 is 123456 (100%)");
  auto gsm = ptv::sms_length("a{\u00e9\u20ac");
  assert_true(gsm && gsm->gsm7);
  assert_int_equal(gsm->units, 1 + 2 + 1 + 2);
  auto ucs = ptv::sms_length("a\u0436\U0001F600");
  assert_true(ucs && !ucs->gsm7);
  assert_int_equal(ucs->units, 1 + 1 + 2);
  assert_false(ptv::sms_length("\xc3").has_value());
  const std::string host = ptv::short_host_name();
  assert_true(!host.empty() && host.size() <= ptv::kMaxShortHostName);
  assert_true(host.find('.') == std::string::npos);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_digits_uniform),
      cmocka_unit_test(test_rejection_and_failure),
      cmocka_unit_test(test_compare_same_path),
      cmocka_unit_test(test_render_body),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
