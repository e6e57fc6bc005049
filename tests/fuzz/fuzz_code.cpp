// check_typed_code on arbitrary bytes: only 4 to 10 ASCII digits, taken
// unchanged from the trimmed input, may ever be accepted.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/code_input.hpp"
#include "fuzz_common.hpp"

namespace {
bool space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view typed(reinterpret_cast<const char*>(data), size);
  std::string_view trimmed = typed;
  while (!trimmed.empty() && space(trimmed.front())) trimmed.remove_prefix(1);
  while (!trimmed.empty() && space(trimmed.back())) trimmed.remove_suffix(1);

  const ptv::CodeCheck r = ptv::check_typed_code(typed);
  FUZZ_CHECK(ptv::describe(r.problem) != nullptr);
  FUZZ_CHECK(r.problem != ptv::CodeProblem::IsPassword);
  const bool valid = trimmed.size() >= 4 && trimmed.size() <= 10 &&
                     ptv_fuzz::all_digits(trimmed);
  if (r.problem == ptv::CodeProblem::None) {
    const std::string_view code = r.code.view();
    FUZZ_CHECK(code.size() >= 4 && code.size() <= 10);
    FUZZ_CHECK(ptv_fuzz::all_digits(code));
    FUZZ_CHECK(code == trimmed);  // every digit came from the input
  } else {
    FUZZ_CHECK(r.code.empty());
  }
  FUZZ_CHECK(valid == (r.problem == ptv::CodeProblem::None));
  FUZZ_CHECK(trimmed.empty() == (r.problem == ptv::CodeProblem::Empty));
  if (!trimmed.empty() && ptv_fuzz::all_digits(trimmed)) {
    if (trimmed.size() < 4) FUZZ_CHECK(r.problem == ptv::CodeProblem::TooShort);
    if (trimmed.size() > 10) FUZZ_CHECK(r.problem == ptv::CodeProblem::TooLong);
  }
  if (!ptv_fuzz::all_digits(trimmed))
    FUZZ_CHECK(r.problem == ptv::CodeProblem::NotDigits);
  return 0;
}
