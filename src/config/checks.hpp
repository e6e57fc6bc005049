// The checks of single values that the settings table names: what a SID,
// a credential, a URL, a path, a directory URI or a service name must look
// like. Each returns the error in the words the administrator reads.
#pragma once

#include <string>
#include <string_view>

#include "config/reader.hpp"
#include "config/table.hpp"

namespace ptv {

// Twilio's credentials are printable ASCII without spaces; a password
// (the LDAP bind password) may hold any character.
enum class SecretKind { TwilioCredential, Password };

std::expected<std::string, ConfigError> read_sid(const Reader& r,
                                                 const config_setting_t* s,
                                                 std::string_view prefix);
std::expected<Secret, ConfigError> read_secret(const Reader& r,
                                               const config_setting_t* s,
                                               SecretKind kind);

namespace table {

template <auto Member, char P0, char P1>
ConfigResult sid(const Reader& r, const config_setting_t* s,
                 ClassOf<Member>& part) {
  static constexpr char kPrefix[] = {P0, P1, '\0'};
  auto v = read_sid(r, s, kPrefix);
  if (!v) return std::unexpected(v.error());
  part.*Member = std::move(*v);
  return {};
}

template <auto Member, SecretKind Kind = SecretKind::TwilioCredential>
ConfigResult secret(const Reader& r, const config_setting_t* s,
                    ClassOf<Member>& part) {
  auto v = read_secret(r, s, Kind);
  if (!v) return std::unexpected(v.error());
  part.*Member = std::move(*v);
  return {};
}

}  // namespace table

// String checks (table::Check): they refuse, and some normalise.
ConfigResult https_url(const Reader&, const config_setting_t*, std::string&);
ConfigResult proxy_url(const Reader&, const config_setting_t*, std::string&);
ConfigResult readable_file(const Reader&, const config_setting_t*, std::string&);
ConfigResult not_empty(const Reader&, const config_setting_t*, std::string&);
ConfigResult state_directory(const Reader&, const config_setting_t*, std::string&);
ConfigResult command_path(const Reader&, const config_setting_t*, std::string&);
ConfigResult command_user(const Reader&, const config_setting_t*, std::string&);
ConfigResult ldap_uris(const Reader&, const config_setting_t*, std::string&);
ConfigResult ldap_filter(const Reader&, const config_setting_t*, std::string&);
ConfigResult ldap_attribute(const Reader&, const config_setting_t*, std::string&);
ConfigResult bind_dn(const Reader&, const config_setting_t*, std::string&);
ConfigResult language_tag(const Reader&, const config_setting_t*, std::string&);

// One name of the services list: a PAM service name (PAM_SERVICE, the file
// name in /etc/pam.d).
ConfigResult service_name(const Reader& r, const config_setting_t* e, int index,
                          std::string_view name);
// An entry of exempt_groups: a name NSS could know (printable ASCII, no
// spaces, ':' or ',').
ConfigResult group_name(const Reader& r, const config_setting_t* e, int index,
                        std::string_view name);
// An entry of exempt_networks: an IPv4 or IPv6 network (core/network.hpp).
ConfigResult network_text(const Reader& r, const config_setting_t* e, int index,
                          std::string_view text);

}  // namespace ptv
