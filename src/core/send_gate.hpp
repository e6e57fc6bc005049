// The send limit as the verification flow sees it: before each start it
// asks to reserve a send for the account, and gives one back when the
// start certainly sent nothing. The module keeps the state (state/
// send_limit.hpp); the helper asks the module through the protocol.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

namespace ptv {

enum class SendDecision {
  Allowed,       // recorded: the caller may start the verification
  LimitReached,  // count starts within the window already: send nothing
  Error,         // the state cannot be used: deny (fail closed)
};

struct SendReservation {
  SendDecision decision = SendDecision::Error;
  std::int64_t stamp = 0;     // the time recorded, when Allowed
  int used = 0;               // starts within the window before this one
  std::int64_t retry_in_s = 0;  // LimitReached: when the oldest one expires
  std::string detail;         // safe to log; names the file or directory
};

// Why the state could not be used or changed.
struct StateError {
  std::string detail;  // safe to log; names the file or directory
};
inline const std::string& describe(const StateError& e) { return e.detail; }

// What the authentication flow calls around a verification start; tests
// and fuzzers may substitute their own.
class SendGate {
 public:
  virtual ~SendGate() = default;
  virtual SendReservation reserve(const std::string& user) = 0;
  // Gives back the send reserved at `stamp` (nothing was sent).
  virtual std::expected<void, StateError> release(const std::string& user,
                                                  std::int64_t stamp) = 0;
};

}  // namespace ptv
