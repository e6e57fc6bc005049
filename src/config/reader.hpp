// Reading one setting of the parsed file: its value as the right type, and
// errors that name the file, the line and the setting's path. libconfig
// parsed the masked text (config_strings.hpp), so a string's real value
// comes from the table of literals, never from libconfig.
#pragma once

#include <libconfig.h>

#include <expected>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/config_strings.hpp"
#include "util/secret.hpp"

namespace ptv {

using ConfigResult = std::expected<void, ConfigError>;

class Reader {
 public:
  Reader(std::string_view name, const ConfigStrings& strings)
      : name_(name), text_(strings.masked_text().view()), strings_(strings) {}

  // "file:line: path: what" (the line and path where known).
  [[nodiscard]] ConfigError error(const config_setting_t* s,
                                  std::string_view what) const;
  // "file: what", for what concerns the file as a whole.
  [[nodiscard]] ConfigError file_error(std::string_view what) const;

  // The value of a string setting, straight from the table into a Secret.
  [[nodiscard]] std::expected<Secret, ConfigError> string_value(
      const config_setting_t* s) const;
  // The value of a string setting that is not a secret.
  [[nodiscard]] std::expected<std::string, ConfigError> string(
      const config_setting_t* s) const;
  // A whole number within [min, max], exactly as written.
  [[nodiscard]] std::expected<long long, ConfigError> integer(
      const config_setting_t* s, long long min, long long max) const;
  [[nodiscard]] std::expected<bool, ConfigError> boolean(
      const config_setting_t* s) const;

 private:
  [[nodiscard]] bool literal_matches(const config_setting_t* s,
                                     long long value) const;
  [[nodiscard]] std::string_view line_of(int line) const;

  std::string_view name_;
  // The masked text: the same lines as the file, with literals and comments
  // emptied, so that literal_matches() cannot be misled by a setting name
  // written inside a string or a comment on the same line.
  std::string_view text_;
  const ConfigStrings& strings_;
};

// A setting's dotted path ("twilio.timeout_ms").
std::string setting_path(const config_setting_t* s);

}  // namespace ptv
