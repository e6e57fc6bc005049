// The bytes of state.v1 (state/layout.hpp): encoding, decoding, checksums.
#include "state/layout.hpp"

#include <algorithm>
#include <limits>

#include "util/sha256.hpp"

namespace ptv {

namespace statefile {

namespace {

constexpr std::uint32_t kFormatVersion = 1;
constexpr std::array<unsigned char, 8> kMagic = {'P', 'T', 'V', 'S',
                                                 'T', 'A', 'T', 'E'};
constexpr std::size_t kKeyOffset = 32;
constexpr std::size_t kHeaderSumOffset = kHeaderBytes - 32;
constexpr std::size_t kStampsOffset = 24;
constexpr std::size_t kSlotSumOffset = kSlotBytes - 8;
// Bounds on the table's size in the settings (only tests change it).
constexpr std::uint32_t kMaxBucketCount = 1u << 16;
constexpr std::uint32_t kMaxSlotsPerBucket = 64;

static_assert(kStampsOffset + 4 * kMaxStampsPerRecord <= kSlotSumOffset);

void put32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

Sha256Digest slot_sum(const unsigned char* p) {
  return Sha256().update(p, kSlotSumOffset).finish();
}

Sha256Digest header_sum(const Header& h) {
  return Sha256().update(h.data(), kHeaderSumOffset).finish();
}

}  // namespace

std::uint32_t get32(const unsigned char* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) |
         (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}

Slot decode_slot(const unsigned char* p) {
  Slot s;
  if (std::all_of(p, p + kSlotBytes, [](unsigned char c) { return c == 0; }))
    return s;
  const Sha256Digest sum = slot_sum(p);
  const std::size_t stamps = p[1];
  s.kind = static_cast<Kind>(p[0]);
  s.damaged = !std::equal(p + kSlotSumOffset, p + kSlotBytes, sum.begin()) ||
              (s.kind != Kind::Send && s.kind != Kind::Grace) ||
              (s.kind == Kind::Send &&
               (stamps == 0 || stamps > kMaxStampsPerRecord));
  if (s.damaged) return s;
  std::copy(p + 8, p + 8 + kTagBytes, s.account.begin());
  if (s.kind == Kind::Send) {
    for (std::size_t i = 0; i < stamps; ++i)
      s.stamps.push_back(get32(p + kStampsOffset + 4 * i));
  } else {
    std::copy(p + kStampsOffset, p + kStampsOffset + kTagBytes,
              s.address.begin());
    s.created = get32(p + kStampsOffset + kTagBytes);
    s.until = get32(p + kStampsOffset + kTagBytes + 4);
  }
  return s;
}

SlotBytes encode_slot(const Slot& s) {
  SlotBytes b{};
  if (s.kind == Kind::Free || (s.kind == Kind::Send && s.stamps.empty()))
    return b;
  b[0] = static_cast<unsigned char>(s.kind);
  std::copy(s.account.begin(), s.account.end(), b.begin() + 8);
  if (s.kind == Kind::Send) {
    b[1] = static_cast<unsigned char>(s.stamps.size());
    for (std::size_t i = 0; i < s.stamps.size(); ++i)
      put32(b.data() + kStampsOffset + 4 * i, s.stamps[i]);
  } else {
    std::copy(s.address.begin(), s.address.end(), b.begin() + kStampsOffset);
    put32(b.data() + kStampsOffset + kTagBytes, s.created);
    put32(b.data() + kStampsOffset + kTagBytes + 4, s.until);
  }
  const Sha256Digest sum = slot_sum(b.data());
  std::copy(sum.begin(), sum.begin() + 8, b.begin() + kSlotSumOffset);
  return b;
}

bool fits_stamp(std::int64_t t) {
  return t >= 0 && t <= std::numeric_limits<std::uint32_t>::max();
}

std::string clock_problem(std::int64_t t) {
  return "the time " + std::to_string(t) +
         " is outside what the state file can hold (1970 to 2106): is the "
         "clock right?";
}

std::uint64_t slot_count(const SendLimitSettings& s) {
  return std::uint64_t{s.bucket_count} * s.slots_per_bucket;
}

std::expected<void, StateError> check_settings(const SendLimitSettings& s) {
  if (s.count < 1 || s.count > kMaxStampsPerRecord || s.window_s < 1)
    return state_error("send limit settings out of range");
  if (s.bucket_count < 1 || s.bucket_count > kMaxBucketCount ||
      s.slots_per_bucket < 1 || s.slots_per_bucket > kMaxSlotsPerBucket)
    return state_error("state table size out of range");
  return {};
}

std::string corrupt(const std::string& path, const std::string& why) {
  return "state file " + path + " is corrupt (" + why +
         "); no code is sent until it is replaced: remove it and run "
         "twilio-verify-state create (every count starts again)";
}

Header build_header(const SendLimitSettings& s, const Key& key) {
  Header h{};
  std::copy(kMagic.begin(), kMagic.end(), h.begin());
  put32(h.data() + 8, kFormatVersion);
  put32(h.data() + 12, kHeaderBytes);
  put32(h.data() + 16, s.bucket_count);
  put32(h.data() + 20, s.slots_per_bucket);
  put32(h.data() + 24, kSlotBytes);
  std::copy(key.begin(), key.end(), h.begin() + kKeyOffset);
  const Sha256Digest sum = header_sum(h);
  std::copy(sum.begin(), sum.end(), h.begin() + kHeaderSumOffset);
  return h;
}

std::expected<Key, StateError> parse_header(const SendLimitSettings& s,
                                            const Header& h,
                                            const std::string& path) {
  if (!std::equal(kMagic.begin(), kMagic.end(), h.begin()))
    return state_error(corrupt(path, "not a state file: bad magic"));
  const Sha256Digest sum = header_sum(h);
  if (!std::equal(sum.begin(), sum.end(), h.begin() + kHeaderSumOffset))
    return state_error(corrupt(path, "header checksum mismatch"));
  if (get32(h.data() + 8) != kFormatVersion)
    return state_error(corrupt(
        path, "format version " + std::to_string(get32(h.data() + 8)) +
                  ", this module reads version " +
                  std::to_string(kFormatVersion)));
  if (get32(h.data() + 12) != kHeaderBytes ||
      get32(h.data() + 16) != s.bucket_count ||
      get32(h.data() + 20) != s.slots_per_bucket ||
      get32(h.data() + 24) != kSlotBytes)
    return state_error(corrupt(path, "a table of another size"));
  Key key;
  std::copy(h.begin() + kKeyOffset, h.begin() + kKeyOffset + kKeyBytes,
            key.begin());
  return key;
}

}  // namespace statefile

std::uint64_t state_file_size(const SendLimitSettings& settings) {
  using namespace statefile;
  return kHeaderBytes + slot_count(settings) * kSlotBytes;
}

}  // namespace ptv
