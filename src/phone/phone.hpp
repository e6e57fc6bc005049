// Phone numbers: E.164 validation, normalisation of what people type into
// GECOS fields and directories, and masking for prompts and logs. The
// sources and the ordered lookup are in source.hpp and lookup.hpp.
#pragma once

#include <string>
#include <string_view>

namespace ptv {

// "+" then 7 to 15 digits, the first not zero.
bool is_e164(std::string_view number);

// Removes the separators people write inside numbers (spaces, tabs, '-',
// '.', '(' and ')') and nothing else. It never adds or guesses a country
// code: the result must still pass is_e164().
std::string normalise_phone(std::string_view raw);

// "+15551234567" -> "+1******4567". Anything that is not E.164 masks to
// "(invalid)" so that no unvalidated data reaches a prompt or a log.
std::string mask_phone(std::string_view e164);

// The comma-separated GECOS field (1-based); empty when absent.
std::string gecos_field(std::string_view gecos, int field);

}  // namespace ptv
