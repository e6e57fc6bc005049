// Shared helpers for the unit tests: the cmocka include sequence and
// string assertions that print both sides when they fail.
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

// cmocka defines a fail() macro that breaks standard headers included after
// it (std::basic_ios::fail): include them first.
#include <chrono>
#include <expected>
#include <functional>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <thread>

extern "C" {
#include <cmocka.h>
}

#include <string>
#include <string_view>

namespace ptv_test {

inline void check_contains(std::string_view haystack, std::string_view needle,
                           bool want, const char* expr, const char* file,
                           int line) {
  const bool found = haystack.find(needle) != std::string_view::npos;
  if (found == want) return;
  const std::string h(haystack);
  const std::string n(needle);
  print_error("%s: \"%s\" %s \"%s\"\n", expr, h.c_str(),
              want ? "does not contain" : "unexpectedly contains", n.c_str());
  _fail(file, line);
}

inline void check_equal(std::string_view actual, std::string_view expected,
                        const char* expr, const char* file, int line) {
  if (actual == expected) return;
  const std::string a(actual);
  const std::string e(expected);
  print_error("%s: \"%s\" != expected \"%s\"\n", expr, a.c_str(), e.c_str());
  _fail(file, line);
}

// One case of a function of one string: its input, and what it must
// return (assert_each_eq) or contain (assert_each_contains).
struct StringCase {
  std::string_view input;
  std::string_view expected;
};

// Checks `f` on every case; a failure names the function and the input.
template <typename F>
void check_each(F&& f, std::initializer_list<StringCase> cases, bool contains,
                const char* fn, const char* file, int line) {
  for (const StringCase& c : cases) {
    const std::string expr = std::string(fn) + "(\"" + std::string(c.input) + "\")";
    const std::string actual(f(c.input));
    if (contains)
      check_contains(actual, c.expected, true, expr.c_str(), file, line);
    else
      check_equal(actual, c.expected, expr.c_str(), file, line);
  }
}

}  // namespace ptv_test

// assert_contains(std::string-like, "needle")
#define assert_contains(haystack, needle)                                  \
  ptv_test::check_contains((haystack), (needle), true, #haystack, __FILE__, \
                           __LINE__)
#define assert_not_contains(haystack, needle)                               \
  ptv_test::check_contains((haystack), (needle), false, #haystack, __FILE__, \
                           __LINE__)
// Compares std::string / string_view / const char* values.
#define assert_str_eq(actual, expected) \
  ptv_test::check_equal((actual), (expected), #actual, __FILE__, __LINE__)
// A table of cases of a function of one string, each {input, expected}:
// assert_each_eq(ptv::mask_phone, {"+15551234567", "+1******4567"}, ...)
#define assert_each_eq(fn, ...)                                              \
  ptv_test::check_each([](std::string_view in) { return fn(in); },           \
                       {__VA_ARGS__}, false, #fn, __FILE__, __LINE__)
#define assert_each_contains(fn, ...)                                        \
  ptv_test::check_each([](std::string_view in) { return fn(in); },           \
                       {__VA_ARGS__}, true, #fn, __FILE__, __LINE__)
