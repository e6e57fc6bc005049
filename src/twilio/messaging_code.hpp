// The code of the Messaging backend, made and checked by the helper: drawn
// from getrandom() by rejection sampling, kept only in a Secret, compared
// in constant time.
#pragma once

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

#include "util/secret.hpp"

namespace ptv {

// Source of random bytes: getrandom() (retried on EINTR) in the helper; an
// error text when it fails (never a weaker fallback). Tests pass their own.
using RandomBytes = std::expected<void, std::string> (*)(unsigned char* out,
                                                         std::size_t n);
std::expected<void, std::string> system_random(unsigned char* out, std::size_t n);

// `length` decimal digits, uniform over all strings of that length: each
// digit from a byte below 250 (the largest multiple of 10 that fits), a
// byte of 250 or more is drawn again.
std::expected<Secret, std::string> generate_code(std::size_t length,
                                                 RandomBytes random = system_random);

// The longest code the comparison handles (the typed code's limit too).
inline constexpr std::size_t kMaxCompareLength = 16;

// True when typed equals expected. The same work for every input of at most
// kMaxCompareLength bytes: both are copied into zero-padded buffers of that
// size, every byte is compared, the lengths are folded in arithmetically,
// with no early exit and no branch on their content. `byte_operations`,
// when given, counts the byte comparisons (for the tests).
bool codes_equal(std::string_view expected, std::string_view typed,
                 std::size_t* byte_operations = nullptr);

}  // namespace ptv
