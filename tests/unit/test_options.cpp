// Module arguments from the PAM configuration line.
#include <initializer_list>
#include <source_location>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "unit_test.hpp"

namespace {

std::expected<ptv::ModuleOptions, std::string> parse(
    std::vector<const char*> args) {
  return ptv::parse_module_options(static_cast<int>(args.size()), args.data());
}

// Arguments that must be refused with a message that contains each of
// `says`; the message.
std::string refused(std::vector<const char*> args,
                    std::initializer_list<const char*> says,
                    std::source_location at = std::source_location::current()) {
  auto r = parse(std::move(args));
  if (r.has_value()) {
    print_error("the arguments were accepted but must be refused\n");
    _fail(at.file_name(), at.line());
  }
  for (const char* s : says)
    ptv_test::check_contains(r.error(), s, true, "the refusal", at.file_name(),
                             at.line());
  return r.error();
}

void test_no_arguments(void**) {
  auto r = ptv::parse_module_options(0, nullptr);
  assert_true(r.has_value());
  assert_str_eq(r->config_path, "/etc/security/pam_twilio_verify.conf");
  assert_str_eq(r->config_path, ptv::kDefaultConfigPath);
  assert_false(r->debug);
}

void test_debug(void**) {
  auto r = parse({"debug"});
  assert_true(r.has_value());
  assert_true(r->debug);
  assert_str_eq(r->config_path, ptv::kDefaultConfigPath);
}

void test_conf_absolute(void**) {
  auto r = parse({"conf=/etc/security/other.conf"});
  assert_true(r.has_value());
  assert_str_eq(r->config_path, "/etc/security/other.conf");
  assert_false(r->debug);
  r = parse({"debug", "conf=/a.conf"});
  assert_true(r.has_value());
  assert_true(r->debug);
  assert_str_eq(r->config_path, "/a.conf");
}

void test_conf_relative_refused(void**) {
  for (const char* arg : {"conf=relative.conf", "conf=./x.conf", "conf=",
                          "conf=~/x.conf"})
    refused({arg}, {"conf=", "absolute"});
}

void test_unknown_refused(void**) {
  refused({"bogus"}, {"bogus", "unknown"});
  // Names are exact and case-sensitive; a bad one after good ones counts.
  for (const char* arg : {"Debug", "debug=1", "conf", "config=/x", "nodebug",
                          " debug", ""})
    refused({"debug", arg}, {});
  refused({"conf=/x", "try_first_pass"}, {"try_first_pass"});
}

void test_unsafe_argument_sanitised(void**) {
  const std::string msg = refused({"bad\narg\x1b"}, {"bad\\x0aarg\\x1b"});
  assert_not_contains(msg, "\n");
  assert_not_contains(msg, "\x1b");
}

void test_null_argument_refused(void**) {
  const char* args[] = {"debug", nullptr};
  auto r = ptv::parse_module_options(2, args);
  assert_false(r.has_value());
  assert_true(ptv::parse_module_options(1, args).has_value());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_arguments),
      cmocka_unit_test(test_debug),
      cmocka_unit_test(test_conf_absolute),
      cmocka_unit_test(test_conf_relative_refused),
      cmocka_unit_test(test_unknown_refused),
      cmocka_unit_test(test_unsafe_argument_sanitised),
      cmocka_unit_test(test_null_argument_refused),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
