// The send limit's operations (state/send_limit.hpp) on the state table.
#include "state/send_limit.hpp"

#include <time.h>

#include <algorithm>
#include <utility>

#include "state/layout.hpp"
#include "state/locked_file.hpp"
#include "state/records.hpp"

namespace ptv {

namespace {

using namespace statefile;

void limit_reached(SendReservation& r, const std::vector<std::uint32_t>& kept,
                   const SendLimitSettings& s, std::int64_t now) {
  r.decision = SendDecision::LimitReached;
  // The oldest entry that must expire for a start to be allowed again.
  const std::int64_t frees = kept[kept.size() - s.count];
  r.retry_in_s = std::max<std::int64_t>(1, frees + s.window_s - now);
  r.detail = "send limit reached: " + std::to_string(r.used) +
             " codes sent in the last " + std::to_string(s.window_s) +
             " s (send_limit.count = " + std::to_string(s.count) +
             "); the next is allowed in " + std::to_string(r.retry_in_s) +
             " s";
}

// The reservation in the account's open table: refused at the limit, else
// recorded in its send record or in a new one.
SendReservation reserve_in(const OpenAccount& o,
                           const SendLimitSettings& settings,
                           std::int64_t now) {
  SendReservation r;
  std::optional<std::size_t> where = find_send(o.slots, o.account.tag);
  std::vector<std::uint32_t> kept;
  if (where) kept = counting(o.slots.slot[*where].stamps, now, settings.window_s);
  r.used = static_cast<int>(kept.size());
  if (r.used >= settings.count) {
    limit_reached(r, kept, settings, now);
    return r;
  }
  if (!where) where = place(o.slots, settings, now);
  if (!where) {
    r.detail = table_full(o.table, o.slots).detail;
    return r;
  }
  kept.push_back(static_cast<std::uint32_t>(now));
  std::sort(kept.begin(), kept.end());
  const auto written = write_slot(o.table, o.slots.index[*where],
                                  send_record(o.account.tag, kept));
  if (!written) {
    r.detail = written.error().detail;
    return r;
  }
  r.decision = SendDecision::Allowed;
  r.stamp = now;
  return r;
}

// Opens (so checks, and creates if asked) the table and changes nothing.
std::expected<void, StateError> check_table(const SendLimitSettings& s,
                                            IfMissing if_missing) {
  const auto table = open_table(s, if_missing);
  if (!table) return std::unexpected(table.error());
  return {};
}

Slot grace_entry(const Tag& account, const Tag& address, std::int64_t now,
                 std::int64_t until) {
  Slot entry;
  entry.kind = Kind::Grace;
  entry.account = account;
  entry.address = address;
  entry.created = static_cast<std::uint32_t>(now);
  entry.until = static_cast<std::uint32_t>(until);
  return entry;
}

}  // namespace

std::int64_t realtime_now() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec);
}

SendLimitSettings send_limit_settings(const StateSettings& state) {
  SendLimitSettings s;
  s.state_dir = state.state_dir;
  s.count = state.send_limit_count;
  s.window_s = state.send_limit_window_s;
  return s;
}

SendReservation reserve_send(const SendLimitSettings& settings,
                             std::string_view user, std::int64_t now) {
  if (!fits_stamp(now)) return SendReservation{.detail = clock_problem(now)};
  const auto opened = open_account(settings, IfMissing::Create, user);
  if (!opened) return SendReservation{.detail = opened.error().detail};
  return reserve_in(**opened, settings, now);
}

std::expected<void, StateError> release_send(const SendLimitSettings& settings,
                                             std::string_view user,
                                             std::int64_t stamp,
                                             std::int64_t now) {
  // A time the file cannot hold was never recorded: only the checks.
  if (!fits_stamp(stamp)) return check_table(settings, IfMissing::Absent);
  const auto opened = open_account(settings, IfMissing::Absent, user);
  if (!opened) return std::unexpected(opened.error());
  if (!*opened) return {};  // nothing recorded
  const OpenAccount& o = **opened;
  const std::optional<std::size_t> where = find_send(o.slots, o.account.tag);
  if (!where) return {};
  std::vector<std::uint32_t> stamps = o.slots.slot[*where].stamps;
  const auto it = std::find(stamps.begin(), stamps.end(),
                            static_cast<std::uint32_t>(stamp));
  if (it == stamps.end()) return {};  // expired or pruned: nothing to give back
  stamps.erase(it);
  return write_slot(
      o.table, o.slots.index[*where],
      send_record(o.account.tag, counting(stamps, now, settings.window_s)));
}

std::expected<void, StateError> record_grace(const SendLimitSettings& settings,
                                             std::string_view account,
                                             std::string_view address,
                                             std::int64_t now,
                                             std::int64_t until) {
  if (!fits_stamp(now)) return state_error(clock_problem(now));
  if (!fits_stamp(until)) return state_error(clock_problem(until));
  if (until <= now)
    return state_error("a grace entry must expire after it is made");
  const auto opened = open_account(settings, IfMissing::Create, account);
  if (!opened) return std::unexpected(opened.error());
  const OpenAccount& o = **opened;
  const Tag where_from = address_of(o.table, address);
  std::optional<std::size_t> where =
      find_grace_entry(o.slots, o.account.tag, where_from);
  if (!where) where = place(o.slots, settings, now);
  if (!where) return std::unexpected(table_full(o.table, o.slots));
  return write_slot(o.table, o.slots.index[*where],
                    grace_entry(o.account.tag, where_from, now, until));
}

std::expected<std::optional<std::int64_t>, StateError> find_grace(
    const SendLimitSettings& settings, std::string_view account,
    std::string_view address, std::int64_t now) {
  const auto opened = open_account(settings, IfMissing::Absent, account);
  if (!opened) return std::unexpected(opened.error());
  if (!*opened) return std::nullopt;
  const OpenAccount& o = **opened;
  const std::optional<std::size_t> where =
      find_grace_entry(o.slots, o.account.tag, address_of(o.table, address));
  if (!where || !grace_valid(o.slots.slot[*where], now)) return std::nullopt;
  return std::int64_t{o.slots.slot[*where].until};
}

std::expected<void, StateError> reset_account(const SendLimitSettings& settings,
                                              std::string_view account) {
  const auto opened = open_account(settings, IfMissing::Absent, account);
  if (!opened) return std::unexpected(opened.error());
  if (!*opened) return {};
  const OpenAccount& o = **opened;
  for (std::size_t i = 0; i < o.slots.slot.size(); ++i) {
    const Slot& s = o.slots.slot[i];
    if (!owned_by(s, Kind::Send, o.account.tag) &&
        !owned_by(s, Kind::Grace, o.account.tag))
      continue;
    if (auto cleared = write_slot(o.table, o.slots.index[i], Slot{}); !cleared)
      return cleared;
  }
  return {};
}

std::expected<std::vector<std::int64_t>, StateError> recorded_sends(
    const SendLimitSettings& settings, std::string_view account) {
  const auto opened = open_account(settings, IfMissing::Absent, account);
  if (!opened) return std::unexpected(opened.error());
  std::vector<std::int64_t> out;
  if (!*opened) return out;
  const OpenAccount& o = **opened;
  if (const auto where = find_send(o.slots, o.account.tag))
    for (std::uint32_t stamp : o.slots.slot[*where].stamps) out.push_back(stamp);
  std::sort(out.begin(), out.end());
  return out;
}

std::expected<void, StateError> ensure_state_file(
    const SendLimitSettings& settings) {
  return check_table(settings, IfMissing::Create);
}

std::expected<AccountState, StateError> account_state(
    const SendLimitSettings& settings, std::string_view account,
    std::int64_t now) {
  const auto opened = open_account(settings, IfMissing::Absent, account);
  if (!opened) return std::unexpected(opened.error());
  AccountState out;
  if (!*opened) return out;
  const OpenAccount& o = **opened;
  for (const Slot& s : o.slots.slot) {
    if (owned_by(s, Kind::Send, o.account.tag))
      for (std::uint32_t stamp : counting(s.stamps, now, settings.window_s))
        out.sends.push_back(stamp);
    if (owned_by(s, Kind::Grace, o.account.tag) && grace_valid(s, now))
      out.grace_until.push_back(s.until);
  }
  std::sort(out.sends.begin(), out.sends.end());
  std::sort(out.grace_until.begin(), out.grace_until.end());
  return out;
}

namespace {

void count_slot(const Slot& s, const SendLimitSettings& settings,
                std::int64_t now, TableUsage& usage) {
  if (s.damaged) {
    ++usage.damaged;
  } else if (s.kind == Kind::Send &&
             !counting(s.stamps, now, settings.window_s).empty()) {
    ++usage.counting_sends;
  } else if (s.kind == Kind::Grace && grace_valid(s, now)) {
    ++usage.grace_entries;
  }
}

}  // namespace

std::expected<TableUsage, StateError> table_usage(
    const SendLimitSettings& settings, std::int64_t now) {
  const auto table = open_table(settings, IfMissing::Absent);
  if (!table) return std::unexpected(table.error());
  TableUsage usage;
  if (!*table) return usage;
  usage.exists = true;
  usage.slots = slot_count(settings);
  constexpr std::uint64_t kChunk = 256;  // slots per read
  std::vector<unsigned char> bytes(kChunk * kSlotBytes);
  for (std::uint64_t first = 0; first < usage.slots; first += kChunk) {
    const std::uint64_t n = std::min(kChunk, usage.slots - first);
    if (auto read = read_at(**table, kHeaderBytes + first * kSlotBytes,
                            bytes.data(), n * kSlotBytes);
        !read)
      return std::unexpected(read.error());
    for (std::uint64_t i = 0; i < n; ++i)
      count_slot(decode_slot(bytes.data() + i * kSlotBytes), settings, now, usage);
  }
  return usage;
}

}  // namespace ptv
