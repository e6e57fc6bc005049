// SHA-256 and HMAC-SHA-256, written out so that the module needs no libcrypto.
//
// SHA-256 as FIPS 180-4 defines it, HMAC as RFC 2104 does. The state file
// (state/) uses them for its checksums and its keyed account tags; the
// test vectors are in tests/unit/test_sha256.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace ptv {

using Sha256Digest = std::array<unsigned char, 32>;

// SHA-256 over data given in pieces (the HMAC hashes a key block and the
// message one after the other).
class Sha256 {
 public:
  Sha256& update(const unsigned char* data, std::size_t size);
  Sha256& update(std::string_view data) {
    return update(reinterpret_cast<const unsigned char*>(data.data()),
                  data.size());
  }
  // The digest of everything given so far; the object is spent after it.
  Sha256Digest finish();

 private:
  std::array<std::uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                     0xa54ff53a, 0x510e527f, 0x9b05688c,
                                     0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> block_{};
  std::size_t used_ = 0;
  std::uint64_t total_ = 0;
};

// HMAC-SHA-256 of the concatenated parts under key.
Sha256Digest hmac_sha256(std::string_view key,
                         std::initializer_list<std::string_view> parts);

// SHA-256 of the bytes, as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

// HMAC-SHA-256 of data under key, as 64 lowercase hex digits.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace ptv
