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

struct CodeCheck {
  CodeProblem problem = CodeProblem::Empty;
  Secret code;  // the trimmed digits when problem == None
};

// Trims surrounding white space; the rest must be 4 to 10 ASCII digits.
CodeCheck check_typed_code(std::string_view typed);

const char* describe(CodeProblem problem);

}  // namespace ptv
