#include "util/log.hpp"

namespace ptv {

namespace {

std::string escaped(std::string_view value, std::size_t max_len,
                    bool token) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = value.size() < max_len ? value.size() : max_len;
  out.reserve(n + 4);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f || (token && (c == ' ' || c == '='))) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (value.size() > max_len) out += "\\...";
  return out;
}

}  // namespace

std::string log_safe(std::string_view value, std::size_t max_len) {
  return escaped(value, max_len, false);
}

std::string log_token(std::string_view value, std::size_t max_len) {
  return escaped(value, max_len, true);
}

}  // namespace ptv
