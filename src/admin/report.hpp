// The output of the commands: one line per check or step, "ok ..." or
// "FAIL ..." (the problem, naming the setting to fix); warnings that do not
// fail; the exit status that follows from them.
#pragma once

#include <string_view>

namespace ptv::admin {

class Report {
 public:
  explicit Report(bool quiet = false) : quiet_(quiet) {}
  void ok(std::string_view line);
  void problem(std::string_view line);
  // Printed even with --quiet; does not fail the command.
  void warning(std::string_view line);
  // A line that is neither (a heading, a value), not printed with --quiet.
  void info(std::string_view line);
  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] int exit_status() const;

 private:
  bool quiet_;
  bool failed_ = false;
};

}  // namespace ptv::admin
