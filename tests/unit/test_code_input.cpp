// Validation of the typed code before anything reaches the network.
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/code_input.hpp"
#include "unit_test.hpp"

using ptv::CodeProblem;

namespace {

void expect_valid(std::string_view typed, std::string_view code,
                  const char* file, int line) {
  const ptv::CodeCheck r = ptv::check_typed_code(typed);
  if (r.problem != CodeProblem::None) {
    print_error("refused (%s): \"%s\"\n", ptv::describe(r.problem),
                std::string(typed).c_str());
    _fail(file, line);
  }
  ptv_test::check_equal(r.code.view(), code, "code", file, line);
}
#define VALID(typed, code) expect_valid((typed), (code), __FILE__, __LINE__)

// Every input of `typed` is refused for `want`, and leaves no code behind.
void expect_problems(CodeProblem want, std::initializer_list<std::string_view> typed,
                     const char* file, int line) {
  for (std::string_view t : typed) {
    const ptv::CodeCheck r = ptv::check_typed_code(t);
    if (r.problem != want) {
      print_error("\"%s\": got \"%s\", expected \"%s\"\n", std::string(t).c_str(),
                  ptv::describe(r.problem), ptv::describe(want));
      _fail(file, line);
    }
    if (!r.code.empty()) {
      print_error("\"%s\": a refused input left a code behind\n",
                  std::string(t).c_str());
      _fail(file, line);
    }
  }
}
#define PROBLEMS(want, ...) \
  expect_problems((want), {__VA_ARGS__}, __FILE__, __LINE__)

void test_valid_lengths(void**) {
  VALID("1234", "1234");
  VALID("123456", "123456");
  VALID("1234567890", "1234567890");
  VALID("0000", "0000");
}

void test_whitespace_trimmed(void**) {
  VALID("  123456", "123456");
  VALID("123456\n", "123456");
  VALID("\t123456\r\n", "123456");
  VALID(" \t\n\r\v\f987654 \t\n", "987654");
}

void test_too_short_and_too_long(void**) {
  PROBLEMS(CodeProblem::TooShort, "123", "1", "  123  ");
  PROBLEMS(CodeProblem::TooLong, "12345678901", " 12345678901\n");
}

void test_not_digits(void**) {
  PROBLEMS(CodeProblem::NotDigits,
           "12a456",
           "abcdef",
           "123 456",  // inner space
           "123\t456",  // inner tab
           "-123456",
           "+123456",
           "12345.6",
           "0x1234");
}

void test_empty(void**) {
  PROBLEMS(CodeProblem::Empty, "", " ", "   \t\r\n  ");
}

void test_non_ascii(void**) {
  // Full-width and Arabic-Indic digits are not ASCII digits.
  PROBLEMS(CodeProblem::NotDigits,
           "\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94",
           "\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4",
           "1234\xff",
           "\x80" "123456",
           "12\xc2\xa0" "3456",  // no-break space
           "\xc2\xa0" "123456");
}

void test_control_characters(void**) {
  PROBLEMS(CodeProblem::NotDigits,
           std::string_view("1234\0" "56", 7),
           std::string_view("\0" "123456", 7),
           "123456\x1b[A",
           "1234\x7f",
           "\x08" "123456",
           "123456\x03");
}

void test_huge_input(void**) {
  PROBLEMS(CodeProblem::TooLong, std::string(10000, '1'));
  PROBLEMS(CodeProblem::NotDigits, std::string(10000, 'a'));
  PROBLEMS(CodeProblem::Empty, std::string(10000, ' '));
  VALID(std::string(5000, ' ') + "123456" + std::string(5000, '\n'), "123456");
}

// The SSH server sends this as the "password" of an invalid user.
void test_ssh_invalid_user_password(void**) {
  PROBLEMS(CodeProblem::NotDigits, "\b\n\r\177INCORRECT");
  VALID("\n\r123456\n\r", "123456");
}

// resend and call, in any case, with blanks around them: a request, never
// a code; anything near them is input that is not a code.
void test_words(void**) {
  using ptv::CodeRequest;
  const std::pair<const char*, CodeRequest> words[] = {
      {"resend", CodeRequest::Resend}, {"RESEND", CodeRequest::Resend},
      {" \tReSend\r\n", CodeRequest::Resend}, {"call", CodeRequest::Call},
      {"  Call ", CodeRequest::Call}, {"CALL\n", CodeRequest::Call}};
  for (const auto& [typed, want] : words) {
    assert_true(ptv::typed_request(typed) == want);
    const ptv::CodeCheck r = ptv::check_typed_code(typed);
    assert_true(r.request == want);
    assert_true(r.problem == CodeProblem::NotDigits);
    assert_true(r.code.empty());
  }
  for (const char* typed : {"resends", "re send", "resend!", "calls", "cal",
                            "call me", "r\xc3\xa9send", "", "123456", "sms",
                            "\xc4\xb1resend"}) {
    assert_true(ptv::typed_request(typed) == CodeRequest::None);
    assert_true(ptv::check_typed_code(typed).request == CodeRequest::None);
  }
  assert_true(ptv::typed_request(std::string_view("resend\0", 7)) == CodeRequest::None);
  assert_true(ptv::check_typed_code("918273").request == CodeRequest::None);
  assert_string_equal(ptv::describe(CodeRequest::Resend), "resend");
  assert_string_equal(ptv::describe(CodeRequest::Call), "call");
}

void test_describe(void**) {
  for (CodeProblem p : {CodeProblem::None, CodeProblem::Empty,
                        CodeProblem::NotDigits, CodeProblem::TooShort,
                        CodeProblem::TooLong}) {
    assert_non_null(ptv::describe(p));
    assert_true(ptv::describe(p)[0] != '\0');
  }
  assert_string_equal(ptv::describe(CodeProblem::None), "valid");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_lengths),
      cmocka_unit_test(test_whitespace_trimmed),
      cmocka_unit_test(test_too_short_and_too_long),
      cmocka_unit_test(test_not_digits),
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_non_ascii),
      cmocka_unit_test(test_control_characters),
      cmocka_unit_test(test_huge_input),
      cmocka_unit_test(test_ssh_invalid_user_password),
      cmocka_unit_test(test_words),
      cmocka_unit_test(test_describe),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
