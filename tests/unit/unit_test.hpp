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
