// Twilio's resource identifiers: a two-letter prefix (AC an account, VA a
// Verify service, VE a verification, SK an API key) and 32 hex digits.
#pragma once

#include <string_view>

namespace ptv {

inline bool is_sid(std::string_view value, std::string_view prefix) {
  if (value.size() != prefix.size() + 32 || !value.starts_with(prefix))
    return false;
  for (char c : value.substr(prefix.size())) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

}  // namespace ptv
