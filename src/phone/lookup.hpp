// The ordered lookup of a user's number over the configured sources.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "phone/source.hpp"

namespace ptv {

struct FoundPhone {
  std::string number;  // E.164
  std::string source;  // which source held it
  std::size_t index = 0;  // its place in the list asked
};

// A number, no number (nullopt: no source has an entry; no_phone
// decides), or why there is none.
using PhoneLookup = std::expected<std::optional<FoundPhone>, PhoneError>;

// Tries the sources in order; the first source that has an entry for the
// user decides. An entry that is not a valid number is Invalid (never
// skipped over: a user could otherwise write garbage into their own GECOS
// field to skip the second factor). A source that fails also stops the
// lookup: falling through to a later source would let that source decide
// whenever the earlier one can be made to fail. Of several values in one
// entry the first valid number wins.
PhoneLookup lookup_phone(std::span<NumberSource* const> sources,
                         const std::string& account);

}  // namespace ptv
