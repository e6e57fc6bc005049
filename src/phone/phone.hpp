// Phone numbers: E.164 validation, normalisation of what people type into
// GECOS fields and directories, masking for prompts and logs, and lookup
// from the configured sources.
#pragma once

#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ptv {

struct Config;
enum class PhoneSource;

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

// Reads a user's GECOS string; nullopt when the user does not exist.
using GecosReader =
    std::function<std::optional<std::string>(const std::string& user)>;

// What an external source (LDAP, the lookup command) answered.
struct SourceAnswer {
  enum class Kind {
    Values,         // the user's entry holds these candidate numbers, raw
    NotFound,       // no entry, or an entry without a number
    Unavailable,    // the source cannot be reached or is failing: failmode
    Failed,         // any other failure (TLS, bad output...): deny
    Misconfigured,  // the source refused our settings (bind password...)
    Internal,       // a local failure (no descriptors, no memory, a process
                    // that cannot start): deny; never evidence of an outage
  };
  Kind kind = Kind::Failed;
  std::vector<std::string> values;
  std::string problem;  // safe to log
};
using SourceQuery = std::function<SourceAnswer(const std::string& user)>;

// How each source is read; the PAM entry wires the real ones, tests fakes.
// A source listed in phone_sources without a reader here fails closed.
struct PhoneReaders {
  GecosReader gecos;
  SourceQuery ldap;
  SourceQuery command;
};

struct PhoneLookup {
  enum class Kind {
    Found,
    NotFound,
    Invalid,
    Unavailable,
    Failed,
    Misconfigured,
    Internal,
  };
  Kind kind = Kind::NotFound;
  std::string number;   // E.164 when Found
  std::string source;   // which source answered ("users", "gecos", ...)
  std::string problem;  // why not Found, safe to log
  std::size_t index = 0;  // its position in the list asked
};

// Tries the configured sources in order; the first source that has an
// entry for the user decides. An entry that is not a valid number is
// Invalid (never skipped over: a user could otherwise write garbage into
// their own GECOS field to skip the second factor). A source that fails
// also stops the lookup: falling through to a later source would let that
// source decide whenever the earlier one can be made to fail. Of several
// values in one entry the first valid number wins.
PhoneLookup lookup_phone(const Config& config, const std::string& user,
                         const PhoneReaders& readers);
// The same over another list of sources (a part of phone_sources).
PhoneLookup lookup_phone_in(const std::vector<PhoneSource>& sources,
                            const Config& config, const std::string& user,
                            const PhoneReaders& readers);

}  // namespace ptv
