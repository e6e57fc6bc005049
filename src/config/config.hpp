// The configuration file (libconfig syntax): safe opening, parsing and
// validation. Every problem is an error value that names the file, the line
// where libconfig knows it, and the setting.
#pragma once

#include <sys/types.h>

#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/secret.hpp"

namespace ptv {

enum class FailMode { Secure, Safe };
enum class NoPhone { Deny, Skip };
enum class PhoneSource { Users, Gecos, Ldap, Command };

inline constexpr const char* kDefaultApiUrl = "https://verify.twilio.com";
inline constexpr const char* kDefaultStateDir = "/var/lib/pam_twilio_verify";
inline constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

// The "ldap" phone source: one search per login for the user's entry.
struct LdapSettings {
  std::string uri;  // one or more ldap://, ldaps:// or ldapi:// URIs
  bool starttls = true;  // for ldap:// URIs: upgrade with StartTLS first
  std::string ca_file;   // empty: the system bundle (kSystemCaBundle)
  std::string base;
  std::string filter = "(uid=%u)";
  std::string attribute = "mobile";
  std::string bind_dn;  // empty: anonymous
  Secret bind_password;
  long timeout_ms = 3000;  // bounds the whole lookup
  [[nodiscard]] bool uses_tls() const {
    return uri.starts_with("ldaps://") || (uri.starts_with("ldap://") && starttls);
  }
};

// The "command" phone source, after sshd's AuthorizedKeysCommand.
struct CommandSettings {
  std::string path;  // absolute; run as: path username
  std::string user = "nobody";
  long timeout_ms = 2000;
};

struct Config {
  std::string account_sid;
  Secret auth_token;
  std::string api_key_sid;
  Secret api_key_secret;
  std::string service_sid;
  std::string api_url = kDefaultApiUrl;
  std::string ca_file;  // empty: the system trust store
  std::string proxy;    // empty: no proxy (the environment is never used)
  long connect_timeout_ms = 3000;
  long timeout_ms = 10000;

  std::string channel = "sms";
  FailMode failmode = FailMode::Secure;
  NoPhone no_phone = NoPhone::Deny;
  int max_attempts = 3;
  // GECOS is opt-in: users can edit it with chfn unless CHFN_RESTRICT
  // forbids it.
  std::vector<PhoneSource> phone_sources{PhoneSource::Users};
  int gecos_field = 3;
  std::vector<std::pair<std::string, std::string>> users;
  LdapSettings ldap;
  bool has_ldap = false;  // an ldap = { ... } group was given
  CommandSettings command;

  // The PAM services (PAM_SERVICE) that ask for the code. Unset (empty,
  // services_set false): every service. Set: a non-empty list of distinct
  // names; any other service is left to the rest of the stack (PAM_IGNORE).
  std::vector<std::string> services;
  bool services_set = false;

  // Per-user limit on verification starts (each may send an SMS), kept
  // across logins in state_dir: at most send_limit_count starts within any
  // send_limit_window_s seconds.
  int send_limit_count = 5;
  long send_limit_window_s = 3600;
  std::string state_dir = kDefaultStateDir;

  // The Basic auth user: the API key SID when one is set, else the account.
  [[nodiscard]] const std::string& auth_user() const {
    return api_key_sid.empty() ? account_sid : api_key_sid;
  }
  [[nodiscard]] const Secret& auth_secret() const {
    return api_key_sid.empty() ? auth_token : api_key_secret;
  }
};

struct ConfigError {
  std::string message;  // complete, safe to log; never holds a secret
};

// Limits the loader enforces on the file itself.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;
// The longest name the services setting accepts.
inline constexpr std::size_t kMaxServiceNameLength = 64;

// Opens the file safely (O_NOFOLLOW, regular file, owned by root, no group
// or other permission bits), reads and parses it.
std::expected<Config, ConfigError> load_config_file(const std::string& path);

// Parses and validates configuration text; `name` labels error messages.
std::expected<Config, ConfigError> parse_config_text(std::string_view text,
                                                     std::string_view name);

// True for a SID of the given two-letter prefix and 32 hex digits.
bool is_sid(std::string_view value, std::string_view prefix);

}  // namespace ptv
