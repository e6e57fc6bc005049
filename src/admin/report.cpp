#include "admin/report.hpp"

#include <cstdio>

#include "admin/admin.hpp"

namespace ptv::admin {

namespace {

void print(std::string_view prefix, std::string_view line) {
  std::printf("%.*s%.*s\n", static_cast<int>(prefix.size()), prefix.data(),
              static_cast<int>(line.size()), line.data());
  std::fflush(stdout);
}

}  // namespace

void Report::ok(std::string_view line) {
  if (!quiet_) print("ok ", line);
}

void Report::problem(std::string_view line) {
  failed_ = true;
  print("FAIL ", line);
}

void Report::warning(std::string_view line) { print("warning ", line); }

void Report::info(std::string_view line) {
  if (!quiet_) print("", line);
}

int Report::exit_status() const { return failed_ ? kFailed : kOk; }

}  // namespace ptv::admin
