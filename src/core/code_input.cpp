#include "core/code_input.hpp"

namespace ptv {

namespace {
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}
}  // namespace

CodeCheck check_typed_code(std::string_view typed) {
  CodeCheck result;
  while (!typed.empty() && is_space(typed.front())) typed.remove_prefix(1);
  while (!typed.empty() && is_space(typed.back())) typed.remove_suffix(1);
  if (typed.empty()) {
    result.problem = CodeProblem::Empty;
    return result;
  }
  for (char c : typed) {
    if (c < '0' || c > '9') {
      result.problem = CodeProblem::NotDigits;
      return result;
    }
  }
  if (typed.size() < kMinCodeLength) {
    result.problem = CodeProblem::TooShort;
  } else if (typed.size() > kMaxCodeLength) {
    result.problem = CodeProblem::TooLong;
  } else {
    result.problem = CodeProblem::None;
    result.code.reserve(kMaxCodeLength + 1);
    result.code.append(typed);
  }
  return result;
}

const char* describe(CodeProblem problem) {
  switch (problem) {
    case CodeProblem::None:
      return "valid";
    case CodeProblem::Empty:
      return "empty input";
    case CodeProblem::NotDigits:
      return "input is not all digits";
    case CodeProblem::TooShort:
      return "input shorter than 4 digits";
    case CodeProblem::TooLong:
      return "input longer than 10 digits";
    case CodeProblem::IsPassword:
      return "input equals the password given earlier in the stack";
  }
  return "invalid input";
}

}  // namespace ptv
