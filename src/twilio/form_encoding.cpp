#include "twilio/form_encoding.hpp"

namespace ptv {

namespace {
bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}
constexpr char kHex[] = "0123456789ABCDEF";
}  // namespace

void append_encoded(std::string& out, std::string_view value, bool form) {
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else if (form && c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    }
  }
}

std::string url_encode(std::string_view value) {
  std::string out;
  out.reserve(value.size() * 3);
  append_encoded(out, value, false);
  return out;
}

Secret form_encode(const std::vector<FormField>& fields) {
  std::size_t worst = 0;
  for (const auto& f : fields) worst += (f.name.size() + f.value.size()) * 3 + 2;
  // Built in one buffer of the final capacity, so that nothing holding the
  // code is reallocated and left behind unwiped.
  std::string body;
  body.reserve(worst);
  for (const auto& f : fields) {
    if (!body.empty()) body.push_back('&');
    append_encoded(body, f.name, true);
    body.push_back('=');
    append_encoded(body, f.value, true);
  }
  Secret out;
  out.reserve(body.size() + 1);
  out.append(body);
  wipe_memory(body.data(), body.capacity());
  return out;
}

}  // namespace ptv
