// An account's entries in the table (state/records.hpp).
#include "state/records.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "util/sha256.hpp"

namespace ptv::statefile {

namespace {

std::string_view key_view(const Table& t) {
  return {reinterpret_cast<const char*>(t.key.data()), t.key.size()};
}

Account account_of(const SendLimitSettings& s, const Table& t,
                   std::string_view name) {
  const Sha256Digest d = hmac_sha256(key_view(t), {"account", {"\0", 1}, name});
  Account a;
  std::copy(d.begin(), d.begin() + kTagBytes, a.tag.begin());
  a.bucket[0] = get32(d.data() + 16) % s.bucket_count;
  a.bucket[1] = get32(d.data() + 20) % s.bucket_count;
  if (a.bucket[1] == a.bucket[0])  // two choices, unless there is one
    a.bucket[1] = (a.bucket[0] + 1) % s.bucket_count;
  return a;
}

std::expected<Candidates, StateError> read_candidates(
    const SendLimitSettings& s, const Table& t, const Account& a) {
  Candidates c;
  c.per_bucket = s.slots_per_bucket;
  std::vector<unsigned char> bytes(c.per_bucket * kSlotBytes);
  const std::size_t buckets = a.bucket[0] == a.bucket[1] ? 1 : 2;
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::uint64_t first = std::uint64_t{a.bucket[b]} * c.per_bucket;
    if (auto read = read_at(t, kHeaderBytes + first * kSlotBytes,
                            bytes.data(), bytes.size());
        !read)
      return std::unexpected(read.error());
    for (std::size_t i = 0; i < c.per_bucket; ++i) {
      c.index.push_back(first + i);
      c.slot.push_back(decode_slot(bytes.data() + i * kSlotBytes));
    }
  }
  return c;
}

// An entry that may be taken back without losing anything that matters.
bool expired(const Slot& s, const SendLimitSettings& settings,
             std::int64_t now) {
  if (s.damaged) return false;
  if (s.kind == Kind::Send)
    return std::none_of(s.stamps.begin(), s.stamps.end(), [&](std::uint32_t t) {
      return counts(t, now, settings.window_s);
    });
  if (s.kind == Kind::Grace) return !grace_valid(s, now);
  return false;
}

// The first free slot of the bucket with the most free slots, if any.
std::optional<std::size_t> free_slot(const Candidates& c) {
  std::optional<std::size_t> best;
  std::size_t best_free = 0;
  for (std::size_t start = 0; start < c.slot.size(); start += c.per_bucket) {
    std::size_t n_free = 0;
    std::optional<std::size_t> first;
    for (std::size_t i = start; i < start + c.per_bucket; ++i)
      if (!c.slot[i].damaged && c.slot[i].kind == Kind::Free) {
        ++n_free;
        if (!first) first = i;
      }
    if (n_free > best_free) {
      best_free = n_free;
      best = first;
    }
  }
  return best;
}

}  // namespace

std::expected<std::optional<OpenAccount>, StateError> open_account(
    const SendLimitSettings& s, IfMissing if_missing, std::string_view name) {
  auto table = open_table(s, if_missing);
  if (!table) return std::unexpected(table.error());
  if (!*table) return std::nullopt;
  OpenAccount o{std::move(**table), {}, {}};
  o.account = account_of(s, o.table, name);
  auto slots = read_candidates(s, o.table, o.account);
  if (!slots) return std::unexpected(slots.error());
  o.slots = std::move(*slots);
  return o;
}

Tag address_of(const Table& t, std::string_view address) {
  const Sha256Digest d =
      hmac_sha256(key_view(t), {"address", {"\0", 1}, address});
  Tag tag;
  std::copy(d.begin(), d.begin() + kTagBytes, tag.begin());
  return tag;
}

std::expected<void, StateError> write_slot(const Table& t, std::uint64_t index,
                                           const Slot& slot) {
  const SlotBytes b = encode_slot(slot);
  return write_at(t, kHeaderBytes + index * kSlotBytes, b.data(), b.size());
}

bool owned_by(const Slot& s, Kind kind, const Tag& account) {
  return !s.damaged && s.kind == kind && s.account == account;
}

std::optional<std::size_t> find_send(const Candidates& c, const Tag& account) {
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (owned_by(c.slot[i], Kind::Send, account)) return i;
  return std::nullopt;
}

std::optional<std::size_t> find_grace_entry(const Candidates& c,
                                            const Tag& account,
                                            const Tag& address) {
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (owned_by(c.slot[i], Kind::Grace, account) &&
        c.slot[i].address == address)
      return i;
  return std::nullopt;
}

std::optional<std::size_t> place(const Candidates& c,
                                 const SendLimitSettings& s, std::int64_t now) {
  std::optional<std::size_t> best = free_slot(c);
  if (best) return best;
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (expired(c.slot[i], s, now)) return i;
  for (std::size_t i = 0; i < c.slot.size(); ++i)
    if (!c.slot[i].damaged && c.slot[i].kind == Kind::Grace &&
        (!best || c.slot[i].created < c.slot[*best].created))
      best = i;
  return best;
}

StateError table_full(const Table& t, const Candidates& c) {
  const auto damaged = std::count_if(c.slot.begin(), c.slot.end(),
                                     [](const Slot& s) { return s.damaged; });
  std::string text = "state file " + t.path +
                     ": the state table is full: the " +
                     std::to_string(c.slot.size()) +
                     " slots this account can use hold sends still inside "
                     "their window";
  if (damaged > 0)
    text += " or damaged entries (" + std::to_string(damaged) + " damaged)";
  return StateError{text + "; no code is sent until one of them expires"};
}

bool counts(std::int64_t entry, std::int64_t now, long window_s) {
  return entry > now - window_s && entry < now + window_s;
}

std::vector<std::uint32_t> counting(const std::vector<std::uint32_t>& stamps,
                                    std::int64_t now, long window_s) {
  std::vector<std::uint32_t> kept;
  for (std::uint32_t t : stamps)
    if (counts(t, now, window_s)) kept.push_back(t);
  std::sort(kept.begin(), kept.end());
  return kept;
}

bool grace_valid(const Slot& s, std::int64_t now) {
  return s.created <= now && now < s.until;
}

Slot send_record(const Tag& account, std::vector<std::uint32_t> stamps) {
  Slot s;
  s.kind = Kind::Send;
  s.account = account;
  s.stamps = std::move(stamps);
  return s;
}

}  // namespace ptv::statefile
