// An account's entries in the table: its slots, and finding, placing, writing.
//
// An account's entries live in one of two buckets chosen by its keyed tag
// (format in send_limit.hpp); a new entry goes to the emptier one, or
// takes back a slot whose entry no longer matters.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string_view>
#include <vector>

#include "core/send_gate.hpp"
#include "state/layout.hpp"
#include "state/locked_file.hpp"
#include "state/send_limit.hpp"

namespace ptv::statefile {

// Where an account's entries may live: its tag and its two buckets.
struct Account {
  Tag tag{};
  std::array<std::uint32_t, 2> bucket{};
};

// The slots of the account's buckets: the first bucket's, then the
// second's (if it is another one).
struct Candidates {
  std::vector<std::uint64_t> index;  // slot number in the table
  std::vector<Slot> slot;
  std::size_t per_bucket = 0;
};

// The locked table, one account in it and the slots it may use.
struct OpenAccount {
  Table table;
  Account account;
  Candidates slots;
};

// Opens the table (open_table) and reads the account's slots; nullopt
// when there is no table and if_missing is Absent.
std::expected<std::optional<OpenAccount>, StateError> open_account(
    const SendLimitSettings& s, IfMissing if_missing, std::string_view name);

// The tag of an address, under the table's key.
Tag address_of(const Table& t, std::string_view address);

std::expected<void, StateError> write_slot(const Table& t, std::uint64_t index,
                                           const Slot& slot);

bool owned_by(const Slot& s, Kind kind, const Tag& account);
std::optional<std::size_t> find_send(const Candidates& c, const Tag& account);
std::optional<std::size_t> find_grace_entry(const Candidates& c,
                                            const Tag& account,
                                            const Tag& address);

// A slot for a new entry: a free one in the emptier bucket; else one
// taken back: an expired entry, then the oldest grace entry. Never a send
// record with a send inside the window, never a damaged slot.
std::optional<std::size_t> place(const Candidates& c,
                                 const SendLimitSettings& s, std::int64_t now);

// No slot for a new entry (place found none).
StateError table_full(const Table& t, const Candidates& c);

// An entry counts while now - window_s < entry < now + window_s.
bool counts(std::int64_t entry, std::int64_t now, long window_s);
// The stamps that count, oldest first.
std::vector<std::uint32_t> counting(const std::vector<std::uint32_t>& stamps,
                                    std::int64_t now, long window_s);
bool grace_valid(const Slot& s, std::int64_t now);

Slot send_record(const Tag& account, std::vector<std::uint32_t> stamps);

}  // namespace ptv::statefile
