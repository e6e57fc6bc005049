// Configuration parsing, validation and the safe loading of the file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <source_location>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "fakes.hpp"
#include "unit_test.hpp"

using ptv::Config;
using ptv::ConfigError;
using ptv::FailMode;
using ptv::NoPhone;
using ptv::PhoneSource;
using ptv_fakes::kAccount;

namespace {

const std::string kService = "VA0123456789ABCDEF0123456789ABCDEF";
const std::string kKeySid = "SKfedcba9876543210fedcba9876543210";
const std::string kToken = "t0kenVALUEs3cret_4f2a9c81e7d3b6a5";
const std::string kKeySecret = "k3ySECRETvalue_9a8b7c6d5e4f3a2b1c";
const char* kName = "test.conf";

std::string g_dir;      // temporary directory of this run
std::string g_ca_file;  // an existing regular file inside it

// A twilio group with the given body lines.
std::string twilio(const std::string& body) {
  return "twilio = {\n" + body + "};\n";
}

std::string account_line(const std::string& v = kAccount) {
  return "  account_sid = \"" + v + "\";\n";
}
std::string service_line(const std::string& v = kService) {
  return "  service_sid = \"" + v + "\";\n";
}
std::string token_line(const std::string& v = kToken) {
  return "  auth_token = \"" + v + "\";\n";
}

// The minimal valid configuration plus extra lines in the twilio group and
// at the top level.
std::string minimal(const std::string& extra_twilio = "",
                    const std::string& extra_root = "") {
  return twilio(account_line() + token_line() + service_line() +
                extra_twilio) +
         extra_root;
}

// Parses text that must be refused; returns the message.
std::string refused(const std::string& text, const char* file, int line) {
  auto r = ptv::parse_config_text(text, kName);
  if (r.has_value()) {
    print_error("configuration was accepted but must be refused:\n%s\n",
                text.c_str());
    _fail(file, line);
  }
  return r.error().message;
}
#define REFUSED(text) refused((text), __FILE__, __LINE__)

// Parses text that must be accepted.
Config accepted(const std::string& text, const char* file, int line) {
  auto r = ptv::parse_config_text(text, kName);
  if (!r.has_value()) {
    print_error("configuration was refused: %s\n%s\n",
                r.error().message.c_str(), text.c_str());
    _fail(file, line);
  }
  return std::move(*r);
}
#define ACCEPTED(text) accepted((text), __FILE__, __LINE__)

// A case of a table of refusals: what the configuration is made from, and
// what the refusal must say.
struct Bad {
  std::string input;
  const char* says;
};

// Every case's configuration, make(input), is refused with a message that
// contains the case's `says` and each of `also`.
template <typename Make>
void assert_refusals(
    Make make, std::initializer_list<const char*> also,
    std::initializer_list<Bad> bad,
    std::source_location at = std::source_location::current()) {
  for (const Bad& b : bad) {
    const std::string msg = refused(make(b.input), at.file_name(), at.line());
    const std::string expr = "refusal of \"" + b.input + "\"";
    ptv_test::check_contains(msg, b.says, true, expr.c_str(), at.file_name(),
                             at.line());
    for (const char* a : also)
      ptv_test::check_contains(msg, a, true, expr.c_str(), at.file_name(),
                               at.line());
  }
}

// The configuration that is the input itself.
std::string as_is(const std::string& text) { return text; }
// The minimal configuration with the input at the top level.
std::string at_root(const std::string& root) { return minimal("", root); }

int group_setup(void**) {
  char tmpl[] = "/tmp/ptv-unit-config-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return -1;
  g_dir = tmpl;
  g_ca_file = g_dir + "/ca.pem";
  FILE* f = std::fopen(g_ca_file.c_str(), "w");
  if (f == nullptr) return -1;
  std::fputs("not really a certificate\n", f);
  std::fclose(f);
  return 0;
}

int group_teardown(void**) {
  std::error_code ec;
  std::filesystem::remove_all(g_dir, ec);
  return ec ? -1 : 0;
}

// ---------------------------------------------------------------- parsing

// The timeouts and the policy a configuration parsed to.
struct Settings {
  long connect_timeout_ms;
  long timeout_ms;
  const char* channel;
  FailMode failmode;
  NoPhone no_phone;
  int max_attempts;
};
void expect_settings(const Config& c, const Settings& want) {
  assert_int_equal(c.twilio.connect_timeout_ms, want.connect_timeout_ms);
  assert_int_equal(c.twilio.timeout_ms, want.timeout_ms);
  assert_str_eq(c.policy.channel, want.channel);
  assert_true(c.policy.failmode == want.failmode);
  assert_true(c.policy.no_phone == want.no_phone);
  assert_int_equal(c.policy.max_attempts, want.max_attempts);
}

void test_full_config_every_key(void**) {
  const std::string text =
      "# every setting\n"
      "twilio = {\n"
      "  account_sid = \"" + kAccount + "\";\n"
      "  auth_token = \"" + kToken + "\";\n"
      "  api_key_sid = \"" + kKeySid + "\";\n"
      "  api_key_secret = \"" + kKeySecret + "\";\n"
      "  service_sid = \"" + kService + "\";\n"
      "  api_url = \"https://verify.example.test:8443/base/\";\n"
      "  ca_file = \"" + g_ca_file + "\";\n"
      "  proxy = \"http://proxy.example.test:3128\";\n"
      "  connect_timeout_ms = 1500;\n"
      "  timeout_ms = 7000;\n"
      "};\n"
      "channel = \"whatsapp\";\n"
      "failmode = \"safe\";\n"
      "no_phone = \"skip\";\n"
      "max_attempts = 5;\n"
      "phone_sources = [ \"gecos\", \"users\" ];\n"
      "gecos_field = 4;\n"
      "users = ( (\"alice\", \"+1 (555) 123-4567\"),\n"
      "          (\"bob\", \"+44.20.7946.0000\") );\n";
  const Config c = ACCEPTED(text);
  assert_str_eq(c.twilio.account_sid, kAccount);
  assert_str_eq(c.twilio.auth_token.view(), kToken);
  assert_str_eq(c.twilio.api_key_sid, kKeySid);
  assert_str_eq(c.twilio.api_key_secret.view(), kKeySecret);
  assert_str_eq(c.twilio.service_sid, kService);
  assert_str_eq(c.twilio.api_url, "https://verify.example.test:8443/base");
  assert_str_eq(c.twilio.ca_file, g_ca_file);
  assert_str_eq(c.twilio.proxy, "http://proxy.example.test:3128");
  expect_settings(c, {1500, 7000, "whatsapp", FailMode::Safe, NoPhone::Skip, 5});
  assert_int_equal(c.phone.sources.size(), 2);
  assert_true(c.phone.sources[0] == PhoneSource::Gecos);
  assert_true(c.phone.sources[1] == PhoneSource::Users);
  assert_int_equal(c.phone.gecos_field, 4);
  assert_int_equal(c.phone.users.size(), 2);
  assert_str_eq(c.phone.users[0].first, "alice");
  assert_str_eq(c.phone.users[0].second, "+15551234567");
  assert_str_eq(c.phone.users[1].first, "bob");
  assert_str_eq(c.phone.users[1].second, "+442079460000");
  // With an API key, it is the key that authenticates.
  assert_str_eq(c.twilio.auth_user(), kKeySid);
  assert_str_eq(c.twilio.auth_secret().view(), kKeySecret);
}

void test_minimal_config_defaults(void**) {
  const Config c = ACCEPTED(minimal());
  assert_str_eq(c.twilio.account_sid, kAccount);
  assert_str_eq(c.twilio.auth_token.view(), kToken);
  assert_str_eq(c.twilio.service_sid, kService);
  assert_true(c.twilio.api_key_sid.empty());
  assert_true(c.twilio.api_key_secret.empty());
  assert_str_eq(c.twilio.api_url, "https://verify.twilio.com");
  assert_true(c.twilio.ca_file.empty());
  assert_true(c.twilio.proxy.empty());
  expect_settings(c, {3000, 10000, "sms", FailMode::Secure, NoPhone::Deny, 3});
  // GECOS is opt-in (users may edit it with chfn): the default is users only.
  assert_int_equal(c.phone.sources.size(), 1);
  assert_true(c.phone.sources[0] == PhoneSource::Users);
  assert_int_equal(c.phone.gecos_field, 3);
  assert_true(c.phone.users.empty());
  assert_str_eq(c.twilio.auth_user(), kAccount);
  assert_str_eq(c.twilio.auth_secret().view(), kToken);
}

void test_api_key_instead_of_token(void**) {
  const Config c = ACCEPTED(twilio(account_line() + service_line() +
                                   "  api_key_sid = \"" + kKeySid + "\";\n"
                                   "  api_key_secret = \"" + kKeySecret +
                                   "\";\n"));
  assert_true(c.twilio.auth_token.empty());
  assert_str_eq(c.twilio.auth_user(), kKeySid);
  assert_str_eq(c.twilio.auth_secret().view(), kKeySecret);
}

void test_parse_error_names_file_and_line(void**) {
  const std::string msg = REFUSED(
      "twilio = {\n"
      "  account_sid = \"" + kAccount + "\";\n"
      "  service_sid = \"" + kService + "\"\n"  // missing ';' on line 3
      "  auth_token = ;\n"                      // line 4
      "};\n");
  assert_contains(msg, "test.conf:");
  assert_contains(msg, "parse error");
  // The parser reports the line where it noticed the problem.
  const bool line3 = msg.find("test.conf:3:") != std::string::npos;
  const bool line4 = msg.find("test.conf:4:") != std::string::npos;
  assert_true(line3 || line4);
  ACCEPTED(minimal());
}

void test_duplicate_setting_refused(void**) {
  const std::string msg =
      REFUSED(minimal("", "max_attempts = 3;\nmax_attempts = 4;\n"));
  assert_contains(msg, "test.conf:7:");
  assert_contains(msg, "duplicate");
}

void test_missing_twilio_group(void**) {
  const std::string msg = REFUSED("channel = \"sms\";\n");
  assert_contains(msg, "test.conf");
  assert_contains(msg, "twilio");
  assert_contains(msg, "missing");
  assert_contains(REFUSED(""), "twilio");
}

void test_twilio_not_a_group(void**) {
  assert_contains(REFUSED("twilio = 5;\n"), "twilio");
  assert_contains(REFUSED("twilio = \"x\";\n"), "group");
}

void test_missing_account_sid(void**) {
  const std::string msg = REFUSED(twilio(token_line() + service_line()));
  assert_contains(msg, "account_sid");
  assert_contains(msg, "missing");
}

void test_missing_service_sid(void**) {
  const std::string msg = REFUSED(twilio(account_line() + token_line()));
  assert_contains(msg, "service_sid");
  assert_contains(msg, "missing");
}

void test_missing_credential(void**) {
  const std::string msg = REFUSED(twilio(account_line() + service_line()));
  assert_contains(msg, "auth_token");
  assert_contains(msg, "credential");
}

void test_api_key_sid_without_secret(void**) {
  const std::string msg = REFUSED(minimal("  api_key_sid = \"" + kKeySid +
                                          "\";\n"));
  assert_contains(msg, "api_key_secret");
  assert_contains(msg, "missing");
}

void test_api_key_secret_without_sid(void**) {
  const std::string msg = REFUSED(minimal("  api_key_secret = \"" +
                                          kKeySecret + "\";\n"));
  assert_contains(msg, "api_key_sid");
  assert_contains(msg, "missing");
}

void test_is_sid(void**) {
  assert_true(ptv::is_sid(kAccount, "AC"));
  assert_true(ptv::is_sid(kService, "VA"));
  assert_false(ptv::is_sid(kAccount, "VA"));
  assert_false(ptv::is_sid(kAccount.substr(0, 33), "AC"));  // 31 hex
  assert_false(ptv::is_sid(kAccount + "0", "AC"));          // 33 hex
  assert_false(ptv::is_sid("AC0123456789abcdef0123456789abcdeg", "AC"));
  assert_false(ptv::is_sid("ac0123456789abcdef0123456789abcdef", "AC"));
  assert_false(ptv::is_sid("", "AC"));
  assert_false(ptv::is_sid("AC", "AC"));
}

void test_malformed_sids(void**) {
  const std::string hex32 = "0123456789abcdef0123456789abcdef";
  assert_refusals(as_is, {"32 hexadecimal"}, {
      // wrong prefix
      {twilio(account_line("VA" + hex32) + token_line() + service_line()),
       "account_sid"},
      {twilio(account_line() + token_line() + service_line("AC" + hex32)),
       "service_sid"},
      {minimal("  api_key_sid = \"AC" + hex32 + "\";\n  api_key_secret = \"" +
               kKeySecret + "\";\n"),
       "api_key_sid"},
      // 31 and 33 hex digits
      {twilio(account_line("AC" + hex32.substr(1)) + token_line() +
              service_line()),
       "account_sid"},
      {twilio(account_line("AC" + hex32 + "a") + token_line() +
              service_line()),
       "account_sid"},
      {twilio(account_line() + token_line() + service_line("VA" + hex32 + "0")),
       "service_sid"},
      // not hexadecimal
      {twilio(account_line("AC0123456789abcdef0123456789abcdez") +
              token_line() + service_line()),
       "account_sid"},
      {twilio(account_line() + token_line() +
              service_line("VA 123456789abcdef0123456789abcdef")),
       "service_sid"},
      // empty
      {twilio(account_line("") + token_line() + service_line()),
       "account_sid"},
  });
  // Upper-case hex digits are fine.
  ACCEPTED(twilio(account_line("AC0123456789ABCDEF0123456789ABCDEF") +
                  token_line() + service_line()));
}

void test_placeholders_refused(void**) {
  const std::string ac_placeholder = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
  const std::string va_placeholder = "VAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
  assert_int_equal(ac_placeholder.size(), 34);
  assert_int_equal(va_placeholder.size(), 34);

  std::string msg = REFUSED(
      twilio(account_line(ac_placeholder) + token_line() + service_line()));
  assert_contains(msg, "account_sid");
  assert_contains(msg, "placeholder");

  msg = REFUSED(
      twilio(account_line() + token_line() + service_line(va_placeholder)));
  assert_contains(msg, "service_sid");
  assert_contains(msg, "placeholder");

  msg = REFUSED(
      twilio(account_line() + token_line("CHANGE_ME") + service_line()));
  assert_contains(msg, "auth_token");
  assert_contains(msg, "placeholder");

  msg = REFUSED(twilio(account_line() + service_line() +
                       "  api_key_sid = \"" + kKeySid + "\";\n"
                       "  api_key_secret = \"CHANGE_ME\";\n"));
  assert_contains(msg, "api_key_secret");
  assert_contains(msg, "placeholder");

  msg = REFUSED(twilio(account_line() + service_line() +
                       "  api_key_sid = \"SKXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\";\n"
                       "  api_key_secret = \"" + kKeySecret + "\";\n"));
  assert_contains(msg, "api_key_sid");
  assert_contains(msg, "placeholder");
}

void test_unknown_top_level_key(void**) {
  const std::string msg = REFUSED(minimal("", "colour = \"red\";\n"));
  assert_contains(msg, "colour");
  assert_contains(msg, "unknown");
  assert_contains(msg, "test.conf:6:");
}

void test_unknown_twilio_key(void**) {
  const std::string msg = REFUSED(minimal("  region = \"us1\";\n"));
  assert_contains(msg, "twilio.region");
  assert_contains(msg, "unknown");
}

void test_wrong_types(void**) {
  assert_refusals(as_is, {}, {
      {minimal("", "max_attempts = \"3\";\n"), "max_attempts"},
      {minimal("", "max_attempts = 3.0;\n"), "max_attempts"},
      {minimal("", "gecos_field = true;\n"), "gecos_field"},
      {minimal("", "channel = 5;\n"), "channel"},
      {minimal("", "failmode = true;\n"), "failmode"},
      {minimal("", "no_phone = 1;\n"), "no_phone"},
      {minimal("", "users = \"alice\";\n"), "users"},
      {minimal("", "phone_sources = \"users\";\n"), "phone_sources"},
      {minimal("", "phone_sources = [ 1 ];\n"), "phone_sources"},
      {twilio(account_line() + token_line() + "  service_sid = 5;\n"),
       "service_sid"},
      {twilio("  account_sid = 5;\n" + token_line() + service_line()),
       "account_sid"},
      {twilio(account_line() + "  auth_token = 12345678;\n" + service_line()),
       "auth_token"},
      {minimal("  connect_timeout_ms = \"3000\";\n"), "connect_timeout_ms"},
      {minimal("  timeout_ms = 5000.5;\n"), "timeout_ms"},
      {minimal("  api_url = 443;\n"), "api_url"},
      {minimal("  ca_file = [ \"/etc/ssl\" ];\n"), "ca_file"},
      {minimal("  proxy = false;\n"), "proxy"},
  });
  // 64-bit integers within range are fine.
  assert_int_equal(ACCEPTED(minimal("", "max_attempts = 2L;\n")).policy.max_attempts,
                   2);
}

void test_max_attempts_range(void**) {
  for (const char* bad : {"0", "6", "-1", "2147483648", "9L"}) {
    const std::string msg =
        REFUSED(minimal("", std::string("max_attempts = ") + bad + ";\n"));
    assert_contains(msg, "max_attempts");
    assert_contains(msg, "between 1 and 5");
  }
  assert_int_equal(ACCEPTED(minimal("", "max_attempts = 1;\n")).policy.max_attempts,
                   1);
  assert_int_equal(ACCEPTED(minimal("", "max_attempts = 5;\n")).policy.max_attempts,
                   5);
}

// Integer literals beyond 32 bits must not wrap around into the allowed
// range (4294967297 is 2^32 + 1, which truncates to 1).
void test_integer_overflow_refused(void**) {
  const std::vector<std::string> texts = {
      minimal("", "max_attempts = 4294967297;\n"),
      minimal("", "max_attempts = 0x100000003;\n"),
      minimal("", "gecos_field = 4294967299;\n"),
      minimal("  timeout_ms = 4294968296;\n"),
      minimal("  connect_timeout_ms = 4294967796;\n"),
  };
  for (const std::string& text : texts) {
    auto r = ptv::parse_config_text(text, kName);
    if (r.has_value())
      fail_msg("accepted with max_attempts=%d gecos_field=%d timeout_ms=%ld "
               "connect_timeout_ms=%ld:\n%s",
               r->policy.max_attempts, r->phone.gecos_field, r->twilio.timeout_ms,
               r->twilio.connect_timeout_ms, text.c_str());
  }
  // The same values written as 64-bit literals are range-checked.
  assert_contains(REFUSED(minimal("", "max_attempts = 4294967297L;\n")),
                  "between 1 and 5");
}

void test_timeouts_range(void**) {
  assert_contains(REFUSED(minimal("  connect_timeout_ms = 99;\n")),
                  "connect_timeout_ms");
  assert_contains(REFUSED(minimal("  connect_timeout_ms = 60001;\n")),
                  "connect_timeout_ms");
  assert_contains(REFUSED(minimal("  timeout_ms = 499;\n"
                                  "  connect_timeout_ms = 100;\n")),
                  "timeout_ms");
  assert_contains(REFUSED(minimal("  timeout_ms = 60001;\n")), "timeout_ms");
  Config c = ACCEPTED(minimal("  connect_timeout_ms = 100;\n"
                              "  timeout_ms = 500;\n"));
  assert_int_equal(c.twilio.connect_timeout_ms, 100);
  assert_int_equal(c.twilio.timeout_ms, 500);
  c = ACCEPTED(minimal("  connect_timeout_ms = 60000;\n"
                       "  timeout_ms = 60000;\n"));
  assert_int_equal(c.twilio.connect_timeout_ms, 60000);
  assert_int_equal(c.twilio.timeout_ms, 60000);
}

void test_connect_timeout_larger_than_total(void**) {
  const std::string msg = REFUSED(minimal("  connect_timeout_ms = 5000;\n"
                                          "  timeout_ms = 4000;\n"));
  assert_contains(msg, "connect_timeout_ms");
  assert_contains(msg, "timeout_ms");
  const Config c = ACCEPTED(minimal("  connect_timeout_ms = 4000;\n"
                                    "  timeout_ms = 4000;\n"));
  assert_int_equal(c.twilio.connect_timeout_ms, 4000);
}

void test_api_url_rules(void**) {
  const auto with_url = [](const std::string& url) {
    return minimal("  api_url = \"" + url + "\";\n");
  };
  assert_refusals(with_url, {"api_url"}, {
      {"http://verify.twilio.com", "https://"},
      {"HTTP://verify.twilio.com", "https://"},
      {"ftp://verify.twilio.com", "https://"},
      {"verify.twilio.com", "https://"},
      {"https://", "host"},
      {"https:///", "host"},
      {"https://verify.twilio.com/?x=1", "query"},
      {"https://verify.twilio.com/v2#frag", "query"},
      {"https://user:pass@verify.twilio.com", "credentials"},
      {"https://verify.twilio.com@evil.example", "credentials"},
      {"https://verify.twilio.com/a b", "query"},
      {"https://verify.twilio.com\\@evil", "query"},
  });
  struct Good {
    const char* url;
    const char* parsed;
  };
  const std::vector<Good> good = {
      {"https://verify.twilio.com", "https://verify.twilio.com"},
      {"https://verify.twilio.com/", "https://verify.twilio.com"},
      {"https://127.0.0.1:8443//", "https://127.0.0.1:8443"},
      {"https://emu.example.test/prefix/", "https://emu.example.test/prefix"},
  };
  for (const Good& g : good)
    assert_str_eq(ACCEPTED(with_url(g.url)).twilio.api_url, g.parsed);
}

void test_ca_file_rules(void**) {
  std::string msg = REFUSED(minimal("  ca_file = \"ca.pem\";\n"));
  assert_contains(msg, "ca_file");
  assert_contains(msg, "absolute");

  msg = REFUSED(minimal("  ca_file = \"" + g_dir + "/missing.pem\";\n"));
  assert_contains(msg, "ca_file");
  assert_contains(msg, "cannot be read");

  msg = REFUSED(minimal("  ca_file = \"" + g_dir + "\";\n"));
  assert_contains(msg, "ca_file");
  assert_contains(msg, "regular file");

  msg = REFUSED(minimal("  ca_file = \"\";\n"));
  assert_contains(msg, "ca_file");

  assert_str_eq(ACCEPTED(minimal("  ca_file = \"" + g_ca_file + "\";\n"))
                    .twilio.ca_file,
                g_ca_file);
}

void test_proxy_rules(void**) {
  std::string msg =
      REFUSED(minimal("  proxy = \"socks5://proxy.example.test:1080\";\n"));
  assert_contains(msg, "proxy");
  msg = REFUSED(minimal("  proxy = \"http://proxy example\";\n"));
  assert_contains(msg, "proxy");
  assert_str_eq(ACCEPTED(minimal("  proxy = \"https://p.example.test\";\n"))
                    .twilio.proxy,
                "https://p.example.test");
}

void test_enumerations(void**) {
  std::string msg = REFUSED(minimal("", "channel = \"email\";\n"));
  assert_contains(msg, "channel");
  msg = REFUSED(minimal("", "channel = \"SMS\";\n"));
  assert_contains(msg, "channel");
  msg = REFUSED(minimal("", "failmode = \"open\";\n"));
  assert_contains(msg, "failmode");
  msg = REFUSED(minimal("", "no_phone = \"allow\";\n"));
  assert_contains(msg, "no_phone");

  assert_str_eq(ACCEPTED(minimal("", "channel = \"call\";\n")).policy.channel, "call");
  assert_str_eq(ACCEPTED(minimal("", "channel = \"sms\";\n")).policy.channel, "sms");
  assert_true(ACCEPTED(minimal("", "failmode = \"secure\";\n")).policy.failmode ==
              FailMode::Secure);
  assert_true(ACCEPTED(minimal("", "failmode = \"safe\";\n")).policy.failmode ==
              FailMode::Safe);
  assert_true(ACCEPTED(minimal("", "no_phone = \"deny\";\n")).policy.no_phone ==
              NoPhone::Deny);
  assert_true(ACCEPTED(minimal("", "no_phone = \"skip\";\n")).policy.no_phone ==
              NoPhone::Skip);
}

// locale: "" or a language tag, checked for its form only.
void test_locale(void**) {
  assert_str_eq(ACCEPTED(minimal()).policy.locale, "");
  for (const char* tag : {"", "fr", "pt-BR", "zh-HK", "es-419", "sr-Latn-RS",
                          "yue", "en-GB-oxendict", "ZH-hk"})
    assert_str_eq(
        ACCEPTED(minimal("", std::string("locale = \"") + tag + "\";\n"))
            .policy.locale,
        tag);
  const std::string form =
      "locale: must be a language tag such as \"fr\", \"pt-BR\" or \"zh-HK\" "
      "(2 or 3 letters, then subtags of 2 to 8 letters or digits after \"-\", "
      "at most 35 characters), or \"\" to let Twilio choose by the number's "
      "country";
  for (const char* tag :
       {"f", "fren", "french", "pt_BR", "pt-", "-pt", "pt--BR", "pt-B", "p1",
        "zh-toolongtag", "fr ", " fr", "fr\\tCA", "de-DE-1996-a", "\\u00e9s",
        "en-GB-oxendict-oxendict-oxendict-x"}) {
    // The line of the setting: the twilio group takes lines 1 to 5.
    const std::string msg =
        REFUSED(minimal("", std::string("locale = \"") + tag + "\";\n"));
    assert_str_eq(msg, std::string("test.conf:6: ") + form);
  }
  assert_str_eq(REFUSED(minimal("", "channel = \"sms\";\n\nlocale = \"x\";\n")),
                std::string("test.conf:8: ") + form);
  assert_str_eq(REFUSED(minimal("", "locale = 5;\n")),
                "test.conf:6: locale: must be a string in double quotes");
  assert_str_eq(REFUSED(minimal("  locale = \"fr\";\n")),
                "test.conf:5: twilio.locale: unknown setting");
}

void test_phone_sources(void**) {
  std::string msg =
      REFUSED(minimal("", "phone_sources = [ \"users\", \"sql\" ];\n"));
  assert_contains(msg, "phone_sources");
  assert_contains(msg, "sql");
  msg = REFUSED(minimal("", "phone_sources = [ \"gecos\", \"gecos\" ];\n"));
  assert_contains(msg, "phone_sources");
  assert_contains(msg, "twice");
  msg = REFUSED(minimal("", "phone_sources = [ ];\n"));
  assert_contains(msg, "phone_sources");
  assert_contains(msg, "at least one");

  Config c = ACCEPTED(minimal("", "phone_sources = [ \"gecos\" ];\n"));
  assert_int_equal(c.phone.sources.size(), 1);
  assert_true(c.phone.sources[0] == PhoneSource::Gecos);
  c = ACCEPTED(minimal("", "phone_sources = ( \"users\" );\n"));
  assert_int_equal(c.phone.sources.size(), 1);
  assert_true(c.phone.sources[0] == PhoneSource::Users);
}

// ------------------------------------------------------------ ldap, command

std::string ldap_group(const std::string& body) {
  return "ldap = {\n" + body + "};\n";
}
const std::string kLdapMinimal =
    "  uri = \"ldaps://directory.example.com\";\n"
    "  base = \"ou=people,dc=example,dc=com\";\n";

// A minimal configuration whose only phone source is ldap, with this group.
std::string with_ldap(const std::string& group_body) {
  return minimal("", "phone_sources = [ \"ldap\" ];\n" + ldap_group(group_body));
}

void test_ldap_full_group(void**) {
  Config c = ACCEPTED(minimal(
      "", "phone_sources = [ \"ldap\", \"users\" ];\n" +
              ldap_group("  uri = \"ldap://a.example.com ldap://b.example.com:3389\";\n"
                         "  starttls = true;\n"
                         "  ca_file = \"" + g_ca_file + "\";\n"
                         "  base = \"ou=people,dc=example,dc=com\";\n"
                         "  filter = \"(&(objectClass=inetOrgPerson)(uid=%u))\";\n"
                         "  attribute = \"telephoneNumber\";\n"
                         "  bind_dn = \"cn=pam,dc=example,dc=com\";\n"
                         "  bind_password = \"bind-s3cret\";\n"
                         "  timeout_ms = 1500;\n")));
  assert_true(c.phone.has_ldap);
  assert_true(c.phone.sources[0] == PhoneSource::Ldap);
  assert_str_eq(c.phone.ldap.uri, "ldap://a.example.com ldap://b.example.com:3389");
  assert_true(c.phone.ldap.starttls);
  assert_true(c.phone.ldap.uses_tls());
  assert_str_eq(c.phone.ldap.ca_file, g_ca_file);
  assert_str_eq(c.phone.ldap.base, "ou=people,dc=example,dc=com");
  assert_str_eq(c.phone.ldap.filter, "(&(objectClass=inetOrgPerson)(uid=%u))");
  assert_str_eq(c.phone.ldap.attribute, "telephoneNumber");
  assert_str_eq(c.phone.ldap.bind_dn, "cn=pam,dc=example,dc=com");
  assert_str_eq(c.phone.ldap.bind_password.view(), "bind-s3cret");
  assert_int_equal(c.phone.ldap.timeout_ms, 1500);
}

void test_ldap_defaults(void**) {
  Config c = ACCEPTED(with_ldap(kLdapMinimal));
  assert_str_eq(c.phone.ldap.filter, "(uid=%u)");
  assert_str_eq(c.phone.ldap.attribute, "mobile");
  assert_true(c.phone.ldap.bind_dn.empty());
  assert_true(c.phone.ldap.bind_password.empty());
  assert_int_equal(c.phone.ldap.timeout_ms, 3000);
  assert_false(c.phone.ldap.starttls);  // ldaps:// is TLS already
  assert_true(c.phone.ldap.uses_tls());
  const std::string base = "  base = \"dc=example,dc=com\";\n";
  // ldap:// upgrades with StartTLS unless told not to.
  c = ACCEPTED(with_ldap("  uri = \"ldap://d.example.com\";\n" + base));
  assert_true(c.phone.ldap.starttls);
  assert_true(c.phone.ldap.uses_tls());
  c = ACCEPTED(with_ldap("  uri = \"ldap://d.example.com\";\n"
                         "  starttls = false;\n" + base));
  assert_false(c.phone.ldap.uses_tls());
  c = ACCEPTED(with_ldap("  uri = \"ldapi:///\";\n" + base));
  assert_false(c.phone.ldap.uses_tls());
  // Spaces around the URI list do not turn StartTLS off.
  c = ACCEPTED(with_ldap(
      "  uri = \"  ldap://d.example.com  ldap://e.example.com \";\n" + base));
  assert_str_eq(c.phone.ldap.uri, "ldap://d.example.com  ldap://e.example.com");
  assert_true(c.phone.ldap.starttls);
  assert_true(c.phone.ldap.uses_tls());
  c = ACCEPTED(with_ldap("  uri = \" ldaps://d.example.com\";\n" + base));
  assert_str_eq(c.phone.ldap.uri, "ldaps://d.example.com");
  assert_true(c.phone.ldap.uses_tls());
}

void test_ldap_bind_password_any_characters(void**) {
  // A directory password is not a Twilio token: spaces and UTF-8 are kept.
  const Config c = ACCEPTED(with_ldap(
      kLdapMinimal + "  bind_dn = \"cn=pam\";\n  bind_password = \"pass word \u00e9\";\n"));
  assert_str_eq(c.phone.ldap.bind_password.view(), "pass word \u00e9");
  // (A Twilio token with a space is refused: test_secret_value_rules.)
}

void test_ldap_refused(void**) {
  // The ldap = { ... } group's body, and what the refusal must say.
  assert_refusals(with_ldap, {}, {
      {"  base = \"dc=example,dc=com\";\n", "uri is missing"},
      {"  uri = \"ldaps://d.example.com\";\n", "base is missing"},
      {"  uri = \"https://d.example.com\";\n  base = \"dc=x\";\n", "ldap.uri"},
      {"  uri = \"ldap://a ldaps://b\";\n  base = \"dc=x\";\n", "mix"},
      {"  uri = \"   \";\n  base = \"dc=x\";\n", "empty"},
      {kLdapMinimal + "  starttls = true;\n", "ldap:// URIs only"},
      {kLdapMinimal + "  starttls = \"yes\";\n", "true or false"},
      {kLdapMinimal + "  filter = \"(uid=alice)\";\n", "ldap.filter"},
      {kLdapMinimal + "  attribute = \"mob ile\";\n", "ldap.attribute"},
      {kLdapMinimal + "  bind_dn = \"cn=pam\";\n", "bind_password is missing"},
      {kLdapMinimal + "  bind_password = \"pw\";\n", "bind_dn is missing"},
      {kLdapMinimal + "  bind_dn = \"cn=pam\";\n  bind_password = \"CHANGE_ME\";\n",
       "placeholder"},
      {kLdapMinimal + "  timeout_ms = 50;\n", "ldap.timeout_ms"},
      {kLdapMinimal + "  ca_file = \"relative.pem\";\n", "absolute"},
      {kLdapMinimal + "  port = 389;\n", "unknown setting"},
  });
  assert_contains(REFUSED(minimal("", "phone_sources = [ \"ldap\" ];\n")),
                  "ldap = { ... }; group is missing");
  assert_contains(REFUSED(minimal("", "ldap = \"ldap://x\";\n")), "must be a group");
}

void test_ldap_errors_never_contain_the_bind_password(void**) {
  const std::string pw = "Bind-Password-Do-Not-Log-7f3a";
  for (const std::string& extra :
       {std::string("  timeout_ms = 1;\n"), std::string("  filter = \"x\";\n"),
        std::string("  bind_password2 = \"") + pw + "\";\n"}) {
    const std::string msg = REFUSED(with_ldap(
        kLdapMinimal + "  bind_dn = \"cn=pam\";\n  bind_password = \"" + pw + "\";\n" +
        extra));
    assert_not_contains(msg, pw);
  }
}

void test_lookup_command_settings(void**) {
  Config c = ACCEPTED(minimal("", "phone_sources = [ \"command\" ];\n"
                                  "lookup_command = \"/usr/local/sbin/phone-for-user\";\n"));
  assert_str_eq(c.phone.command.path, "/usr/local/sbin/phone-for-user");
  assert_str_eq(c.phone.command.user, "nobody");
  assert_int_equal(c.phone.command.timeout_ms, 2000);
  c = ACCEPTED(minimal("", "phone_sources = [ \"users\", \"command\" ];\n"
                           "lookup_command = \"/opt/x/lookup\";\n"
                           "lookup_command_user = \"phonelookup\";\n"
                           "lookup_timeout_ms = 500;\n"));
  assert_str_eq(c.phone.command.user, "phonelookup");
  assert_int_equal(c.phone.command.timeout_ms, 500);

  assert_contains(REFUSED(minimal("", "phone_sources = [ \"command\" ];\n")),
                  "lookup_command is not set");
  assert_contains(REFUSED(minimal("", "phone_sources = [ \"command\" ];\n"
                                      "lookup_command = \"phone-for-user\";\n")),
                  "absolute");
  assert_contains(REFUSED(minimal("", "phone_sources = [ \"command\" ];\n"
                                      "lookup_command = \"/x\";\n"
                                      "lookup_command_user = \"root\";\n")),
                  "not root");
  assert_contains(REFUSED(minimal("", "phone_sources = [ \"command\" ];\n"
                                      "lookup_command = \"/x\";\n"
                                      "lookup_timeout_ms = 70000;\n")),
                  "lookup_timeout_ms");
}

void test_gecos_field_range(void**) {
  for (const char* bad : {"0", "6"}) {
    const std::string msg =
        REFUSED(minimal("", std::string("gecos_field = ") + bad + ";\n"));
    assert_contains(msg, "gecos_field");
    assert_contains(msg, "between 1 and 5");
  }
  assert_int_equal(ACCEPTED(minimal("", "gecos_field = 1;\n")).phone.gecos_field, 1);
  assert_int_equal(ACCEPTED(minimal("", "gecos_field = 5;\n")).phone.gecos_field, 5);
}

void test_users_entries(void**) {
  const auto with_users = [](const std::string& users) {
    return minimal("", users + "\n");
  };
  assert_refusals(with_users, {"users"}, {
      {"users = ( \"alice\" );", "pair"},
      {"users = ( (\"alice\") );", "pair"},
      {"users = ( (\"alice\", \"+15551234567\", \"x\") );", "pair"},
      {"users = ( (\"alice\", 15551234567) );", "string"},
      {"users = ( (1, \"+15551234567\") );", "string"},
      {"users = ( (\"\", \"+15551234567\") );", "empty user name"},
      {"users = ( (\"alice\", \"15551234567\") );", "E.164"},
      {"users = ( (\"alice\", \"+05551234567\") );", "E.164"},
      {"users = ( (\"alice\", \"+1555123456789012\") );", "E.164"},
      {"users = ( (\"alice\", \"+1 555 CALL ME\") );", "E.164"},
      {"users = ( (\"alice\", \"\") );", "E.164"},
      {"users = ( (\"alice\", \"+15551234567\"), (\"alice\", \"+15557654321\") "
       ");",
       "twice"},
  });
  const std::string bad_number =
      REFUSED(minimal("", "users = ( (\"carol\", \"12345\") );\n"));
  assert_contains(bad_number, "carol");

  const Config c = ACCEPTED(minimal(
      "", "users = ( [\"alice\", \"+1 555 123 4567\"], (\"bob\", "
          "\"+4420\t7946-0000\") );\n"));
  assert_int_equal(c.phone.users.size(), 2);
  assert_str_eq(c.phone.users[0].second, "+15551234567");
  assert_str_eq(c.phone.users[1].second, "+442079460000");
  assert_true(ACCEPTED(minimal("", "users = ( );\n")).phone.users.empty());
}

void test_include_refused(void**) {
  std::string msg = REFUSED("@include \"/etc/other.conf\"\n" + minimal());
  assert_contains(msg, "@include");
  msg = REFUSED(minimal() + "   \t@include \"/etc/passwd\"\n");
  assert_contains(msg, "@include");
  // The word in a comment is harmless.
  ACCEPTED(minimal() + "# do not use @include here\n");
}

void test_embedded_nul_refused(void**) {
  std::string text = minimal() + "# comment\n";
  ACCEPTED(text);
  text[text.size() - 3] = '\0';
  const std::string msg = REFUSED(text);
  assert_contains(msg, "test.conf");
  assert_contains(msg, "NUL");
}

void test_secret_value_rules(void**) {
  std::string msg = REFUSED(twilio(account_line() + token_line("") +
                                   service_line()));
  assert_contains(msg, "auth_token");
  msg = REFUSED(twilio(account_line() + token_line("abc def") +
                       service_line()));
  assert_contains(msg, "auth_token");
  assert_contains(msg, "printable");
  msg = REFUSED(twilio(account_line() + token_line("abc\\tdef") +
                       service_line()));
  assert_contains(msg, "auth_token");
}

// No error message may echo the auth token or the API key secret.
void test_errors_never_contain_secrets(void**) {
  const std::string token = "Sup3rS3cretT0kenValue";
  const std::string spaced = "Sup3rS3cret T0kenValue";
  const std::string tok = "  auth_token = \"" + token + "\";\n";
  const std::vector<std::string> texts = {
      // the secret itself invalid
      twilio(account_line() + "  auth_token = \"" + spaced + "\";\n" +
             service_line()),
      twilio(account_line() + "  auth_token = \"" + token + "\u00e9\";\n" +
             service_line()),
      twilio(account_line() + "  api_key_sid = \"" + kKeySid + "\";\n" +
             "  api_key_secret = \"" + spaced + "\";\n" + service_line()),
      // other errors with the secret present
      twilio(account_line() + tok + service_line() + "  region = 1;\n"),
      twilio(account_line() + tok),
      twilio(tok + service_line()),
      twilio(account_line() + tok + service_line()) + "channel = \"x\";\n",
      twilio(account_line() + tok + service_line()) + "max_attempts = 9;\n",
      // syntax errors near the secret
      twilio(account_line() + "  auth_token = \"" + token + "\" = 5;\n" +
             service_line()),
      twilio(account_line() + "  auth_token = \"" + token + ";\n" +
             service_line()),
      twilio(account_line() + "  auth_token = " + token + ";\n" +
             service_line()),
      // a misspelt key holding the secret
      twilio(account_line() + "  auth_tokn = \"" + token + "\";\n" +
             service_line()),
  };
  for (const std::string& text : texts) {
    const std::string msg = REFUSED(text);
    assert_not_contains(msg, token);
    assert_not_contains(msg, spaced);
    assert_not_contains(msg, "Sup3rS3cret");
  }
  // The same token in a valid file parses.
  assert_str_eq(ACCEPTED(twilio(account_line() + tok + service_line()))
                    .twilio.auth_token.view(),
                token);
}

// ---------------------------------------------------------------- loading

// Creates a file in the temporary directory with mkstemp; returns its path.
std::string make_file(const std::string& content, mode_t mode) {
  std::string path = g_dir + "/cfg-XXXXXX";
  std::vector<char> buf(path.begin(), path.end());
  buf.push_back('\0');
  const int fd = mkstemp(buf.data());
  if (fd < 0) return {};
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  fchmod(fd, mode);
  close(fd);
  return std::string(buf.data());
}

bool running_as_root() { return geteuid() == 0; }

void test_load_valid_file(void**) {
  if (!running_as_root()) skip();
  const std::string path = make_file(minimal(), 0600);
  assert_false(path.empty());
  auto r = ptv::load_config_file(path);
  if (!r) fail_msg("refused: %s", r.error().message.c_str());
  assert_str_eq(r->twilio.account_sid, kAccount);
  assert_str_eq(r->twilio.auth_token.view(), kToken);
  // Mode 0400 is also fine.
  const std::string ro = make_file(minimal(), 0400);
  assert_true(ptv::load_config_file(ro).has_value());
}

void test_load_group_or_other_access_refused(void**) {
  if (!running_as_root()) skip();
  for (mode_t mode : {mode_t{0640}, mode_t{0604}, mode_t{0601}, mode_t{0610}}) {
    const std::string path = make_file(minimal(), mode);
    auto r = ptv::load_config_file(path);
    assert_false(r.has_value());
    assert_contains(r.error().message, "chmod 600");
    assert_contains(r.error().message, path);
  }
}

void test_load_wrong_owner_refused(void**) {
  if (!running_as_root()) skip();
  const std::string path = make_file(minimal(), 0600);
  assert_true(ptv::load_config_file(path).has_value());
  const int fd = open(path.c_str(), O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(fchown(fd, 65534, 65534), 0);
  close(fd);
  auto r = ptv::load_config_file(path);
  assert_false(r.has_value());
  assert_contains(r.error().message, "owned by root");
  assert_contains(r.error().message, "65534");
}

void test_load_symlink_refused(void**) {
  if (!running_as_root()) skip();
  const std::string target = make_file(minimal(), 0600);
  const std::string link = g_dir + "/link.conf";
  assert_int_equal(symlink(target.c_str(), link.c_str()), 0);
  assert_true(ptv::load_config_file(target).has_value());
  auto r = ptv::load_config_file(link);
  assert_false(r.has_value());
  assert_contains(r.error().message, "symbolic link");
}

void test_load_directory_refused(void**) {
  auto r = ptv::load_config_file(g_dir);
  assert_false(r.has_value());
  assert_contains(r.error().message, "not a regular file");
}

void test_load_fifo_refused(void**) {
  const std::string fifo = g_dir + "/fifo.conf";
  assert_int_equal(mkfifo(fifo.c_str(), 0600), 0);
  auto r = ptv::load_config_file(fifo);  // must not block
  assert_false(r.has_value());
  assert_contains(r.error().message, "not a regular file");
}

void test_load_missing_file_refused(void**) {
  const std::string path = g_dir + "/does-not-exist.conf";
  auto r = ptv::load_config_file(path);
  assert_false(r.has_value());
  assert_contains(r.error().message, path);
  assert_contains(r.error().message, "cannot open");
}

std::string padded_config(std::size_t total) {
  std::string text = minimal();
  const std::string line = "# " + std::string(76, 'p') + "\n";  // 79 bytes
  while (text.size() + line.size() <= total) text += line;
  if (text.size() < total) text += std::string(total - text.size() - 1, '#') + "\n";
  return text;
}

void test_load_size_limit(void**) {
  if (!running_as_root()) skip();
  const std::string exact = padded_config(ptv::kMaxConfigBytes);
  assert_int_equal(exact.size(), ptv::kMaxConfigBytes);
  auto ok = ptv::load_config_file(make_file(exact, 0600));
  if (!ok) fail_msg("1 MiB refused: %s", ok.error().message.c_str());

  const std::string big = padded_config(ptv::kMaxConfigBytes + 1);
  assert_int_equal(big.size(), ptv::kMaxConfigBytes + 1);
  auto r = ptv::load_config_file(make_file(big, 0600));
  assert_false(r.has_value());
  assert_contains(r.error().message, "larger than 1 MiB");
}

void test_load_reports_parse_errors_with_path(void**) {
  if (!running_as_root()) skip();
  const std::string path = make_file(minimal("", "max_attempts = 0;\n"), 0600);
  auto r = ptv::load_config_file(path);
  assert_false(r.has_value());
  assert_contains(r.error().message, path + ":6:");
  assert_contains(r.error().message, "max_attempts");
}

}  // namespace

// ---------------------------------------------------------- send limit

void test_send_limit_defaults(void**) {
  const Config c = ACCEPTED(minimal());
  assert_int_equal(c.state.send_limit_count, 5);
  assert_int_equal(c.state.send_limit_window_s, 3600);
  assert_str_eq(c.state.state_dir, "/var/lib/pam_twilio_verify");
}

void test_send_limit_values(void**) {
  Config c = ACCEPTED(minimal("", "send_limit = { count = 1; window_s = 60; };\n"
                                  "state_dir = \"/run/ptv/\";\n"));
  assert_int_equal(c.state.send_limit_count, 1);
  assert_int_equal(c.state.send_limit_window_s, 60);
  assert_str_eq(c.state.state_dir, "/run/ptv");  // trailing slash dropped
  c = ACCEPTED(minimal("", "send_limit = { window_s = 86400; count = 100; };\n"));
  assert_int_equal(c.state.send_limit_count, 100);
  assert_int_equal(c.state.send_limit_window_s, 86400);
  // Each key is optional.
  c = ACCEPTED(minimal("", "send_limit = { count = 2; };\n"));
  assert_int_equal(c.state.send_limit_count, 2);
  assert_int_equal(c.state.send_limit_window_s, 3600);
  c = ACCEPTED(minimal("", "send_limit = { };\n"));
  assert_int_equal(c.state.send_limit_count, 5);
}

void test_send_limit_refused(void**) {
  assert_refusals(at_root, {kName}, {
      {"send_limit = { count = 0; };\n", "send_limit.count: must be between 1 and 100"},
      {"send_limit = { count = 101; };\n", "send_limit.count: must be between 1 and 100"},
      {"send_limit = { count = 4294967301; };\n", "between 1 and 100"},
      {"send_limit = { count = \"5\"; };\n", "send_limit.count: must be a whole number"},
      {"send_limit = { window_s = 59; };\n", "send_limit.window_s: must be between 60 and 86400"},
      {"send_limit = { window_s = 86401; };\n", "between 60 and 86400"},
      {"send_limit = { count = 5; burst = 2; };\n", "send_limit.burst: unknown setting"},
      {"send_limit = 5;\n", "send_limit: must be a group"},
      {"send_limit = ( 5, 3600 );\n", "send_limit: must be a group"},
      {"state_dir = \"var/lib/x\";\n", "state_dir: must be an absolute path"},
      {"state_dir = \"\";\n", "state_dir: must be an absolute path"},
      {"state_dir = \"/\";\n", "state_dir: must not be the root directory"},
      {"state_dir = \"/var/lib/../tmp\";\n", "state_dir: must be a plain absolute path"},
      {"state_dir = \"/var/./lib\";\n", "state_dir: must be a plain absolute path"},
      {"state_dir = \"/var//lib\";\n", "state_dir: must be a plain absolute path"},
      {"state_dir = \"/var/lib/a\\nb\";\n", "state_dir: must not contain control"},
      {"state_dir = 5;\n", "state_dir: must be a string"},
  });
}

// ------------------------------------------------------------- services

void test_services_unset_by_default(void**) {
  const Config c = ACCEPTED(minimal());
  assert_false(c.policy.services_set);
  assert_true(c.policy.services.empty());
}

void test_services_accepted(void**) {
  Config c = ACCEPTED(minimal(
      "", "services = [ \"sshd\", \"login\", \"su\", \"su-l\", \"sudo\", "
          "\"sudo-i\" ];\n"));
  assert_true(c.policy.services_set);
  const std::vector<std::string> want = {"sshd", "login", "su",
                                         "su-l", "sudo", "sudo-i"};
  assert_int_equal(c.policy.services.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    assert_str_eq(c.policy.services[i], want[i]);
  // A list works as well as an array; any printable ASCII but space and
  // '/', up to 64 characters.
  const std::string longest(64, 'x');
  c = ACCEPTED(minimal("", "services = ( \"gdm-password\", \"a.b_c@d+e:f~!\", \"" +
                               longest + "\" );\n"));
  assert_int_equal(c.policy.services.size(), 3);
  assert_str_eq(c.policy.services[0], "gdm-password");
  assert_str_eq(c.policy.services[1], "a.b_c@d+e:f~!");
  assert_str_eq(c.policy.services[2], longest);
  c = ACCEPTED(minimal("", "services = [ \"sshd\" ];\n"));
  assert_int_equal(c.policy.services.size(), 1);
  assert_true(c.policy.services_set);
}

void test_services_refused(void**) {
  assert_refusals(at_root, {}, {
      {"services = [ ];\n",
       "test.conf:6: services: must name at least one service; leave the "
       "setting out to cover every service"},
      {"services = ( );\n", "test.conf:6: services: must name at least one service"},
      {"services = \"sshd\";\n",
       "test.conf:6: services: must be a list such as [ \"sshd\", \"login\" ]"},
      {"services = { sshd = true; };\n", "test.conf:6: services: must be a list"},
      {"services = [ 1 ];\n", "test.conf:6: services: must be a string in double quotes"},
      {"services = ( \"sshd\",\n  [ \"login\" ] );\n",
       "test.conf:7: services: must be a string in double quotes"},
      {"services = [ \"sshd\", \"\" ];\n", "test.conf:6: services: entry 2 is empty"},
      {"services = [ \"ss hd\" ];\n",
       "test.conf:6: services: service \"ss hd\" must be printable ASCII "
       "without spaces or '/'"},
      {"services = [ \"../sshd\" ];\n", "without spaces or '/'"},
      {"services = [ \"sshd\\t\" ];\n", "test.conf:6: services: service \"sshd"},
      {"services = [ \"s\u00e9\" ];\n", "must be printable ASCII"},
      {"services = [ \"" + std::string(65, 'x') + "\" ];\n",
       "is longer than 64 characters"},
      {"services = [ \"sshd\",\n  \"login\",\n  \"sshd\" ];\n",
       "test.conf:8: services: service \"sshd\" is listed twice"},
      {"services = [ \"sshd\" ];\nservices = [ \"login\" ];\n",
       "test.conf:7: parse error: duplicate setting name"},
  });
}

// ------------------------------------------------- exemptions and grace

void test_policy_defaults_and_accepted(void**) {
  ptv::Config c = ACCEPTED(minimal("", ""));
  assert_true(c.policy.exempt_groups.empty());
  assert_true(c.policy.exempt_networks.empty());
  assert_int_equal(c.policy.grace_period_s, 0);
  c = ACCEPTED(minimal("",
                       "exempt_groups = [ \"deploy\", \"break-glass_2\" ];\n"
                       "exempt_networks = [ \"10.0.0.0/8\", \"2001:db8::/32\",\n"
                       "  \"192.0.2.7\", \"0.0.0.0/0\", \"::/0\" ];\n"
                       "grace_period_s = 86400;\n"));
  assert_int_equal(c.policy.exempt_groups.size(), 2);
  assert_str_eq(c.policy.exempt_groups[1], "break-glass_2");
  assert_int_equal(c.policy.exempt_networks.size(), 5);
  assert_str_eq(c.policy.exempt_networks[0].text, "10.0.0.0/8");
  assert_int_equal(c.policy.exempt_networks[0].prefix, 8);
  assert_int_equal(c.policy.exempt_networks[1].prefix, 32);
  assert_false(c.policy.exempt_networks[1].base.v4);
  assert_int_equal(c.policy.exempt_networks[2].prefix, 32);
  assert_int_equal(c.policy.exempt_networks[4].prefix, 0);
  assert_int_equal(c.policy.grace_period_s, 86400);
}

void test_policy_refused(void**) {
  struct Bad {
    std::string root;
    const char* message;
  };
  const std::vector<Bad> bad = {
      {"exempt_networks = [ \"10.0.0.0/33\" ];\n",
       "test.conf:6: exempt_networks: \"10.0.0.0/33\" has a bad prefix length "
       "(0 to 32)"},
      {"exempt_networks = [ \"2001:db8::/129\" ];\n", "(0 to 128)"},
      {"exempt_networks = [ \"10.0.0.0/\" ];\n", "has a bad prefix length"},
      {"exempt_networks = [ \"10.0.0.0/08\" ];\n", "has a bad prefix length"},
      {"exempt_networks = [ \"10.0.0.0/-1\" ];\n", "has a bad prefix length"},
      {"exempt_networks = [ \"10.1.0.0/8\" ];\n",
       "test.conf:6: exempt_networks: \"10.1.0.0/8\" has host bits set"},
      {"exempt_networks = [ \"2001:db8::1/32\" ];\n", "has host bits set"},
      {"exempt_networks = [ \"10.0.0.0/8\",\n  \"office\" ];\n",
       "test.conf:7: exempt_networks: \"office\" is not an IPv4 or IPv6 network"},
      {"exempt_networks = [ \"10.0.0\" ];\n", "is not an IPv4 or IPv6 network"},
      {"exempt_networks = [ \"fe80::1%eth0\" ];\n", "is not an IPv4 or IPv6 network"},
      {"exempt_networks = [ \"\" ];\n", "is not an IPv4 or IPv6 network"},
      {"exempt_networks = \"10.0.0.0/8\";\n",
       "test.conf:6: exempt_networks: must be a list such as [ \"10.0.0.0/8\", "
       "\"2001:db8::/32\" ]"},
      {"exempt_networks = [ \"10.0.0.0/8\", \"10.0.0.0/8\" ];\n",
       "network \"10.0.0.0/8\" is listed twice"},
      {"exempt_groups = [ \"dev ops\" ];\n",
       "test.conf:6: exempt_groups: group \"dev ops\" must be printable ASCII "
       "without spaces, ':' or ','"},
      {"exempt_groups = [ \"a:b\" ];\n", "without spaces, ':' or ','"},
      {"exempt_groups = [ \"\" ];\n", "test.conf:6: exempt_groups: entry 1 is empty"},
      {"exempt_groups = [ 7 ];\n", "must be a string in double quotes"},
      {"exempt_groups = \"deploy\";\n",
       "exempt_groups: must be a list such as [ \"deploy\", \"breakglass\" ]"},
      {"exempt_groups = [ \"wheel\",\n  \"wheel\" ];\n",
       "test.conf:7: exempt_groups: group \"wheel\" is listed twice"},
      {"grace_period_s = 86401;\n", "test.conf:6: grace_period_s:"},
      {"grace_period_s = -1;\n", "test.conf:6: grace_period_s:"},
      {"grace_period_s = \"600\";\n", "test.conf:6: grace_period_s:"},
  };
  for (const Bad& b : bad) {
    const std::string message = REFUSED(minimal("", b.root));
    assert_contains(message, b.message);
  }
}

// ------------------------------------------------------------ rate_limits

constexpr const char* kRateLimits =
    "rate_limits = {\n"
    "  account = { unique_name = \"pam_account\"; buckets = ( { max = 10; interval_s = 3600; } ); };\n"
    "  client_ip = { unique_name = \"pam_client_ip\";\n"
    "    buckets = ( { max = 30; interval_s = 3600; }, { max = 5; interval_s = 60; } ); };\n"
    "};\n";

void test_rate_limits_values(void**) {
  Config c = ACCEPTED(minimal());
  assert_false(c.twilio.rate_limits.account.declared());
  assert_false(c.twilio.rate_limits.client_ip.declared());
  c = ACCEPTED(minimal("", kRateLimits));
  const auto& l = c.twilio.rate_limits;
  assert_str_eq(l.account.unique_name, "pam_account");
  assert_int_equal(l.account.buckets.size(), 1);
  assert_int_equal(l.account.buckets[0].max, 10);
  assert_int_equal(l.account.buckets[0].interval_s, 3600);
  assert_str_eq(l.client_ip.unique_name, "pam_client_ip");
  assert_int_equal(l.client_ip.buckets.size(), 2);
  assert_int_equal(l.client_ip.buckets[1].max, 5);
  assert_int_equal(l.client_ip.buckets[1].interval_s, 60);
  // Each part is optional; the bounds are accepted.
  c = ACCEPTED(minimal("", "rate_limits = { client_ip = { unique_name = \"a-B_9\"; "
                           "buckets = ( { max = 1; interval_s = 1; }, "
                           "{ max = 100000; interval_s = 86400; } ); }; };\n"));
  assert_false(c.twilio.rate_limits.account.declared());
  assert_str_eq(c.twilio.rate_limits.client_ip.unique_name, "a-B_9");
  c = ACCEPTED(minimal("", "rate_limits = { account = { unique_name = \"" +
                               std::string(64, 'n') + "\"; buckets = ( { max = 3; "
                               "interval_s = 3600; } ); }; };\n"));
  assert_int_equal(c.twilio.rate_limits.account.unique_name.size(), 64);
}

// Exact messages, with the file and the line of the setting at fault (the
// minimal twilio group takes lines 1 to 5).
void test_rate_limits_messages(void**) {
  const auto limit = [](const std::string& body) {
    return minimal("", "rate_limits = {\n  account = {\n" + body + "  };\n};\n");
  };
  assert_str_eq(REFUSED(limit("    unique_name = \"pam account\";\n"
                              "    buckets = ( { max = 1; interval_s = 60; } );\n")),
                "test.conf:8: rate_limits.account.unique_name: must be 1 to 64 "
                "letters, digits, \"_\" or \"-\" (such as \"pam_account\")");
  assert_str_eq(REFUSED(limit("    unique_name = \"pam_account\";\n    buckets = ( );\n")),
                "test.conf:9: rate_limits.account.buckets: must hold at least one bucket");
  assert_str_eq(REFUSED(limit("    unique_name = \"pam_account\";\n"
                              "    buckets = ( { max = 1; interval_s = 60; },\n"
                              "                { max = 2; interval_s = 60; } );\n")),
                "test.conf:10: rate_limits.account.buckets: bucket 2 has the same "
                "interval_s (60) as bucket 1");
  assert_str_eq(REFUSED(limit("    unique_name = \"pam_account\";\n"
                              "    buckets = ( { max = 0; interval_s = 60; } );\n")),
                "test.conf:9: rate_limits.account.buckets.max: must be between 1 and 100000");
  assert_str_eq(REFUSED(limit("    buckets = ( { max = 1; interval_s = 60; } );\n")),
                "test.conf:7: rate_limits.account: unique_name is missing");
  assert_str_eq(REFUSED(minimal("", "rate_limits = {\n"
                                    "  account = { unique_name = \"pam\"; buckets = ( { max = 1; interval_s = 60; } ); };\n"
                                    "  client_ip = { unique_name = \"pam\";\n"
                                    "    buckets = ( { max = 1; interval_s = 60; } ); };\n};\n")),
                "test.conf:8: rate_limits.client_ip.unique_name: is the same as "
                "rate_limits.account.unique_name; the two rate limits need distinct names");
}

void test_rate_limits_refused(void**) {
  const auto one = [](const std::string& inner) {
    return minimal("", "rate_limits = { account = { " + inner + " }; };\n");
  };
  assert_refusals(one, {kName}, {
      {"unique_name = \"\"; buckets = ( { max = 1; interval_s = 60; } );",
       "rate_limits.account.unique_name: must be 1 to 64"},
      {"unique_name = \"" + std::string(65, 'n') + "\"; buckets = ( { max = 1; interval_s = 60; } );",
       "rate_limits.account.unique_name: must be 1 to 64"},
      {"unique_name = \"a.b\"; buckets = ( { max = 1; interval_s = 60; } );", "must be 1 to 64"},
      {"unique_name = \"pam_account\";", "rate_limits.account: buckets is missing"},
      {"unique_name = \"pam_account\"; buckets = { max = 1; interval_s = 60; };",
       "rate_limits.account.buckets: must be a list of groups"},
      {"unique_name = \"pam_account\"; buckets = [ 1 ];", "must be a list of groups"},
      {"unique_name = \"pam_account\"; buckets = ( 5 );", "bucket 1 must be a group: { max = 10; interval_s = 3600; }"},
      {"unique_name = \"pam_account\"; buckets = ( { max = 1; } );",
       "rate_limits.account.buckets: interval_s is missing"},
      {"unique_name = \"pam_account\"; buckets = ( { interval_s = 60; } );", "max is missing"},
      {"unique_name = \"pam_account\"; buckets = ( { max = 1; interval_s = 0; } );",
       "rate_limits.account.buckets.interval_s: must be between 1 and 86400"},
      {"unique_name = \"pam_account\"; buckets = ( { max = 1; interval_s = 86401; } );",
       "interval_s: must be between 1 and 86400"},
      {"unique_name = \"pam_account\"; buckets = ( { max = 100001; interval_s = 60; } );",
       "max: must be between 1 and 100000"},
      // Two buckets on one line: the second max is read as written there.
      {"unique_name = \"pam_account\"; buckets = ( { max = 5; interval_s = 60; }, "
       "{ max = 4294967301; interval_s = 120; } );",
       "max: must be between 1 and 100000"},
      {"unique_name = \"pam_account\"; buckets = ( { max = 1; interval_s = 60; burst = 2; } );",
       "rate_limits.account.buckets.burst: unknown setting"},
      {"unique_name = \"pam_account\"; buckets = ( { max = 1; interval_s = 60; } ); key = 1;",
       "rate_limits.account.key: unknown setting"},
  });
  assert_refusals(at_root, {kName}, {
      {"rate_limits = 5;\n", "rate_limits: must be a group"},
      {"rate_limits = { user = { }; };\n", "rate_limits.user: unknown setting"},
      {"rate_limits = { account = 1; };\n", "rate_limits.account: must be a group"},
  });
}

// ------------------------------------------------------- backend messaging

const std::string kMg = "MG0123456789abcdef0123456789abcdef";

// The credentials without service_sid, backend = "messaging" and a
// messaging group with the given body lines (line 5 onwards), then `extra`.
std::string messaging(const std::string& group, const std::string& extra = "") {
  return twilio(account_line() + token_line()) +  // lines 1 to 4
         "backend = \"messaging\";\n"              // line 5
         "messaging = {\n" + group + "};\n" + extra;  // line 6 onwards
}

void test_messaging_values(void**) {
  const Config d = ACCEPTED(messaging("  from = \"+15550100001\";\n"));
  assert_true(d.twilio.backend == ptv::Backend::Messaging);
  assert_string_equal(d.twilio.messaging.from.c_str(), "+15550100001");
  assert_string_equal(d.twilio.messaging.api_url.c_str(), "https://api.twilio.com");
  assert_int_equal(d.twilio.messaging.code_length, 6);
  assert_int_equal(d.twilio.messaging.code_ttl_s, 300);
  assert_string_equal(d.twilio.messaging.body.c_str(),
                      "Your login code for %h is %c");
  const Config c = ACCEPTED(messaging(
      "  messaging_service_sid = \"" + kMg + "\";\n"
      "  api_url = \"https://127.0.0.1:8443\";\n"
      "  code_length = 10;\n  code_ttl_s = 60;\n"
      "  body = \"100%% yours: %c\";\n",
      "channel = \"sms\";\n"));
  assert_string_equal(c.twilio.messaging.messaging_service_sid.c_str(), kMg.c_str());
  assert_true(c.twilio.messaging.from.empty());
  assert_int_equal(c.twilio.messaging.code_length, 10);
  assert_int_equal(c.twilio.messaging.code_ttl_s, 60);
  // Verify stays the default, and needs no messaging group.
  assert_true(ACCEPTED(minimal()).twilio.backend == ptv::Backend::Verify);
  ACCEPTED(minimal("", "backend = \"verify\";\n"));
}

void test_messaging_messages(void**) {
  const std::string from = "  from = \"+15550100001\";\n";
  const std::pair<std::string, const char*> cases[] = {
      {messaging(from + "  messaging_service_sid = \"" + kMg + "\";\n"),
       "test.conf:6: messaging: sets both from and messaging_service_sid; set "
       "one of the two"},
      {messaging("  code_length = 6;\n"),
       "test.conf:6: messaging: from or messaging_service_sid is missing (set "
       "one of the two)"},
      {messaging("  from = \"15550100001\";\n"),
       "test.conf:7: messaging.from: must be a Twilio number in E.164 form "
       "(\"+\", 7 to 15 digits, no leading zero), such as \"+15550100001\""},
      {messaging(from, "rate_limits = { };\n"),
       "test.conf:9: rate_limits: applies to backend = \"verify\" only; "
       "Programmable Messaging cannot honour it"},
      {messaging(from, "locale = \"fr\";\n"),
       "test.conf:9: locale: applies to backend = \"verify\" only; "
       "Programmable Messaging cannot honour it"},
      {messaging(from, "channel = \"call\";\n"),
       "test.conf:9: channel: must be \"sms\" with backend = \"messaging\""},
      {twilio(account_line() + token_line()) + "backend = \"messaging\";\n",
       "test.conf: backend = \"messaging\" but the messaging = { ... }; group "
       "is missing"},
      {twilio(account_line() + token_line()) + "messaging = { from = \"+15550100001\"; };\n",
       "test.conf:1: twilio: service_sid is missing"},
      {minimal("", "messaging = { from = \"+15550100001\"; };\n"),
       "test.conf:6: messaging: applies to backend = \"messaging\" only"},
      {minimal("", "backend = \"sms\";\n"),
       "test.conf:6: backend: must be \"verify\" or \"messaging\""},
      {messaging(from + "  code_length = 5;\n"), "test.conf:8: messaging.code_length"},
      {messaging(from + "  code_ttl_s = 901;\n"), "test.conf:8: messaging.code_ttl_s"},
      {messaging("  messaging_service_sid = \"MG0123\";\n"),
       "test.conf:7: messaging.messaging_service_sid"},
  };
  for (const auto& [text, says] : cases) {
    const std::string msg = REFUSED(text);
    if (msg.find(says) != 0) {
      print_error("got: %s\nwant: %s\n", msg.c_str(), says);
      fail();
    }
  }
}

void test_messaging_body(void**) {
  const std::string from = "  from = \"+15550100001\";\n";
  const auto body = [&from](const std::string& b, const std::string& more = "") {
    return messaging(from + more + "  body = \"" + b + "\";\n");
  };
  // The check assumes a host name of 64 characters (kMaxShortHostName).
  ACCEPTED(body(std::string(154, 'x') + "%c"));               // 154 + 6
  ACCEPTED(body("%h %c", "  code_length = 10;\n"));
  ACCEPTED(body(std::string(90, 'x') + "%h%c"));             // 90 + 64 + 6
  ACCEPTED(body(std::string(64, 'x') + "\u00e9%c"));          // é is GSM-7
  ACCEPTED(body(std::string(63, 'x') + "\u0436%c"));          // 64 + 6 = 70 UCS-2
  const std::pair<std::string, const char*> cases[] = {
      {body("no code here"),
       "test.conf:8: messaging.body: must hold %c, where the code goes"},
      {body("%c and %c"),
       "test.conf:8: messaging.body: holds %c more than once; the code goes in once"},
      {body("%c is 100%"),
       "test.conf:8: messaging.body: has a \"%\" that is not %c (the code), %h "
       "(the host's short name) or %% (a percent sign)"},
      {body("%c %d"), "test.conf:8: messaging.body: has a \"%\""},
      {body(std::string(91, 'x') + "%h%c"),
       "test.conf:8: messaging.body: is 161 characters with a 6-digit code and "
       "a host name of 64 characters; one SMS holds 160 GSM-7 characters"},
      {body(std::string(154, 'x') + "{%c"),  // { counts two septets
       "test.conf:8: messaging.body: is 162 characters with a 6-digit code; one "
       "SMS holds 160 GSM-7 characters"},
      {body(std::string(64, 'x') + "\u0436%c"),
       "test.conf:8: messaging.body: is 71 characters with a 6-digit code; one "
       "SMS holds 70 characters when any is outside GSM-7"},
  };
  for (const auto& [text, says] : cases) {
    const std::string msg = REFUSED(text);
    if (msg.find(says) != 0) {
      print_error("got: %s\nwant: %s\n", msg.c_str(), says);
      fail();
    }
  }
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config_every_key),
      cmocka_unit_test(test_minimal_config_defaults),
      cmocka_unit_test(test_api_key_instead_of_token),
      cmocka_unit_test(test_parse_error_names_file_and_line),
      cmocka_unit_test(test_duplicate_setting_refused),
      cmocka_unit_test(test_missing_twilio_group),
      cmocka_unit_test(test_twilio_not_a_group),
      cmocka_unit_test(test_missing_account_sid),
      cmocka_unit_test(test_missing_service_sid),
      cmocka_unit_test(test_missing_credential),
      cmocka_unit_test(test_api_key_sid_without_secret),
      cmocka_unit_test(test_api_key_secret_without_sid),
      cmocka_unit_test(test_is_sid),
      cmocka_unit_test(test_malformed_sids),
      cmocka_unit_test(test_placeholders_refused),
      cmocka_unit_test(test_unknown_top_level_key),
      cmocka_unit_test(test_unknown_twilio_key),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_max_attempts_range),
      cmocka_unit_test(test_ldap_full_group),
      cmocka_unit_test(test_ldap_defaults),
      cmocka_unit_test(test_ldap_bind_password_any_characters),
      cmocka_unit_test(test_ldap_refused),
      cmocka_unit_test(test_ldap_errors_never_contain_the_bind_password),
      cmocka_unit_test(test_lookup_command_settings),
      cmocka_unit_test(test_integer_overflow_refused),
      cmocka_unit_test(test_timeouts_range),
      cmocka_unit_test(test_connect_timeout_larger_than_total),
      cmocka_unit_test(test_api_url_rules),
      cmocka_unit_test(test_ca_file_rules),
      cmocka_unit_test(test_proxy_rules),
      cmocka_unit_test(test_enumerations),
      cmocka_unit_test(test_locale),
      cmocka_unit_test(test_phone_sources),
      cmocka_unit_test(test_gecos_field_range),
      cmocka_unit_test(test_users_entries),
      cmocka_unit_test(test_include_refused),
      cmocka_unit_test(test_embedded_nul_refused),
      cmocka_unit_test(test_secret_value_rules),
      cmocka_unit_test(test_errors_never_contain_secrets),
      cmocka_unit_test(test_load_valid_file),
      cmocka_unit_test(test_load_group_or_other_access_refused),
      cmocka_unit_test(test_load_wrong_owner_refused),
      cmocka_unit_test(test_load_symlink_refused),
      cmocka_unit_test(test_load_directory_refused),
      cmocka_unit_test(test_load_fifo_refused),
      cmocka_unit_test(test_load_missing_file_refused),
      cmocka_unit_test(test_load_size_limit),
      cmocka_unit_test(test_load_reports_parse_errors_with_path),
      cmocka_unit_test(test_rate_limits_values),
      cmocka_unit_test(test_rate_limits_messages),
      cmocka_unit_test(test_rate_limits_refused),
      cmocka_unit_test(test_send_limit_defaults),
      cmocka_unit_test(test_send_limit_values),
      cmocka_unit_test(test_send_limit_refused),
      cmocka_unit_test(test_services_unset_by_default),
      cmocka_unit_test(test_services_accepted),
      cmocka_unit_test(test_services_refused),
      cmocka_unit_test(test_policy_defaults_and_accepted),
      cmocka_unit_test(test_policy_refused),
      cmocka_unit_test(test_messaging_values),
      cmocka_unit_test(test_messaging_messages),
      cmocka_unit_test(test_messaging_body),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
