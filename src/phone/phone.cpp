#include "phone/phone.hpp"

#include <algorithm>


namespace ptv {

namespace {
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

bool is_e164(std::string_view number) {
  if (number.size() < 8 || number.size() > 16) return false;
  if (number[0] != '+' || number[1] == '0') return false;
  for (std::size_t i = 1; i < number.size(); ++i)
    if (!is_digit(number[i])) return false;
  return true;
}

std::string normalise_phone(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')')
      continue;
    out.push_back(c);
  }
  return out;
}

std::string mask_phone(std::string_view e164) {
  if (!is_e164(e164)) return "(invalid)";
  // The first digit and the last four (two for numbers shorter than ten
  // digits, so that most of a short number stays hidden).
  const std::size_t digits = e164.size() - 1;
  const std::size_t tail = digits >= 10 ? 4 : 2;
  std::string out = "+";
  out.push_back(e164[1]);
  out.append(digits - 1 - tail, '*');
  out.append(e164.substr(e164.size() - tail));
  return out;
}

std::string gecos_field(std::string_view gecos, int field) {
  if (field < 1) return {};
  int current = 1;
  std::size_t start = 0;
  while (current < field) {
    const std::size_t comma = gecos.find(',', start);
    if (comma == std::string_view::npos) return {};
    start = comma + 1;
    ++current;
  }
  const std::size_t end = gecos.find(',', start);
  std::string_view value = gecos.substr(
      start, end == std::string_view::npos ? std::string_view::npos
                                           : end - start);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  return std::string(value);
}

}  // namespace ptv
