// The per-user send limit: how many verifications (each one may send an
// SMS, a call or a WhatsApp message) a user may start within a sliding
// window, counted across logins and across processes. It bounds what an
// attacker who knows a password can cost in messages (SMS pumping);
// max_attempts bounds the checks within one login.
//
// State: one small text file per user in the state directory, holding the
// CLOCK_REALTIME seconds of the starts still inside the window, one per
// line. Every change happens under an exclusive flock on a separate
// per-user lock file, and the new content replaces the old by rename, so a
// crash leaves either the old or the new list, never a torn one.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace ptv {

struct Config;

struct SendLimitSettings {
  std::string state_dir;
  int count = 5;         // starts allowed within the window
  long window_s = 3600;  // seconds
  // Who must own the state directory: root in the module. Tests running
  // without root set their own uid.
  uid_t owner = 0;
  // How long to wait for another login of the same user to release the
  // lock before giving up (fail closed).
  long lock_wait_ms = 5000;
};

SendLimitSettings send_limit_settings(const Config& config);

// State files larger than this are corrupt (100 entries take about 2 KiB).
inline constexpr std::size_t kMaxStateFileBytes = 4096;

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

// Takes the lock, drops the entries outside the window, and either records
// `now` (Allowed) or refuses (LimitReached). An entry counts while
//   now - window_s < entry < now + window_s
// (an entry more than a window in the future was written while the clock
// was wrong, and is forgotten rather than locking the user out).
SendReservation reserve_send(const SendLimitSettings& settings,
                             std::string_view user, std::int64_t now);

// Gives back one reservation (removes one entry equal to `stamp`), for a
// start that certainly sent nothing. Returns an empty string on success,
// else what went wrong (safe to log).
std::string release_send(const SendLimitSettings& settings,
                         std::string_view user, std::int64_t stamp,
                         std::int64_t now);

// CLOCK_REALTIME, in whole seconds.
std::int64_t realtime_now();

// The file name stem for a user: "u-" and the hex of the name's bytes for
// names of up to 100 bytes, else "h-" and the hex SHA-256 of the name.
// Safe for any name ('/', "..", NUL, newlines, metacharacters) and at
// most 202 characters long.
std::string state_file_stem(std::string_view user);

// SHA-256 of the bytes, as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

// What the authentication flow calls around a verification start; tests
// and fuzzers may substitute their own.
class SendGate {
 public:
  virtual ~SendGate() = default;
  virtual SendReservation reserve(const std::string& user) = 0;
  // Empty on success, else what went wrong (safe to log).
  virtual std::string release(const std::string& user, std::int64_t stamp) = 0;
};

// The real gate: the configured state directory and CLOCK_REALTIME.
class StateDirSendGate final : public SendGate {
 public:
  explicit StateDirSendGate(SendLimitSettings settings)
      : settings_(std::move(settings)) {}
  SendReservation reserve(const std::string& user) override {
    return reserve_send(settings_, user, realtime_now());
  }
  std::string release(const std::string& user, std::int64_t stamp) override {
    return release_send(settings_, user, stamp, realtime_now());
  }

 private:
  SendLimitSettings settings_;
};

}  // namespace ptv
