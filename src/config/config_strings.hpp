// The string literals of a configuration text, taken out before libconfig
// sees the text.
//
// libconfig's scanner (flex) copies the whole text into a buffer of its own
// and builds each string token in a growing buffer (realloc leaves the old
// copies behind); it frees all of them without wiping. Whatever held a
// secret there (the auth token, the API key secret, the LDAP bind
// password) would stay in freed heap after every login. So libconfig is
// never given a real string value: our scanner, which follows libconfig
// 1.5's lexer rules (lib/scanner.l), finds every literal, decodes it into a
// Secret held here, and writes in its place a placeholder that only names
// the literal's index:
//
//   auth_token = "s3cr\x65t";   becomes   auth_token = "@4;";
//
// A literal that spans lines keeps its newlines inside the placeholder
// ("@4;\n\n"), so that libconfig counts the same lines and reports the
// same line numbers. Adjacent literals ("a" "b"), which libconfig
// concatenates, arrive as "@4;@5;", and value_of() concatenates the
// literals they name. Comments are blanked too (kept as "#", "//",
// "/*" ... "*/" around spaces and their newlines): a commented-out old
// token would otherwise reach libconfig's buffer just the same.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/secret.hpp"

namespace ptv {

class ConfigStrings {
 public:
  // Scans `text` (which must hold no NUL byte: the caller refuses those).
  // Never fails: an unterminated literal or comment is masked as it
  // stands (a literal keeps no closing quote), so that libconfig reports
  // the very error, at the very line, it would report for `text`.
  static ConfigStrings mask(std::string_view text);

  // The text to give libconfig, NUL-terminated by c_str(): every literal
  // replaced by its placeholder, comments blanked. It holds no string
  // value, but is wiped all the same (a secret written without quotes, a
  // syntax error, would sit here).
  [[nodiscard]] const Secret& masked_text() const noexcept { return masked_; }

  [[nodiscard]] std::size_t literal_count() const noexcept {
    return literals_.size();
  }
  // The decoded value of literal `index` (below literal_count()), as
  // libconfig would have held it.
  [[nodiscard]] const Secret& literal(std::size_t index) const {
    return literals_[index];
  }

  // The real value of a string setting that libconfig parsed from
  // masked_text(): the concatenation of the literals its placeholders name.
  // Nothing when `masked_value` is not one or more placeholders of this
  // table, which no string parsed from masked_text() can be.
  [[nodiscard]] std::optional<Secret> value_of(
      std::string_view masked_value) const;

 private:
  Secret masked_;
  std::vector<Secret> literals_;
};

// The placeholder that stands for literal `index` ("@7;"), without quotes.
std::string config_placeholder(std::size_t index);

}  // namespace ptv
