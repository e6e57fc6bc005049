#include "twilio/message_body.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace ptv {

namespace {

// The characters of GSM 03.38's basic set outside printable ASCII.
constexpr std::array<char32_t, 39> kGsmBasicExtra = {
    0xA3, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0xD8, 0xF8,
    0xC5, 0xE5, 0x394, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3,
    0x398, 0x39E, 0xC6, 0xE6, 0xDF, 0xC9, 0xA4, 0xA1, 0xC4, 0xD6,
    0xD1, 0xDC, 0xA7, 0xBF, 0xE4, 0xF6, 0xF1, 0xFC, 0xE0};

// Septets of one character in GSM-7: 1, 2 (the extension table), or 0 when
// it is not GSM-7.
int gsm_septets(char32_t c) {
  constexpr std::u32string_view kExtension = U"\f^{}\\[~]|\u20AC";
  if (kExtension.find(c) != std::u32string_view::npos) return 2;
  if (c == '\n' || c == '\r') return 1;
  if (c >= 0x20 && c <= 0x7E) return c == '`' ? 0 : 1;
  return std::find(kGsmBasicExtra.begin(), kGsmBasicExtra.end(), c) !=
                 kGsmBasicExtra.end()
             ? 1
             : 0;
}

// The next code point of UTF-8 text at i (advanced); nothing when the text
// is not UTF-8 there.
std::optional<char32_t> next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i++]);
  if (b0 < 0x80) return b0;
  int more = b0 >= 0xF0 && b0 <= 0xF4 ? 3 : b0 >= 0xE0 ? 2 : b0 >= 0xC2 ? 1 : -1;
  if (more < 0 || b0 > 0xF4) return std::nullopt;
  char32_t c = b0 & (0x3F >> more);
  for (int k = 0; k < more; ++k) {
    if (i >= s.size()) return std::nullopt;
    const auto b = static_cast<unsigned char>(s[i++]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    c = (c << 6) | (b & 0x3F);
  }
  const char32_t min = more == 1 ? 0x80 : more == 2 ? 0x800 : 0x10000;
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return std::nullopt;
  return c;
}

}  // namespace

std::optional<SmsLength> sms_length(std::string_view utf8) {
  std::size_t septets = 0;
  std::size_t ucs2 = 0;
  bool gsm7 = true;
  for (std::size_t i = 0; i < utf8.size();) {
    const auto c = next_code_point(utf8, i);
    if (!c) return std::nullopt;
    const int n = gsm_septets(*c);
    if (n == 0) gsm7 = false;
    septets += static_cast<std::size_t>(n);
    ucs2 += *c > 0xFFFF ? 2 : 1;
  }
  return SmsLength{gsm7, gsm7 ? septets : ucs2};
}

std::optional<std::string> body_problem(std::string_view body,
                                        std::size_t code_length) {
  int codes = 0;
  std::string fixed;  // the body with %h and %c left out, %% as %
  std::size_t hosts = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '%') {
      fixed.push_back(body[i]);
      continue;
    }
    const char e = i + 1 < body.size() ? body[++i] : '\0';
    if (e == 'c') {
      ++codes;
    } else if (e == 'h') {
      ++hosts;
    } else if (e == '%') {
      fixed.push_back('%');
    } else {
      return "has a \"%\" that is not %c (the code), %h (the host's short "
             "name) or %% (a percent sign)";
    }
  }
  if (codes != 1)
    return codes == 0 ? "must hold %c, where the code goes"
                      : "holds %c more than once; the code goes in once";
  const auto length = sms_length(fixed);
  if (!length) return "is not UTF-8 text";
  const std::size_t units =
      length->units + code_length + hosts * kMaxShortHostName;
  const std::size_t max = length->gsm7 ? kGsm7SegmentLength : kUcs2SegmentLength;
  if (units <= max) return std::nullopt;
  return "is " + std::to_string(units) + " characters with a " +
         std::to_string(code_length) + "-digit code" +
         (hosts > 0 ? " and a host name of " + std::to_string(kMaxShortHostName) +
                          " characters"
                    : std::string()) +
         "; one SMS holds " + std::to_string(max) +
         (length->gsm7 ? " GSM-7 characters"
                       : " characters when any is outside GSM-7");
}

Secret render_body(std::string_view body, std::string_view code,
                   std::string_view host) {
  Secret out;
  // Room for every escape, so that no reallocation leaves a copy behind.
  const auto escapes = static_cast<std::size_t>(std::count(body.begin(), body.end(), '%'));
  out.reserve(body.size() + escapes * (code.size() + host.size()) + 1);
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '%' || i + 1 == body.size()) {
      out.push_back(body[i]);
      continue;
    }
    const char e = body[++i];
    if (e == 'c') {
      out.append(code);
    } else if (e == 'h') {
      out.append(host);
    } else {
      out.push_back(e);  // %% (the only other escape the check lets by)
    }
  }
  return out;
}

std::string short_host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  std::string_view n(name.data());
  n = n.substr(0, std::min(n.find('.'), kMaxShortHostName));
  return n.empty() ? std::string("localhost") : std::string(n);
}

}  // namespace ptv
