#include "twilio/messaging_code.hpp"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace ptv {

std::expected<void, std::string> system_random(unsigned char* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = getrandom(out + done, n - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(std::string("getrandom: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(got);
  }
  return {};
}

std::expected<Secret, std::string> generate_code(std::size_t length,
                                                 RandomBytes random) {
  constexpr unsigned kLimit = 250;  // 25 * 10: every digit 25 bytes
  Secret code;
  code.reserve(length + 1);
  std::array<unsigned char, 32> pool{};
  while (code.size() < length) {
    if (auto ok = random(pool.data(), pool.size()); !ok) {
      wipe_memory(pool.data(), pool.size());
      code.wipe();
      return std::unexpected(ok.error());
    }
    for (unsigned char b : pool)
      if (b < kLimit && code.size() < length)
        code.push_back(static_cast<char>('0' + b % 10));
  }
  wipe_memory(pool.data(), pool.size());
  return code;
}

bool codes_equal(std::string_view expected, std::string_view typed,
                 std::size_t* byte_operations) {
  std::array<unsigned char, kMaxCompareLength> a{};
  std::array<unsigned char, kMaxCompareLength> b{};
  // Longer inputs are cut (and then differ by their lengths below); the
  // callers pass at most 10 digits.
  std::memcpy(a.data(), expected.data(), std::min(expected.size(), a.size()));
  std::memcpy(b.data(), typed.data(), std::min(typed.size(), b.size()));
  volatile unsigned diff = 0;
  std::size_t ops = 0;
  for (std::size_t i = 0; i < kMaxCompareLength; ++i) {
    diff = diff | static_cast<unsigned>(a[i] ^ b[i]);
    ++ops;
  }
  // The lengths, without a branch: any difference sets a bit.
  const std::size_t lengths = expected.size() ^ typed.size();
  diff = diff | static_cast<unsigned>((lengths | (lengths >> 32)) & 0xFFFFFFFFu);
  wipe_memory(a.data(), a.size());
  wipe_memory(b.data(), b.size());
  if (byte_operations != nullptr) *byte_operations = ops;
  return diff == 0;
}

}  // namespace ptv
