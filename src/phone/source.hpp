// One source of phone numbers behind one interface: the users list, the
// GECOS field, the directory (ldap) and the lookup command each answer
// with the raw values of the user's entry, or with an error of the one
// kind every source and the lookup share.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace ptv {

enum class PhoneErrorKind {
  Invalid,        // the entry holds no valid E.164 number: deny (never
                  // skipped over to another source)
  Unavailable,    // the source cannot be reached or is failing: failmode
  Failed,         // any other failure (TLS, bad output...): deny
  Misconfigured,  // the source refused our settings (bind password...)
  Internal,       // a local failure (no descriptors, no memory, a process
                  // that cannot start): deny; never evidence of an outage
};
const char* describe(PhoneErrorKind kind);

struct PhoneError {
  PhoneErrorKind kind = PhoneErrorKind::Failed;
  std::string detail;   // safe to log
  std::string source;   // set by the lookup: which source ("ldap", ...)
  std::size_t index = 0;  // set by the lookup: its place in the list asked
};
// "source: detail" once the lookup named the source.
std::string describe(const PhoneError& e);

// The raw candidate values of the user's entry; none when the source has
// no entry for the user, or an entry without a number.
using SourceValues = std::expected<std::vector<std::string>, PhoneError>;

class NumberSource {
 public:
  virtual ~NumberSource() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  virtual SourceValues values(const std::string& account) = 0;
};

// A failure of a source, as a value.
inline std::unexpected<PhoneError> phone_error(PhoneErrorKind kind,
                                               std::string detail) {
  return std::unexpected(PhoneError{kind, std::move(detail), {}, 0});
}

}  // namespace ptv
