// The state room: the send limit and grace entries, kept in state.v1.
//
// The per-user send limit: how many verifications (each one may send an
// SMS, a call or a WhatsApp message) a user may start within a sliding
// window, counted across logins and across processes. It bounds what an
// attacker who knows a password can cost in messages (SMS pumping);
// max_attempts bounds the checks within one login.
//
// State: one file, state_dir/state.v1, created once at its full size with
// real blocks (posix_fallocate, then written with zeros) and from then on
// only overwritten in place (pwrite + fdatasync); it is never renamed,
// recreated, truncated or extended. A login therefore needs no new inode
// and no new block: a local user who fills the filesystem (inodes or
// blocks) cannot lock anyone out through it.
//
// Layout (all integers little-endian):
//   header, 4096 bytes:
//     0   8  magic "PTVSTATE"
//     8   4  format version (1)
//     12  4  header size (4096)
//     16  4  bucket count (2048)
//     20  4  slots per bucket (8)
//     24  4  slot size (512)
//     28  4  zero
//     32  32 key: random bytes from getrandom() at creation
//     64..4063 zero
//     4064 32 SHA-256 of bytes 0..4063
//   then bucket_count * slots_per_bucket slots of 512 bytes (16,384 slots,
//   8 MiB); bucket b is the slots_per_bucket slots from slot
//   b * slots_per_bucket, 4096 bytes, page aligned.
//   slot, 512 bytes; 512 zero bytes is a free slot:
//     0   1  kind: 1 send record, 2 grace entry
//     1   1  send record: number of stamps (at most 100)
//     2   6  zero
//     8   16 account tag: HMAC-SHA-256(key, "account" NUL name)[0..16)
//     send record: 24 + 4 i  the send times (uint32 CLOCK_REALTIME seconds)
//     grace entry: 24 16 address tag: HMAC-SHA-256(key, "address" NUL
//                  address)[0..16); 40 4 created; 44 4 expiry
//     504 8  SHA-256 of bytes 0..503, first 8 bytes
// The names themselves are never stored. An account's entries live in one
// of two buckets, both taken from HMAC-SHA-256(key, "account" NUL name)
// (bytes 16..19 and 20..23, modulo the bucket count), so nobody who cannot
// read the key can aim many names at one bucket. A new entry goes to the
// emptier of the two. When both are full, a slot is taken back: first one
// whose entry has expired (a send record without a send inside the window,
// a grace entry past its expiry), then the oldest grace entry; a send
// record with a send inside the window is never taken, so the table
// cannot be used to erase someone's count. A slot that fails its checksum
// (a write torn by a power cut) matches no account and is never taken.
// With no slot to take, the start is refused as an error (table full).
//
// Concurrency: every operation holds an exclusive flock on state.v1
// itself, whose inode never changes; creation holds one on the directory.
//
// The code, by concern: layout.hpp (the bytes and their checksums),
// locked_file.hpp (the file opened, checked, created and locked),
// records.hpp (an account's slots); SHA-256 and HMAC in util/sha256.hpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/access.hpp"
#include "core/send_gate.hpp"
#include "state/settings.hpp"

namespace ptv {


inline constexpr char kStateFileName[] = "state.v1";
inline constexpr std::uint32_t kDefaultBucketCount = 2048;
inline constexpr std::uint32_t kDefaultSlotsPerBucket = 8;
// send_limit.count may be up to 100: a send record holds that many stamps.
inline constexpr int kMaxStampsPerRecord = 100;

struct SendLimitSettings {
  std::string state_dir;
  int count = 5;         // starts allowed within the window
  long window_s = 3600;  // seconds
  // Who must own the state directory and file: root in the module. Tests
  // running without root set their own uid.
  uid_t owner = 0;
  // How long to wait for another login to release the lock before giving
  // up (fail closed).
  long lock_wait_ms = 5000;
  // The table's size. Only tests change these (to fill a small table); the
  // module and twilio-verify-state always use the defaults, and a file of
  // another size is refused.
  std::uint32_t bucket_count = kDefaultBucketCount;
  std::uint32_t slots_per_bucket = kDefaultSlotsPerBucket;
};

SendLimitSettings send_limit_settings(const StateSettings& state);

// The size of state.v1 for these settings (8 MiB + 4 KiB by default).
std::uint64_t state_file_size(const SendLimitSettings& settings);


// Takes the lock, drops the user's entries outside the window, and either
// records `now` (Allowed) or refuses (LimitReached). An entry counts while
//   now - window_s < entry < now + window_s
// (an entry more than a window in the future was written while the clock
// was wrong, and is forgotten rather than locking the user out). Creates
// the directory and state.v1 when they are missing.
SendReservation reserve_send(const SendLimitSettings& settings,
                             std::string_view user, std::int64_t now);

// Gives back one reservation (removes one entry equal to `stamp`), for a
// start that certainly sent nothing. The error says what went wrong (safe
// to log).
std::expected<void, StateError> release_send(const SendLimitSettings& settings,
                                             std::string_view user,
                                             std::int64_t stamp,
                                             std::int64_t now);

// Grace entries: after an approved code, `account` from `address` may skip
// the code until `until`. Recording again for the same account and address
// replaces the entry.
std::expected<void, StateError> record_grace(const SendLimitSettings& settings,
                                             std::string_view account,
                                             std::string_view address,
                                             std::int64_t now,
                                             std::int64_t until);

// The expiry of the account's entry for the address when one is valid now
// (created <= now < expiry), else nullopt. Looking never extends it.
std::expected<std::optional<std::int64_t>, StateError> find_grace(
    const SendLimitSettings& settings, std::string_view account,
    std::string_view address, std::int64_t now);

// Clears every send record and grace entry of one account (what
// "twilio-verify-state reset USER" does).
std::expected<void, StateError> reset_account(const SendLimitSettings& settings,
                                              std::string_view account);

// The send times recorded for the account, oldest first, whether or not
// they still count (twilio-verify-state show, tests). A missing state file
// has none; nothing is created.
std::expected<std::vector<std::int64_t>, StateError> recorded_sends(
    const SendLimitSettings& settings, std::string_view account);

// What the store holds for one account now (twilio-verify-admin status
// and lookup): the sends that count within the window, oldest first, and
// the expiries of its valid grace entries (their addresses are stored as
// keyed tags, so they cannot be shown). A missing state file holds
// nothing; nothing is created.
struct AccountState {
  std::vector<std::int64_t> sends;
  std::vector<std::int64_t> grace_until;
};
std::expected<AccountState, StateError> account_state(
    const SendLimitSettings& settings, std::string_view account,
    std::int64_t now);

// The whole table at a glance (twilio-verify-admin status without a user):
// whether state.v1 exists, its slots, the send records with a send inside
// the window, the valid grace entries and the damaged slots.
struct TableUsage {
  bool exists = false;
  std::uint64_t slots = 0;
  std::uint64_t counting_sends = 0;
  std::uint64_t grace_entries = 0;
  std::uint64_t damaged = 0;
};
std::expected<TableUsage, StateError> table_usage(
    const SendLimitSettings& settings, std::int64_t now);

// Creates the directory and state.v1 if missing and checks them (what
// "twilio-verify-state create" does). Succeeds when they are usable.
std::expected<void, StateError> ensure_state_file(
    const SendLimitSettings& settings);

// CLOCK_REALTIME, in whole seconds.
std::int64_t realtime_now();

// The real gate: the configured state directory and CLOCK_REALTIME.
class StateDirSendGate final : public SendGate {
 public:
  explicit StateDirSendGate(SendLimitSettings settings)
      : settings_(std::move(settings)) {}
  SendReservation reserve(const std::string& user) override {
    return reserve_send(settings_, user, realtime_now());
  }
  std::expected<void, StateError> release(const std::string& user,
                                          std::int64_t stamp) override {
    return release_send(settings_, user, stamp, realtime_now());
  }

 private:
  SendLimitSettings settings_;
};

// The grace entries the access policy (core/access.hpp) finds and records.
class StateDirGrace final : public GraceStore {
 public:
  explicit StateDirGrace(SendLimitSettings settings)
      : settings_(std::move(settings)) {}
  std::expected<std::optional<std::int64_t>, StateError> find(
      const std::string& account, const std::string& address) override {
    return find_grace(settings_, account, address, realtime_now());
  }
  std::expected<void, StateError> record(const std::string& account,
                                         const std::string& address,
                                         std::int64_t period_s) override {
    const std::int64_t now = realtime_now();
    return record_grace(settings_, account, address, now, now + period_s);
  }

 private:
  SendLimitSettings settings_;
};

}  // namespace ptv
