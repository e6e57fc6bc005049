#include "phone/ldap_filter.hpp"

namespace ptv {

namespace {
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
}  // namespace

std::string ldap_escape_filter_value(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0') {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('\\');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string check_ldap_filter_template(std::string_view tmpl) {
  if (tmpl.size() < 2 || tmpl.front() != '(' || tmpl.back() != ')')
    return "must be one filter in parentheses, such as \"(uid=%u)\"";
  if (tmpl.size() > 1024) return "must not be longer than 1024 characters";
  int depth = 0;
  bool has_user = false;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return "must not contain control characters";
    if (c == '\\') {
      // RFC 4515: a backslash starts an escape of exactly two hex digits
      // (so no escape can swallow the start of the user name).
      if (i + 2 >= tmpl.size() || !is_hex(tmpl[i + 1]) || !is_hex(tmpl[i + 2]))
        return "has a '\\' that is not followed by two hexadecimal digits";
      i += 2;
      continue;
    }
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) return "has unbalanced parentheses";
    if (depth == 0 && i + 1 < tmpl.size() && tmpl[i + 1] == ')')
      return "has unbalanced parentheses";
    if (depth == 0 && i + 1 < tmpl.size())
      return "must be one filter: combine several with (&...) or (|...)";
    if (c == '%') {
      if (i + 1 < tmpl.size() && tmpl[i + 1] == 'u') {
        has_user = true;
      } else if (i + 1 >= tmpl.size() || tmpl[i + 1] != '%') {
        return "uses '%' other than in \"%u\" (the user name) and \"%%\"";
      }
      ++i;
    }
  }
  if (depth != 0) return "has unbalanced parentheses";
  if (!has_user) return "must contain %u, which stands for the user name";
  return {};
}

std::string build_ldap_filter(std::string_view tmpl, std::string_view user) {
  const std::string escaped = ldap_escape_filter_value(user);
  std::string out;
  out.reserve(tmpl.size() + escaped.size());
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '%' && i + 1 < tmpl.size()) {
      if (tmpl[i + 1] == 'u') {
        out += escaped;
        ++i;
        continue;
      }
      if (tmpl[i + 1] == '%') {
        out.push_back('%');
        ++i;
        continue;
      }
    }
    out.push_back(tmpl[i]);
  }
  return out;
}

bool is_ldap_attribute_name(std::string_view name) {
  const std::size_t semi = name.find(';');
  const std::string_view base = name.substr(0, semi);
  if (base.empty() || base.size() > 128) return false;
  if (is_alpha(base.front())) {
    for (char c : base)
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
  } else {
    // numericoid: number *( "." number )
    bool need_digit = true;
    for (char c : base) {
      if (is_digit(c)) {
        need_digit = false;
      } else if (c == '.' && !need_digit) {
        need_digit = true;
      } else {
        return false;
      }
    }
    if (need_digit) return false;
  }
  if (semi == std::string_view::npos) return true;
  // Options: ";" then letters, digits and '-'.
  std::string_view rest = name.substr(semi);
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the ';'
    const std::size_t next = rest.find(';');
    const std::string_view option = rest.substr(0, next);
    if (option.empty()) return false;
    for (char c : option)
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next);
  }
  return true;
}

}  // namespace ptv
