#include "phone/lookup.hpp"

#include <algorithm>

#include "phone/phone.hpp"

namespace ptv {

const char* describe(PhoneErrorKind kind) {
  switch (kind) {
    case PhoneErrorKind::Invalid:
      return "not a valid number";
    case PhoneErrorKind::Unavailable:
      return "unavailable";
    case PhoneErrorKind::Failed:
      return "failed";
    case PhoneErrorKind::Misconfigured:
      return "misconfigured";
    case PhoneErrorKind::Internal:
      return "local failure";
  }
  return "failed";
}

std::string describe(const PhoneError& e) {
  return e.source.empty() ? e.detail : e.source + ": " + e.detail;
}

namespace {

// A source's entry: the first valid number, else Invalid; nothing when it
// has no entry.
PhoneLookup decide(std::string_view name, const std::vector<std::string>& values) {
  if (values.empty()) return std::nullopt;
  std::size_t longest = 0;
  for (const std::string& raw : values) {
    std::string number = normalise_phone(raw);
    if (is_e164(number)) return FoundPhone{std::move(number), std::string(name), 0};
    longest = std::max(longest, raw.size());
  }
  return phone_error(
      PhoneErrorKind::Invalid,
      "the " + std::string(name) + " entry (" +
          (values.size() == 1 ? std::to_string(longest) + " characters"
                              : std::to_string(values.size()) + " values") +
          ") is not an E.164 number: \"+\", 7 to 15 digits, no leading zero");
}

}  // namespace

PhoneLookup lookup_phone(std::span<NumberSource* const> sources,
                         const std::string& account) {
  for (std::size_t index = 0; index < sources.size(); ++index) {
    NumberSource& source = *sources[index];
    auto values = source.values(account);
    PhoneLookup decided = values ? decide(source.name(), *values)
                                 : std::unexpected(std::move(values.error()));
    if (decided && !decided->has_value()) continue;  // no entry: the next one
    if (decided) {
      (*decided)->index = index;
    } else {
      decided.error().source = std::string(source.name());
      decided.error().index = index;
    }
    return decided;
  }
  return std::nullopt;
}

}  // namespace ptv
