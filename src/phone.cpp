#include "phone.hpp"

#include <pwd.h>
#include <unistd.h>

#include <vector>

#include "config.hpp"

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

std::optional<std::string> read_gecos_from_passwd(const std::string& user) {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  if (size <= 0) size = 16384;
  std::vector<char> buffer(static_cast<std::size_t>(size));
  struct passwd pw {};
  struct passwd* result = nullptr;
  for (;;) {
    const int rc =
        getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &result);
    if (rc == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc != 0 || result == nullptr) return std::nullopt;
    return std::string(pw.pw_gecos != nullptr ? pw.pw_gecos : "");
  }
}

PhoneLookup lookup_phone(const Config& config, const std::string& user,
                         const GecosReader& read_gecos) {
  for (PhoneSource source : config.phone_sources) {
    std::string raw;
    std::string name;
    switch (source) {
      case PhoneSource::Users: {
        name = "users";
        for (const auto& [u, number] : config.users)
          if (u == user) raw = number;
        break;
      }
      case PhoneSource::Gecos: {
        name = "gecos";
        if (auto gecos = read_gecos(user))
          raw = gecos_field(*gecos, config.gecos_field);
        break;
      }
    }
    if (raw.empty()) continue;
    std::string number = normalise_phone(raw);
    if (!is_e164(number)) {
      return {PhoneLookup::Kind::Invalid, {}, name,
              "the " + name + " entry (" + std::to_string(raw.size()) +
                  " characters) is not an E.164 number: \"+\", 7 to 15 "
                  "digits, no leading zero"};
    }
    return {PhoneLookup::Kind::Found, std::move(number), name, {}};
  }
  return {};
}

}  // namespace ptv
