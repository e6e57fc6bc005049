// Validation of the code the user typed, before anything reaches the network.
#pragma once

#include <string_view>

#include "util/secret.hpp"

namespace ptv {

inline constexpr std::size_t kMinCodeLength = 4;
inline constexpr std::size_t kMaxCodeLength = 10;

enum class CodeProblem {
  None,
  Empty,
  NotDigits,
  TooShort,
  TooLong,
  IsPassword,  // the reply is the password given earlier in the stack
};

// A word typed at the code prompt instead of a code: `resend` sends the
// code again on the same channel, `call` by a voice call. It crosses to the
// helper as a request, never as a code.
enum class CodeRequest { None, Resend, Call };

struct CodeCheck {
  CodeProblem problem = CodeProblem::Empty;
  Secret code;  // the trimmed digits when problem == None
  // A word instead of a code (problem is then NotDigits and code empty).
  CodeRequest request = CodeRequest::None;
};

// Trims surrounding white space; the rest must be 4 to 10 ASCII digits, or
// one of the words `resend` and `call` in any case.
CodeCheck check_typed_code(std::string_view typed);

// The word typed, surrounding white space and case ignored; None for
// anything else.
CodeRequest typed_request(std::string_view typed);

const char* describe(CodeProblem problem);
const char* describe(CodeRequest request);

}  // namespace ptv
