#include "log.hpp"

#include <security/pam_ext.h>

namespace ptv {

void PamLogger::log(int priority, std::string_view message) {
  std::string line(message);
  pam_syslog(pamh_, priority, "%s", line.c_str());
}

std::string log_safe(std::string_view value, std::size_t max_len) {
  std::string out;
  const std::size_t n = value.size() < max_len ? value.size() : max_len;
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (value.size() > max_len) out += "...";
  return out;
}

}  // namespace ptv
