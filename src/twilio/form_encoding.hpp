// application/x-www-form-urlencoded bodies and URL path segments.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/secret.hpp"

namespace ptv {

// Percent-encodes everything but ALPHA / DIGIT / "-" / "." / "_" / "~";
// with form = true a space becomes "+", as HTML forms and Twilio expect.
void append_encoded(std::string& out, std::string_view value, bool form);

std::string url_encode(std::string_view value);

struct FormField {
  std::string_view name;
  std::string_view value;
};

// Builds "a=1&b=2" into a Secret, because bodies may carry the typed code.
Secret form_encode(const std::vector<FormField>& fields);

}  // namespace ptv
