#include "phone/phone.hpp"

#include <algorithm>
#include <expected>
#include <optional>
#include <vector>

#include "config/config.hpp"

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

namespace {

const char* source_name(PhoneSource source) {
  switch (source) {
    case PhoneSource::Users:
      return "users";
    case PhoneSource::Gecos:
      return "gecos";
    case PhoneSource::Ldap:
      return "ldap";
    case PhoneSource::Command:
      return "command";
  }
  return "?";
}

SourceAnswer ask(const SourceQuery& query, const std::string& user,
                 const char* name) {
  if (!query)
    return {SourceAnswer::Kind::Failed, {},
            std::string("the ") + name + " source is not available here"};
  return query(user);
}

}  // namespace

namespace {

// The candidate values one source holds for the user; a source's failure
// is the lookup's answer instead.
std::expected<std::vector<std::string>, PhoneLookup> values_of(
    PhoneSource source, const std::string& name, const Config& config,
    const std::string& user, const PhoneReaders& readers) {
  using Kind = PhoneLookup::Kind;
  std::vector<std::string> values;
  if (source == PhoneSource::Users) {
    for (const auto& [u, number] : config.users)
      if (u == user) values.push_back(number);
    return values;
  }
  if (source == PhoneSource::Gecos) {
    std::optional<std::string> gecos;
    if (readers.gecos) gecos = readers.gecos(user);
    if (gecos) {
      std::string field = gecos_field(*gecos, config.gecos_field);
      if (!field.empty()) values.push_back(std::move(field));
    }
    return values;
  }
  SourceAnswer answer =
      ask(source == PhoneSource::Ldap ? readers.ldap : readers.command, user,
          name.c_str());
  switch (answer.kind) {
    case SourceAnswer::Kind::Values:
      return std::move(answer.values);
    case SourceAnswer::Kind::NotFound:
      return values;
    case SourceAnswer::Kind::Unavailable:
      return std::unexpected(
          PhoneLookup{Kind::Unavailable, {}, name, std::move(answer.problem)});
    case SourceAnswer::Kind::Failed:
      return std::unexpected(
          PhoneLookup{Kind::Failed, {}, name, std::move(answer.problem)});
    case SourceAnswer::Kind::Misconfigured:
      return std::unexpected(
          PhoneLookup{Kind::Misconfigured, {}, name, std::move(answer.problem)});
    case SourceAnswer::Kind::Internal:
      break;
  }
  return std::unexpected(
      PhoneLookup{Kind::Internal, {}, name, std::move(answer.problem)});
}

// A source's entry: the first valid number, else Invalid; nothing when it
// has no entry.
std::optional<PhoneLookup> decide(const std::string& name,
                                  const std::vector<std::string>& values) {
  using Kind = PhoneLookup::Kind;
  if (values.empty()) return std::nullopt;
  std::size_t longest = 0;
  for (const std::string& raw : values) {
    std::string number = normalise_phone(raw);
    if (is_e164(number)) return PhoneLookup{Kind::Found, std::move(number), name, {}};
    longest = std::max(longest, raw.size());
  }
  return PhoneLookup{Kind::Invalid, {}, name,
                     "the " + name + " entry (" +
                         (values.size() == 1
                              ? std::to_string(longest) + " characters"
                              : std::to_string(values.size()) + " values") +
                         ") is not an E.164 number: \"+\", 7 to 15 digits, "
                         "no leading zero"};
}

}  // namespace

PhoneLookup lookup_phone_in(const std::vector<PhoneSource>& sources,
                            const Config& config, const std::string& user,
                            const PhoneReaders& readers) {
  for (std::size_t index = 0; index < sources.size(); ++index) {
    const std::string name = source_name(sources[index]);
    auto values = values_of(sources[index], name, config, user, readers);
    std::optional<PhoneLookup> decided;
    if (values) {
      decided = decide(name, *values);
    } else {
      decided = std::move(values.error());
    }
    if (!decided) continue;
    decided->index = index;
    return std::move(*decided);
  }
  return {};
}

PhoneLookup lookup_phone(const Config& config, const std::string& user,
                         const PhoneReaders& readers) {
  return lookup_phone_in(config.phone_sources, config, user, readers);
}

}  // namespace ptv
