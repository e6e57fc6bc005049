// Building the LDAP search filter for a user: RFC 4515 escaping of the user
// name and substitution into the configured filter template. Pure string
// work, so that unit tests and the fuzzer need no directory.
#pragma once

#include <string>
#include <string_view>

namespace ptv {

// RFC 4515 section 3: '*', '(', ')', '\' and NUL become "\2a", "\28",
// "\29", "\5c" and "\00". Every other byte is kept as it is: the filter is
// sent as an LDAP string, and escaping more is allowed but not needed.
std::string ldap_escape_filter_value(std::string_view value);

// Checks a filter template: it must be one parenthesised filter with
// balanced parentheses, hold "%u" at least once, and use '%' only in "%u"
// and "%%". Returns an empty string when it is usable, else the problem.
std::string check_ldap_filter_template(std::string_view tmpl);

// Replaces every "%u" with the escaped user name and "%%" with "%".
std::string build_ldap_filter(std::string_view tmpl, std::string_view user);

// An attribute description: a name (letter, then letters, digits and '-')
// or a numeric OID, optionally followed by ";option"s.
bool is_ldap_attribute_name(std::string_view name);

}  // namespace ptv
