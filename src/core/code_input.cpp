#include "core/code_input.hpp"

namespace ptv {

namespace {
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}
std::string_view trimmed(std::string_view typed) {
  while (!typed.empty() && is_space(typed.front())) typed.remove_prefix(1);
  while (!typed.empty() && is_space(typed.back())) typed.remove_suffix(1);
  return typed;
}

bool same_word(std::string_view typed, std::string_view word) {
  if (typed.size() != word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const char c = typed[i];
    const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != word[i]) return false;
  }
  return true;
}

}  // namespace

CodeRequest typed_request(std::string_view typed) {
  typed = trimmed(typed);
  if (same_word(typed, "resend")) return CodeRequest::Resend;
  if (same_word(typed, "call")) return CodeRequest::Call;
  return CodeRequest::None;
}

CodeCheck check_typed_code(std::string_view typed) {
  CodeCheck result;
  typed = trimmed(typed);
  result.request = typed_request(typed);
  if (result.request != CodeRequest::None) {
    result.problem = CodeProblem::NotDigits;
    return result;
  }
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

const char* describe(CodeRequest request) {
  switch (request) {
    case CodeRequest::None:
      return "none";
    case CodeRequest::Resend:
      return "resend";
    case CodeRequest::Call:
      return "call";
  }
  return "request";
}

}  // namespace ptv
