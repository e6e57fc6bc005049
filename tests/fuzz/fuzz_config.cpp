// parse_config_text on arbitrary bytes. Whatever it accepts must be a
// configuration the rest of the module can rely on. And the masking of
// string literals (src/config_strings.*) must be invisible: libconfig on
// the masked text, string values taken from our table, gives exactly what
// libconfig alone gives on the text (every setting, type, line and value,
// or the same error at the same line), and every string the loader
// accepted is libconfig's own value for it.
#include <libconfig.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../unit/config_tree.hpp"
#include "config/config.hpp"
#include "phone/ldap_filter.hpp"
#include "fuzz_common.hpp"
#include "phone/phone.hpp"

// libconfig 1.5 (Debian 12) leaks the buffer of a string literal that
// stands where a setting name is expected (e.g. the whole file `"x"` or
// `""`): its scanner allocates the string and the parser never frees it on
// that syntax error. That leak is in the library, not in the
// module, and is suppressed here so that the target keeps fuzzing; it is
// reported separately.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

namespace {

// A string setting the loader keeps as written is libconfig's value.
void check_string(const config_t* alone, const char* path,
                  std::string_view loaded) {
  const char* v = nullptr;
  if (config_lookup_string(alone, path, &v) == CONFIG_TRUE)
    FUZZ_CHECK(loaded == v);
}

// The values the loader accepted are those libconfig alone reads from the
// same text.
void check_values_as_libconfig(std::string_view text, const ptv::Config& c) {
  const std::string copy(text);
  config_t alone;
  config_init(&alone);
  FUZZ_CHECK(config_read_string(&alone, copy.c_str()) == CONFIG_TRUE);
  check_string(&alone, "twilio.account_sid", c.twilio.account_sid);
  check_string(&alone, "twilio.auth_token", c.twilio.auth_token.view());
  check_string(&alone, "twilio.api_key_sid", c.twilio.api_key_sid);
  check_string(&alone, "twilio.api_key_secret", c.twilio.api_key_secret.view());
  check_string(&alone, "twilio.service_sid", c.twilio.service_sid);
  check_string(&alone, "twilio.ca_file", c.twilio.ca_file);
  check_string(&alone, "twilio.proxy", c.twilio.proxy);
  check_string(&alone, "channel", c.policy.channel);
  check_string(&alone, "ldap.ca_file", c.phone.ldap.ca_file);
  check_string(&alone, "ldap.base", c.phone.ldap.base);
  check_string(&alone, "ldap.filter", c.phone.ldap.filter);
  check_string(&alone, "ldap.attribute", c.phone.ldap.attribute);
  check_string(&alone, "ldap.bind_dn", c.phone.ldap.bind_dn);
  check_string(&alone, "ldap.bind_password", c.phone.ldap.bind_password.view());
  check_string(&alone, "lookup_command", c.phone.command.path);
  check_string(&alone, "lookup_command_user", c.phone.command.user);
  if (const config_setting_t* users = config_lookup(&alone, "users")) {
    FUZZ_CHECK(config_setting_length(users) == static_cast<int>(c.phone.users.size()));
    for (std::size_t i = 0; i < c.phone.users.size(); ++i) {
      const config_setting_t* pair =
          config_setting_get_elem(users, static_cast<unsigned>(i));
      const char* name = config_setting_get_string_elem(pair, 0);
      FUZZ_CHECK(name != nullptr && c.phone.users[i].first == name);
    }
  }
  if (const config_setting_t* services = config_lookup(&alone, "services")) {
    FUZZ_CHECK(c.policy.services_set);
    FUZZ_CHECK(config_setting_length(services) ==
               static_cast<int>(c.policy.services.size()));
    for (std::size_t i = 0; i < c.policy.services.size(); ++i) {
      const char* name = config_setting_get_string_elem(
          services, static_cast<int>(i));
      FUZZ_CHECK(name != nullptr && c.policy.services[i] == name);
    }
  }
  config_destroy(&alone);
}

// Refused before any parsing: a NUL byte (libconfig would stop there), an
// @include line (libconfig alone would open the file it names).
bool refused_before_parsing(const std::string& message) {
  return message.find(": the file contains a NUL byte") != std::string::npos ||
         message.find(": @include is not supported") != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > ptv::kMaxConfigBytes) return -1;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ptv::parse_config_text(text, "fuzz.conf");
  if (parsed || !refused_before_parsing(parsed.error().message))
    FUZZ_CHECK(ptv_test::describe_masked(text) ==
               ptv_test::describe_unmasked(text));
  if (!parsed) {
    const std::string& m = parsed.error().message;
    FUZZ_CHECK(!m.empty());
    FUZZ_CHECK(std::string_view(m).starts_with("fuzz.conf"));
    return 0;
  }
  const ptv::Config& c = *parsed;
  check_values_as_libconfig(text, c);
  FUZZ_CHECK(c.policy.services_set == !c.policy.services.empty());
  for (std::size_t i = 0; i < c.policy.services.size(); ++i) {
    const std::string& name = c.policy.services[i];
    FUZZ_CHECK(!name.empty() && name.size() <= ptv::kMaxServiceNameLength);
    for (char ch : name)
      FUZZ_CHECK(static_cast<unsigned char>(ch) > 0x20 &&
                 static_cast<unsigned char>(ch) < 0x7f && ch != '/');
    for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(name != c.policy.services[j]);
  }
  FUZZ_CHECK(ptv::is_sid(c.twilio.account_sid, "AC"));
  FUZZ_CHECK(ptv::is_sid(c.twilio.service_sid, "VA"));
  FUZZ_CHECK(c.twilio.api_key_sid.empty() || ptv::is_sid(c.twilio.api_key_sid, "SK"));
  FUZZ_CHECK(c.twilio.api_key_sid.empty() == c.twilio.api_key_secret.empty());
  FUZZ_CHECK(!c.twilio.auth_secret().empty());
  for (char ch : c.twilio.auth_secret().view())
    FUZZ_CHECK(static_cast<unsigned char>(ch) > 0x20 &&
               static_cast<unsigned char>(ch) < 0x7f);
  FUZZ_CHECK(c.twilio.api_url.starts_with("https://") && c.twilio.api_url.size() > 8);
  FUZZ_CHECK(c.twilio.api_url.find_first_of("?#@\\ ") == std::string::npos);
  FUZZ_CHECK(c.twilio.ca_file.empty() || c.twilio.ca_file.front() == '/');
  FUZZ_CHECK(c.twilio.proxy.empty() || c.twilio.proxy.starts_with("http://") ||
             c.twilio.proxy.starts_with("https://"));
  FUZZ_CHECK(c.twilio.connect_timeout_ms >= 100 && c.twilio.connect_timeout_ms <= 60000);
  FUZZ_CHECK(c.twilio.timeout_ms >= 500 && c.twilio.timeout_ms <= 60000);
  FUZZ_CHECK(c.twilio.connect_timeout_ms <= c.twilio.timeout_ms);
  FUZZ_CHECK(c.policy.channel == "sms" || c.policy.channel == "call" ||
             c.policy.channel == "whatsapp");
  FUZZ_CHECK(c.policy.max_attempts >= 1 && c.policy.max_attempts <= 5);
  FUZZ_CHECK(c.phone.gecos_field >= 1 && c.phone.gecos_field <= 5);
  FUZZ_CHECK(!c.phone.sources.empty() && c.phone.sources.size() <= 4);
  for (std::size_t i = 0; i < c.phone.sources.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      FUZZ_CHECK(c.phone.sources[i] != c.phone.sources[j]);
  for (ptv::PhoneSource source : c.phone.sources) {
    if (source == ptv::PhoneSource::Ldap) FUZZ_CHECK(c.phone.has_ldap);
    if (source == ptv::PhoneSource::Command) FUZZ_CHECK(!c.phone.command.path.empty());
  }
  if (c.phone.has_ldap) {
    const ptv::LdapSettings& l = c.phone.ldap;
    FUZZ_CHECK(l.uri.starts_with("ldap://") || l.uri.starts_with("ldaps://") ||
               l.uri.starts_with("ldapi://"));
    FUZZ_CHECK(l.uri.back() != ' ');
    for (char ch : l.uri)
      FUZZ_CHECK(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f);
    // StartTLS exactly when the URIs are ldap:// (unless turned off).
    FUZZ_CHECK(!l.starttls || l.uri.starts_with("ldap://"));
    FUZZ_CHECK(!l.base.empty());
    FUZZ_CHECK(ptv::check_ldap_filter_template(l.filter).empty());
    FUZZ_CHECK(ptv::is_ldap_attribute_name(l.attribute));
    FUZZ_CHECK(l.bind_dn.empty() == l.bind_password.empty());
    FUZZ_CHECK(l.timeout_ms >= 100 && l.timeout_ms <= 60000);
    FUZZ_CHECK(l.ca_file.empty() || l.ca_file.front() == '/');
  }
  if (!c.phone.command.path.empty()) {
    FUZZ_CHECK(c.phone.command.path.front() == '/');
    for (char ch : c.phone.command.path)
      FUZZ_CHECK(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f);
  }
  FUZZ_CHECK(!c.phone.command.user.empty() && c.phone.command.user != "root");
  FUZZ_CHECK(c.phone.command.timeout_ms >= 100 && c.phone.command.timeout_ms <= 60000);
  for (std::size_t i = 0; i < c.phone.users.size(); ++i) {
    FUZZ_CHECK(!c.phone.users[i].first.empty());
    FUZZ_CHECK(ptv::is_e164(c.phone.users[i].second));
    for (std::size_t j = 0; j < i; ++j)
      FUZZ_CHECK(c.phone.users[i].first != c.phone.users[j].first);
  }
  return 0;
}
