// The text of the SMS that carries the code (messaging.body): its check at
// load time and the message it makes at each send. Shared by the settings
// (which refuse a body that cannot work) and the Messaging sender.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "util/secret.hpp"

namespace ptv {

// The longest short host name the check assumes (HOST_NAME_MAX on Linux):
// a body accepted on one host fits on every host, whatever its name.
inline constexpr std::size_t kMaxShortHostName = 64;
// One SMS segment: 160 GSM-7 septets, or 70 UCS-2 units when any
// character is outside GSM-7.
inline constexpr std::size_t kGsm7SegmentLength = 160;
inline constexpr std::size_t kUcs2SegmentLength = 70;

// The length of a text in one SMS: GSM-7 septets (an extension character
// such as "{" or "€" counts 2) when every character is GSM-7, else UCS-2
// units. Nothing for text that is not UTF-8.
struct SmsLength {
  bool gsm7 = true;
  std::size_t units = 0;
};
std::optional<SmsLength> sms_length(std::string_view utf8);

// Why a body cannot be used (%c not exactly once, an escape other than %c,
// %h and %%, not UTF-8, or more than one segment once a code of
// `code_length` digits and a host name of kMaxShortHostName characters are
// put in); nothing when it is fine.
std::optional<std::string> body_problem(std::string_view body,
                                        std::size_t code_length);

// The message: the body with %c the code, %h the host's short name and %%
// a percent sign. It holds the code: a Secret.
Secret render_body(std::string_view body, std::string_view code,
                   std::string_view host);

// gethostname() up to the first '.'; "localhost" when it fails.
std::string short_host_name();

}  // namespace ptv
