// The bytes of state.v1 (format in send_limit.hpp): header, slots, checksums.
//
// Everything here is pure: encoding and decoding, the header's checks,
// the range of a stored time. Reading and writing the file is
// locked_file.hpp's; which slots an account uses is records.hpp's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <utility>
#include <vector>

#include "core/send_gate.hpp"
#include "state/send_limit.hpp"

namespace ptv::statefile {

constexpr std::size_t kHeaderBytes = 4096;
constexpr std::size_t kSlotBytes = 512;
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kTagBytes = 16;

// The error of the state layer, as a return value.
inline std::unexpected<StateError> state_error(std::string detail) {
  return std::unexpected(StateError{std::move(detail)});
}

std::uint32_t get32(const unsigned char* p);

// ------------------------------------------------------------------ slots

enum class Kind : unsigned char { Free = 0, Send = 1, Grace = 2 };
using Tag = std::array<unsigned char, kTagBytes>;
using SlotBytes = std::array<unsigned char, kSlotBytes>;

struct Slot {
  Kind kind = Kind::Free;
  bool damaged = false;  // failed its checksum, or makes no sense
  Tag account{};
  std::vector<std::uint32_t> stamps;  // Send, oldest first
  Tag address{};                      // Grace
  std::uint32_t created = 0, until = 0;
};

Slot decode_slot(const unsigned char* p);
// A free slot (or a send record without sends) is 512 zero bytes.
SlotBytes encode_slot(const Slot& s);

// Times are stored as uint32 seconds (until 2106).
bool fits_stamp(std::int64_t t);
std::string clock_problem(std::int64_t t);

// ----------------------------------------------------------------- header

using Header = std::array<unsigned char, kHeaderBytes>;
using Key = std::array<unsigned char, kKeyBytes>;

std::uint64_t slot_count(const SendLimitSettings& s);
// The settings' limit and table size are within what the format holds.
std::expected<void, StateError> check_settings(const SendLimitSettings& s);

Header build_header(const SendLimitSettings& s, const Key& key);
// The key of a header that is valid for these settings.
std::expected<Key, StateError> parse_header(const SendLimitSettings& s,
                                            const Header& h,
                                            const std::string& path);

// The text of a corrupt state file, with what to do about it.
std::string corrupt(const std::string& path, const std::string& why);

}  // namespace ptv::statefile
