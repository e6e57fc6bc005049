// Phone number handling on arbitrary input: normalise_phone, is_e164,
// mask_phone, gecos_field and lookup_phone.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "fuzz_common.hpp"
#include "phone/gecos_source.hpp"
#include "phone/lookup.hpp"
#include "phone/phone.hpp"
#include "phone/users_source.hpp"

namespace {

bool separator(char c) {
  return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')';
}

bool reference_e164(std::string_view n) {
  return n.size() >= 8 && n.size() <= 16 && n[0] == '+' && n[1] != '0' &&
         ptv_fuzz::all_digits(n.substr(1));
}

std::size_t count_digits(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += c >= '0' && c <= '9';
  return n;
}

void check_number(std::string_view n) {
  const bool valid = ptv::is_e164(n);
  FUZZ_CHECK(valid == reference_e164(n));
  const std::string masked = ptv::mask_phone(n);
  if (!valid) {
    FUZZ_CHECK(masked == "(invalid)");
    return;
  }
  FUZZ_CHECK(n.size() >= 8 && n.size() <= 16 && n[0] == '+');
  FUZZ_CHECK(ptv_fuzz::all_digits(n.substr(1)));
  // Same shape, never the number itself, nor its digits without the '+'.
  FUZZ_CHECK(masked.size() == n.size());
  FUZZ_CHECK(masked != n);
  FUZZ_CHECK(masked.find(n.substr(1)) == std::string::npos);
  FUZZ_CHECK(masked[0] == '+' && masked[1] == n[1]);
  // At most the first digit and the last four are shown; at least half of
  // the digits are hidden.
  const std::size_t shown = count_digits(masked);
  FUZZ_CHECK(shown <= 5);
  FUZZ_CHECK(shown * 2 <= n.size() - 1);
  for (std::size_t i = 0; i < masked.size(); ++i)
    FUZZ_CHECK(masked[i] == '*' || masked[i] == n[i]);
}

void check_normalised(std::string_view raw, const std::string& norm) {
  FUZZ_CHECK(norm.size() <= raw.size());
  std::size_t j = 0;  // norm is raw without its separators, in order
  for (char c : raw) {
    if (separator(c)) continue;
    FUZZ_CHECK(j < norm.size() && norm[j] == c);
    ++j;
  }
  FUZZ_CHECK(j == norm.size());
  FUZZ_CHECK(ptv::normalise_phone(norm) == norm);
}

void check_gecos(std::string_view gecos, int field) {
  const std::string v = ptv::gecos_field(gecos, field);
  if (field < 1) FUZZ_CHECK(v.empty());
  FUZZ_CHECK(v.find(',') == std::string::npos);
  if (!v.empty()) {
    FUZZ_CHECK(v.front() != ' ' && v.front() != '\t');
    FUZZ_CHECK(v.back() != ' ' && v.back() != '\t');
    FUZZ_CHECK(gecos.find(v) != std::string_view::npos);
  }
  // Field 1 is everything up to the first comma.
  if (field == 1) {
    const std::string_view first = gecos.substr(0, gecos.find(','));
    FUZZ_CHECK(first.find(v) != std::string_view::npos);
  }
}

void check_lookup(std::string_view raw, int field, unsigned mode) {
  ptv::Config config;
  config.phone.gecos_field = field < 1 ? 1 : field;
  const std::string user = "alice";
  if (mode & 1) config.phone.users = {{"bob", "+15550000000"}, {user, std::string(raw)}};
  config.phone.sources = (mode & 2)
      ? std::vector<ptv::PhoneSource>{ptv::PhoneSource::Gecos, ptv::PhoneSource::Users}
      : std::vector<ptv::PhoneSource>{ptv::PhoneSource::Users, ptv::PhoneSource::Gecos};
  // The real users and gecos sources; mode bit 4: the account has no GECOS
  // string at all.
  ptv::UsersSource users(config.phone.users);
  ptv::GecosSource gecos((mode & 4) ? std::string() : std::string(raw),
                         config.phone.gecos_field);
  std::vector<ptv::NumberSource*> sources;
  for (ptv::PhoneSource s : config.phone.sources)
    sources.push_back(s == ptv::PhoneSource::Users ? static_cast<ptv::NumberSource*>(&users)
                                                   : &gecos);
  const ptv::PhoneLookup r = ptv::lookup_phone(sources, user);
  if (r && r->has_value()) {
    FUZZ_CHECK(ptv::is_e164((*r)->number));
    FUZZ_CHECK((*r)->source == "users" || (*r)->source == "gecos");
  } else if (!r) {
    // The local sources cannot fail: only an entry that is no number.
    FUZZ_CHECK(r.error().kind == ptv::PhoneErrorKind::Invalid);
    FUZZ_CHECK(!r.error().detail.empty());
    if (count_digits(raw) >= 4)
      FUZZ_CHECK(r.error().detail.find(raw) == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return -1;
  const int field = static_cast<int>(data[0] % 8) - 1;  // -1 .. 6
  const unsigned mode = data[1];
  const std::string_view raw(reinterpret_cast<const char*>(data + 2), size - 2);

  const std::string norm = ptv::normalise_phone(raw);
  check_normalised(raw, norm);
  check_number(raw);
  check_number(norm);

  // A candidate that is often valid: '+' and the bytes folded onto digits.
  std::string candidate = "+";
  for (std::size_t i = 0; i < raw.size() && i < 17; ++i)
    candidate.push_back(static_cast<char>('0' + static_cast<unsigned char>(raw[i]) % 10));
  check_number(candidate);

  check_gecos(raw, field);
  check_lookup(raw, field, mode);
  return 0;
}
