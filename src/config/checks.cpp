#include "config/checks.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/network.hpp"
#include "phone/ldap_filter.hpp"
#include "util/log.hpp"

namespace ptv {

namespace {

bool is_placeholder(std::string_view v) {
  return v.find("XXXXXXXX") != std::string_view::npos ||
         v.find("CHANGE_ME") != std::string_view::npos;
}

constexpr std::string_view kPlaceholderHint =
    "still holds the placeholder of the shipped template; replace it with "
    "the value from the Twilio console";

bool has_control_character(std::string_view v) {
  for (char ch : v)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return true;
  return false;
}

ConfigResult refuse(const Reader& r, const config_setting_t* s,
                    std::string_view what) {
  return std::unexpected(r.error(s, what));
}

}  // namespace

std::expected<std::string, ConfigError> read_sid(const Reader& r,
                                                 const config_setting_t* s,
                                                 std::string_view prefix) {
  auto v = r.string(s);
  if (!v) return v;
  if (is_placeholder(*v)) return std::unexpected(r.error(s, kPlaceholderHint));
  if (!is_sid(*v, prefix))
    return std::unexpected(r.error(
        s, "must be \"" + std::string(prefix) + "\" followed by 32 hexadecimal "
           "digits"));
  return v;
}

std::expected<Secret, ConfigError> read_secret(const Reader& r,
                                               const config_setting_t* s,
                                               SecretKind kind) {
  auto v = r.string_value(s);
  if (!v) return v;
  const std::string_view value = v->view();
  if (is_placeholder(value))
    return std::unexpected(r.error(
        s, kind == SecretKind::TwilioCredential
               ? kPlaceholderHint
               : "still holds the placeholder of the shipped template"));
  if (value.empty()) return std::unexpected(r.error(s, "must not be empty"));
  if (kind == SecretKind::Password) return v;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e)
      return std::unexpected(
          r.error(s, "must hold printable ASCII characters only"));
  }
  return v;
}

ConfigResult https_url(const Reader& r, const config_setting_t* s,
                       std::string& url) {
  if (!url.starts_with("https://")) return refuse(r, s, "must start with https://");
  while (url.size() > 8 && url.back() == '/') url.pop_back();
  const std::string_view rest = std::string_view(url).substr(8);
  if (rest.empty()) return refuse(r, s, "has no host name");
  for (char c : rest) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '?' || c == '#' || c == '@' || c == '\\')
      return refuse(r, s,
                    "must be a plain https://host[:port][/path] URL without "
                    "credentials, query or fragment");
  }
  return {};
}

ConfigResult proxy_url(const Reader& r, const config_setting_t* s,
                       std::string& url) {
  if (!url.starts_with("http://") && !url.starts_with("https://"))
    return refuse(r, s, "must start with http:// or https://");
  for (char ch : url)
    if (static_cast<unsigned char>(ch) <= 0x20 ||
        static_cast<unsigned char>(ch) >= 0x7f)
      return refuse(r, s, "must not contain spaces or control characters");
  return {};
}

ConfigResult readable_file(const Reader& r, const config_setting_t* s,
                           std::string& path) {
  if (path.empty() || path.front() != '/')
    return refuse(r, s, "must be an absolute path");
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return refuse(r, s, "cannot be read: " + std::string(std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return refuse(r, s, "is not a regular file");
  return {};
}

ConfigResult not_empty(const Reader& r, const config_setting_t* s,
                       std::string& value) {
  if (value.empty()) return refuse(r, s, "must not be empty");
  return {};
}

// locale: "" (Twilio chooses by the number's country) or a language tag
// by its form only: 2 or 3 letters, then subtags of 2 to 8 letters or
// digits, each after a "-" (fr, pt-BR, zh-HK); at most 35 characters.
ConfigResult language_tag(const Reader& r, const config_setting_t* s,
                          std::string& value) {
  if (value.empty()) return {};
  const auto alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  const auto alnum = [&alpha](char c) { return alpha(c) || (c >= '0' && c <= '9'); };
  bool ok = value.size() <= 35;
  std::size_t start = 0;
  for (bool first = true; ok; first = false) {
    const std::size_t end = std::min(value.find('-', start), value.size());
    const std::string_view part(value.data() + start, end - start);
    ok = first ? part.size() >= 2 && part.size() <= 3 &&
                     std::all_of(part.begin(), part.end(), alpha)
               : part.size() >= 2 && part.size() <= 8 &&
                     std::all_of(part.begin(), part.end(), alnum);
    if (end == value.size()) break;
    start = end + 1;
  }
  if (!ok)
    return refuse(r, s,
                  "must be a language tag such as \"fr\", \"pt-BR\" or "
                  "\"zh-HK\" (2 or 3 letters, then subtags of 2 to 8 letters "
                  "or digits after \"-\", at most 35 characters), or \"\" to "
                  "let Twilio choose by the number's country");
  return {};
}

// An absolute path without "." or ".." components, empty components (other
// than a trailing slash, which is dropped) or control characters. Whether
// it is a usable directory is checked at each login, where it is used.
ConfigResult state_directory(const Reader& r, const config_setting_t* s,
                             std::string& path) {
  if (path.empty() || path.front() != '/')
    return refuse(r, s, "must be an absolute path");
  if (path == "/") return refuse(r, s, "must not be the root directory");
  if (path.size() > 1024)
    return refuse(r, s, "must not be longer than 1024 characters");
  if (has_control_character(path))
    return refuse(r, s, "must not contain control characters");
  std::size_t pos = 1;
  while (pos < path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string_view part = std::string_view(path).substr(pos, end - pos);
    if (part == "." || part == ".." || (part.empty() && end != path.size() - 1))
      return refuse(r, s,
                    "must be a plain absolute path (no \".\", \"..\" or \"//\")");
    pos = end + 1;
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return {};
}

ConfigResult command_path(const Reader& r, const config_setting_t* s,
                          std::string& path) {
  if (path.empty() || path.front() != '/')
    return refuse(r, s, "must be an absolute path");
  if (has_control_character(path))
    return refuse(r, s, "must not contain control characters");
  return {};
}

ConfigResult command_user(const Reader& r, const config_setting_t* s,
                          std::string& user) {
  if (user.empty()) return refuse(r, s, "must not be empty");
  if (user == "root") return refuse(r, s, "must be an unprivileged user, not root");
  return {};
}

// The URI list: ldap://, ldaps:// or ldapi:// URIs separated by spaces, all
// of one scheme (StartTLS applies to the connection, whichever URI it is).
// Kept without the spaces around the list, so that the scheme checks of the
// group (StartTLS for ldap://) see the first URI.
ConfigResult ldap_uris(const Reader& r, const config_setting_t* s,
                       std::string& uris) {
  std::string_view scheme;
  std::size_t count = 0;
  for (std::size_t pos = uris.find_first_not_of(' '); pos != std::string::npos;
       pos = uris.find_first_not_of(' ', pos)) {
    std::size_t end = uris.find(' ', pos);
    if (end == std::string::npos) end = uris.size();
    const std::string_view uri = std::string_view(uris).substr(pos, end - pos);
    std::string_view this_scheme;
    for (std::string_view known : {"ldap://", "ldaps://", "ldapi://"})
      if (uri.starts_with(known)) this_scheme = known;
    if (this_scheme.empty())
      return refuse(r, s, "must hold ldap://, ldaps:// or ldapi:// URIs");
    if (!scheme.empty() && scheme != this_scheme)
      return refuse(r, s,
                    "must not mix URI schemes (use one of ldap://, ldaps:// "
                    "or ldapi:// for every server)");
    scheme = this_scheme;
    if (has_control_character(uri))
      return refuse(r, s, "must not contain control characters");
    ++count;
    pos = end;
  }
  if (count == 0) return refuse(r, s, "must not be empty");
  const std::size_t first = uris.find_first_not_of(' ');
  const std::size_t last = uris.find_last_not_of(' ');
  uris = uris.substr(first, last - first + 1);
  return {};
}

ConfigResult ldap_filter(const Reader& r, const config_setting_t* s,
                         std::string& filter) {
  if (const std::string problem = check_ldap_filter_template(filter);
      !problem.empty())
    return refuse(r, s, problem);
  return {};
}

ConfigResult ldap_attribute(const Reader& r, const config_setting_t* s,
                            std::string& name) {
  if (!is_ldap_attribute_name(name))
    return refuse(r, s, "must be an attribute name such as \"mobile\"");
  return {};
}

ConfigResult bind_dn(const Reader& r, const config_setting_t* s,
                     std::string& dn) {
  if (dn.empty())
    return refuse(r, s, "must not be empty (leave it out for an anonymous bind)");
  return {};
}

namespace {

// A name of `noun` (a service, a group): not empty, not too long,
// printable ASCII without spaces or the `forbidden` characters (`rule`
// says which).
ConfigResult printable_name(const Reader& r, const config_setting_t* e,
                            int index, std::string_view name,
                            std::string_view noun, std::string_view forbidden,
                            std::string_view rule) {
  if (name.empty())
    return refuse(r, e, "entry " + std::to_string(index + 1) + " is empty");
  const std::string quoted = std::string(noun) + " \"" + log_safe(name) + "\"";
  if (name.size() > kMaxServiceNameLength)
    return refuse(r, e, quoted + " is longer than " +
                            std::to_string(kMaxServiceNameLength) + " characters");
  for (char ch : name) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x21 || u > 0x7e || forbidden.find(ch) != std::string_view::npos)
      return refuse(r, e, quoted + " must be printable ASCII without spaces" +
                              std::string(rule));
  }
  return {};
}

}  // namespace

ConfigResult service_name(const Reader& r, const config_setting_t* e, int index,
                          std::string_view name) {
  return printable_name(r, e, index, name, "service", "/", " or '/'");
}

ConfigResult group_name(const Reader& r, const config_setting_t* e, int index,
                        std::string_view name) {
  return printable_name(r, e, index, name, "group", ":,", ", ':' or ','");
}

ConfigResult network_text(const Reader& r, const config_setting_t* e, int,
                          std::string_view text) {
  auto network = parse_network(text);
  if (!network)
    return refuse(r, e, "\"" + log_safe(text) + "\" " + network.error());
  return {};
}

}  // namespace ptv
