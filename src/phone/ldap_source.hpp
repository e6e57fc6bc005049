// The "ldap" phone source: connects to the directory (TLS verified against
// ldap.ca_file), binds (anonymously or as ldap.bind_dn), searches ldap.base
// for the one entry that ldap.filter selects and returns the values of
// ldap.attribute. Every step is bounded by ldap.timeout_ms in total.
#pragma once

#include <string>

#include "config/config.hpp"
#include "phone/phone.hpp"

namespace ptv {

// At most this many values of the attribute are considered.
inline constexpr std::size_t kMaxLdapValues = 16;

SourceAnswer query_ldap(const LdapSettings& settings, const std::string& user);

}  // namespace ptv
