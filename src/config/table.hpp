// The machinery of the settings table (settings.cpp): a setting is one row,
// a name and how its value is read into its part of the Config, built from
// the field readers below (a whole number in a range, a string with an
// optional check, a boolean, a SID, a secret, one of a few words), and a
// group is a table of its own with its required names and a final check.
#pragma once

#include <libconfig.h>

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "config/reader.hpp"

namespace ptv::table {

template <typename Part>
using Parse = ConfigResult (*)(const Reader&, const config_setting_t*, Part&);

template <typename Part>
struct Row {
  std::string_view name;
  Parse<Part> read;
};

template <typename PartType>
struct Group {
  using Part = PartType;
  std::span<const Row<Part>> rows;
  std::string_view shape;  // what a value that is not a group is told
  std::span<const std::string_view> required;
  Parse<Part> check = nullptr;  // once every row is read (the group given)
};

// A string setting's own check; it may also normalise the value.
using Check = ConfigResult (*)(const Reader&, const config_setting_t*,
                               std::string&);

template <typename Value>
struct Choice {
  std::string_view word;
  Value value;
};

template <typename T>
struct MemberOf;
template <typename C, typename M>
struct MemberOf<M C::*> {
  using Class = C;
  using Type = M;
};
template <auto Member>
using ClassOf = typename MemberOf<decltype(Member)>::Class;
template <auto Member>
using TypeOf = typename MemberOf<decltype(Member)>::Type;

// Every setting of the group through its row; then the required names and
// the group's check.
template <typename Part>
ConfigResult read_group(const Reader& r, const config_setting_t* group,
                        const Group<Part>& spec, Part& part) {
  const int n = config_setting_length(group);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* s = config_setting_get_elem(group, i);
    const std::string_view key = config_setting_name(s);
    const auto row = std::find_if(spec.rows.begin(), spec.rows.end(),
                                  [key](const Row<Part>& x) { return x.name == key; });
    if (row == spec.rows.end())
      return std::unexpected(r.error(s, "unknown setting"));
    if (auto ok = row->read(r, s, part); !ok) return ok;
  }
  for (std::string_view name : spec.required)
    if (config_setting_get_member(group, std::string(name).c_str()) == nullptr)
      return std::unexpected(r.error(group, std::string(name) + " is missing"));
  return spec.check != nullptr ? spec.check(r, group, part) : ConfigResult{};
}

// A group = { ... } setting read through its own table.
template <const auto& Spec>
ConfigResult group(const Reader& r, const config_setting_t* s,
                   typename std::remove_cvref_t<decltype(Spec)>::Part& part) {
  if (config_setting_type(s) != CONFIG_TYPE_GROUP)
    return std::unexpected(r.error(s, Spec.shape));
  return read_group(r, s, Spec, part);
}

// Reads into one member of the part (a part of a part).
template <auto PartMember, auto Inner>
ConfigResult in(const Reader& r, const config_setting_t* s,
                ClassOf<PartMember>& outer) {
  return Inner(r, s, outer.*PartMember);
}

template <auto Member, long long Min, long long Max>
ConfigResult integer(const Reader& r, const config_setting_t* s,
                     ClassOf<Member>& part) {
  auto v = r.integer(s, Min, Max);
  if (!v) return std::unexpected(v.error());
  part.*Member = static_cast<TypeOf<Member>>(*v);
  return {};
}

template <auto Member>
ConfigResult boolean(const Reader& r, const config_setting_t* s,
                     ClassOf<Member>& part) {
  auto v = r.boolean(s);
  if (!v) return std::unexpected(v.error());
  part.*Member = *v;
  return {};
}

// Any string: the check of a text setting that has none of its own.
inline ConfigResult any_text(const Reader&, const config_setting_t*, std::string&) {
  return {};
}

template <auto Member, Check CheckValue = any_text>
ConfigResult text(const Reader& r, const config_setting_t* s,
                  ClassOf<Member>& part) {
  auto v = r.string(s);
  if (!v) return std::unexpected(v.error());
  if (auto ok = CheckValue(r, s, *v); !ok) return ok;
  part.*Member = std::move(*v);
  return {};
}

// "must be "a" or "b"", "must be "a", "b" or "c"".
template <typename Value, std::size_t N>
std::string choices_text(const Choice<Value> (&choices)[N]) {
  std::string text = "must be ";
  for (std::size_t i = 0; i < N; ++i) {
    if (i > 0) text += i + 1 == N ? " or " : ", ";
    text += "\"" + std::string(choices[i].word) + "\"";
  }
  return text;
}

template <auto Member, const auto& Choices>
ConfigResult choice(const Reader& r, const config_setting_t* s,
                    ClassOf<Member>& part) {
  auto v = r.string(s);
  if (!v) return std::unexpected(v.error());
  for (const auto& c : Choices)
    if (c.word == *v) {
      part.*Member = TypeOf<Member>(c.value);
      return {};
    }
  return std::unexpected(r.error(s, choices_text(Choices)));
}

}  // namespace ptv::table
