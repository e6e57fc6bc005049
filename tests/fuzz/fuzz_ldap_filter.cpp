// The LDAP filter and the lookup command's output on arbitrary input: the
// user name can never change the structure of the configured filter, the
// escaping is reversible, and the command's first line is the only value.
//
// Input: a filter template, a NUL byte, then the user name (also used as
// command output). Without a NUL the whole input is the user name and
// "(uid=%u)" the template.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "phone/ldap_filter.hpp"
#include "phone/command_source.hpp"

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Undoes ldap_escape_filter_value; fails on anything it would not produce.
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      FUZZ_CHECK(s[i] != '*' && s[i] != '(' && s[i] != ')' && s[i] != '\0');
      out.push_back(s[i]);
      continue;
    }
    FUZZ_CHECK(i + 2 < s.size());
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    FUZZ_CHECK(hi >= 0 && lo >= 0);
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The filter's structure: its parentheses and '%'-free operators, with
// every escaped value removed.
std::string structure(std::string_view filter) {
  std::string out;
  for (std::size_t i = 0; i < filter.size(); ++i) {
    if (filter[i] == '\\') {
      i += 2;
      continue;
    }
    if (filter[i] == '(' || filter[i] == ')' || filter[i] == '*') out.push_back(filter[i]);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view tmpl = nul == std::string_view::npos ? "(uid=%u)" : input.substr(0, nul);
  const std::string_view user = nul == std::string_view::npos ? input : input.substr(nul + 1);

  const std::string escaped = ptv::ldap_escape_filter_value(user);
  FUZZ_CHECK(unescape(escaped) == user);

  (void)ptv::is_ldap_attribute_name(tmpl);
  if (ptv::check_ldap_filter_template(tmpl).empty()) {
    // The user name adds values, never structure: the filter built for it
    // has the structure of the filter built for an empty name.
    const std::string filter = ptv::build_ldap_filter(tmpl, user);
    FUZZ_CHECK(structure(filter) == structure(ptv::build_ldap_filter(tmpl, "")));
    FUZZ_CHECK(filter.find('\0') == std::string::npos);
  }

  const ptv::SourceValues answer = ptv::interpret_command_output(user);
  if (answer && !answer->empty()) {
    FUZZ_CHECK(answer->size() == 1);
    FUZZ_CHECK(!(*answer)[0].empty() && (*answer)[0].size() <= 65);
    FUZZ_CHECK((*answer)[0].find('\n') == std::string::npos);
  }
  return 0;
}
