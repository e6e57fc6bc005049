// Logging behind a small interface: the module writes through pam_syslog
// (pam/pam_io.hpp), the helper relays its lines to the module, and unit
// tests and fuzzers capture or discard them; and the escaping that makes
// any value safe for one log line.
#pragma once

#include <syslog.h>

#include <string>
#include <string_view>


namespace ptv {

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(int priority, std::string_view message) = 0;
  void error(std::string_view m) { log(LOG_ERR, m); }
  void warning(std::string_view m) { log(LOG_WARNING, m); }
  void notice(std::string_view m) { log(LOG_NOTICE, m); }
  void info(std::string_view m) { log(LOG_INFO, m); }
  void debug(std::string_view m) {
    if (debug_enabled_) log(LOG_DEBUG, m);
  }
  void set_debug(bool on) { debug_enabled_ = on; }
  [[nodiscard]] bool debug_enabled() const { return debug_enabled_; }

 private:
  bool debug_enabled_ = false;
};


// Makes a value safe for one log line, without making two values look the
// same: every byte outside printable ASCII becomes \xNN, a backslash
// becomes \\, and a value longer than max_len bytes is cut there and
// marked with \... (which no escaped value can contain).
std::string log_safe(std::string_view value, std::size_t max_len = 64);

// The same for a name=value field of the outcome line (user names, service
// names): spaces and '=' are escaped too, so that a name cannot forge a
// field.
std::string log_token(std::string_view value, std::size_t max_len = 64);

}  // namespace ptv
