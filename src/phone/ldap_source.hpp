// The "ldap" phone source: connects to the directory (TLS verified against
// ldap.ca_file), binds (anonymously or as ldap.bind_dn), searches ldap.base
// for the one entry that ldap.filter selects and returns the values of
// ldap.attribute. Every step is bounded by ldap.timeout_ms in total.
#pragma once

#include <string>

#include "phone/settings.hpp"
#include "phone/source.hpp"
#include "util/log.hpp"

namespace ptv {

// At most this many values of the attribute are considered.
inline constexpr std::size_t kMaxLdapValues = 16;

SourceValues query_ldap(const LdapSettings& settings, const std::string& user);

// What twilio-verify-admin check asks of the directory, with the same
// connection, TLS, bind and bounds as a lookup: it connects, binds, and
// reads the entry ldap.base names. No values on success.
SourceValues probe_ldap(const LdapSettings& settings);

// The source; a directory read without TLS (ldap:// with starttls = false)
// is warned about at each lookup.
class LdapSource final : public NumberSource {
 public:
  LdapSource(const LdapSettings& settings, Logger& log)
      : settings_(settings), log_(log) {}
  [[nodiscard]] std::string_view name() const override { return "ldap"; }
  SourceValues values(const std::string& account) override;

 private:
  const LdapSettings& settings_;
  Logger& log_;
};

}  // namespace ptv
