// The phone part of the configuration: the ordered sources of a user's
// number and the settings of each (the users list, the GECOS field, the
// ldap group, the lookup command).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "util/secret.hpp"

namespace ptv {

enum class PhoneSource { Users, Gecos, Ldap, Command };

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

struct PhoneSettings {
  // GECOS is opt-in: users can edit it with chfn unless CHFN_RESTRICT
  // forbids it.
  std::vector<PhoneSource> sources{PhoneSource::Users};
  int gecos_field = 3;
  std::vector<std::pair<std::string, std::string>> users;
  LdapSettings ldap;
  bool has_ldap = false;  // an ldap = { ... } group was given
  CommandSettings command;
};

}  // namespace ptv
