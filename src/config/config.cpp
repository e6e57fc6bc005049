#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <set>

#include "config/config_strings.hpp"
#include "util/handles.hpp"
#include "phone/ldap_filter.hpp"
#include "util/log.hpp"
#include "phone/phone.hpp"

namespace ptv {

namespace {

using Result = std::expected<void, ConfigError>;

// Reads settings from a tree libconfig parsed from the masked text
// (config_strings.hpp): every string there is placeholders, and the real
// value comes from the table of literals.
class Reader {
 public:
  Reader(std::string_view name, const ConfigStrings& strings)
      : name_(name), text_(strings.masked_text().view()), strings_(strings) {}

  ConfigError error(const config_setting_t* s, std::string_view what) const {
    std::string where(name_);
    if (s != nullptr) {
      const int line = config_setting_source_line(s);
      if (line > 0) where += ":" + std::to_string(line);
      where += ": " + path_of(s);
    }
    return ConfigError{where + ": " + std::string(what)};
  }

  static std::string path_of(const config_setting_t* s) {
    std::string path;
    for (const config_setting_t* p = s; p != nullptr; p = p->parent) {
      const char* n = config_setting_name(p);
      if (n == nullptr) continue;
      path = path.empty() ? std::string(n) : std::string(n) + "." + path;
    }
    return path;
  }

  // The value of a string setting, straight from our table into a Secret.
  std::expected<Secret, ConfigError> string_value(
      const config_setting_t* s) const {
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
      return std::unexpected(error(s, "must be a string in double quotes"));
    const char* masked = config_setting_get_string(s);
    std::optional<Secret> v =
        strings_.value_of(masked != nullptr ? masked : "");
    // Cannot happen: libconfig only ever saw placeholders.
    if (!v)
      return std::unexpected(
          error(s, "internal error: not a placeholder of the masked text"));
    return std::move(*v);
  }

  // The value of a string setting that is not a secret.
  std::expected<std::string, ConfigError> string(
      const config_setting_t* s) const {
    auto v = string_value(s);
    if (!v) return std::unexpected(v.error());
    return std::string(v->view());
  }

  std::expected<long long, ConfigError> integer(const config_setting_t* s,
                                                long long min,
                                                long long max) const {
    const int type = config_setting_type(s);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
      return std::unexpected(error(s, "must be a whole number"));
    const long long v = config_setting_get_int64(s);
    // libconfig 1.5 silently truncates a literal without the L suffix to
    // 32 bits; the number as written must be the number we got.
    if (!literal_matches(s, v))
      return std::unexpected(error(s, "must be between " + std::to_string(min) +
                                          " and " + std::to_string(max)));
    if (v < min || v > max)
      return std::unexpected(error(s, "must be between " + std::to_string(min) +
                                          " and " + std::to_string(max)));
    return v;
  }

  std::string_view name() const { return name_; }

 private:
  // Finds "name = literal" (or "name : literal") on the setting's line and
  // compares the literal, parsed with overflow detection, to the value.
  bool literal_matches(const config_setting_t* s, long long value) const {
    const char* name = config_setting_name(s);
    const int line = config_setting_source_line(s);
    if (name == nullptr || line <= 0) return true;  // list element: no name
    std::size_t start = 0;
    for (int i = 1; i < line && start != std::string_view::npos; ++i) {
      start = text_.find('\n', start);
      if (start != std::string_view::npos) ++start;
    }
    if (start == std::string_view::npos) return false;
    std::size_t end = text_.find('\n', start);
    if (end == std::string_view::npos) end = text_.size();
    const std::string line_text(text_.substr(start, end - start));
    std::size_t pos = line_text.find(name);
    while (pos != std::string::npos) {
      const bool starts_word =
          pos == 0 || !(std::isalnum(static_cast<unsigned char>(
                            line_text[pos - 1])) ||
                        line_text[pos - 1] == '_' || line_text[pos - 1] == '-' ||
                        line_text[pos - 1] == '*');
      if (!starts_word) {
        pos = line_text.find(name, pos + 1);
        continue;
      }
      std::size_t p = pos + std::strlen(name);
      while (p < line_text.size() && (line_text[p] == ' ' || line_text[p] == '\t'))
        ++p;
      if (p < line_text.size() && (line_text[p] == '=' || line_text[p] == ':')) {
        ++p;
        while (p < line_text.size() &&
               (line_text[p] == ' ' || line_text[p] == '\t'))
          ++p;
        errno = 0;
        char* after = nullptr;
        const long long written = std::strtoll(line_text.c_str() + p, &after, 0);
        if (after == line_text.c_str() + p) return false;
        return errno != ERANGE && written == value;
      }
      pos = line_text.find(name, pos + 1);
    }
    return false;  // not written on one line as name = number: refuse
  }

  std::string_view name_;
  // The masked text: the same lines as the file, with literals and comments
  // emptied, so that literal_matches() cannot be misled by a setting name
  // written inside a string or a comment on the same line.
  std::string_view text_;
  const ConfigStrings& strings_;
};

bool is_placeholder(std::string_view v) {
  return v.find("XXXXXXXX") != std::string_view::npos ||
         v.find("CHANGE_ME") != std::string_view::npos;
}

constexpr std::string_view kPlaceholderHint =
    "still holds the placeholder of the shipped template; replace it with "
    "the value from the Twilio console";

std::expected<std::string, ConfigError> sid(const Reader& r,
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

// Twilio's credentials are printable ASCII without spaces; a password
// (the LDAP bind password) may hold any character.
enum class SecretKind { TwilioCredential, Password };

std::expected<Secret, ConfigError> secret(
    const Reader& r, const config_setting_t* s,
    SecretKind kind = SecretKind::TwilioCredential) {
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

Result check_api_url(const Reader& r, const config_setting_t* s,
                     std::string& url) {
  if (!url.starts_with("https://"))
    return std::unexpected(r.error(s, "must start with https://"));
  while (url.size() > 8 && url.back() == '/') url.pop_back();
  const std::string_view rest = std::string_view(url).substr(8);
  if (rest.empty()) return std::unexpected(r.error(s, "has no host name"));
  for (char c : rest) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '?' || c == '#' || c == '@' ||
        c == '\\')
      return std::unexpected(r.error(
          s, "must be a plain https://host[:port][/path] URL without "
             "credentials, query or fragment"));
  }
  return {};
}

Result absolute_readable_file(const Reader& r, const config_setting_t* s,
                              const std::string& path) {
  if (path.empty() || path.front() != '/')
    return std::unexpected(r.error(s, "must be an absolute path"));
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return std::unexpected(
        r.error(s, "cannot be read: " + std::string(std::strerror(errno))));
  if (!S_ISREG(st.st_mode))
    return std::unexpected(r.error(s, "is not a regular file"));
  return {};
}

Result parse_twilio(const Reader& r, const config_setting_t* group, Config& c) {
  if (config_setting_type(group) != CONFIG_TYPE_GROUP)
    return std::unexpected(r.error(group, "must be a group: twilio = { ... };"));
  bool have_account = false, have_service = false;
  const int n = config_setting_length(group);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* s = config_setting_get_elem(group, i);
    const std::string_view key = config_setting_name(s);
    if (key == "account_sid") {
      auto v = sid(r, s, "AC");
      if (!v) return std::unexpected(v.error());
      c.account_sid = std::move(*v);
      have_account = true;
    } else if (key == "auth_token") {
      auto v = secret(r, s);
      if (!v) return std::unexpected(v.error());
      c.auth_token = std::move(*v);
    } else if (key == "api_key_sid") {
      auto v = sid(r, s, "SK");
      if (!v) return std::unexpected(v.error());
      c.api_key_sid = std::move(*v);
    } else if (key == "api_key_secret") {
      auto v = secret(r, s);
      if (!v) return std::unexpected(v.error());
      c.api_key_secret = std::move(*v);
    } else if (key == "service_sid") {
      auto v = sid(r, s, "VA");
      if (!v) return std::unexpected(v.error());
      c.service_sid = std::move(*v);
      have_service = true;
    } else if (key == "api_url") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      c.api_url = std::move(*v);
      if (auto ok = check_api_url(r, s, c.api_url); !ok) return ok;
    } else if (key == "ca_file") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (auto ok = absolute_readable_file(r, s, *v); !ok) return ok;
      c.ca_file = std::move(*v);
    } else if (key == "proxy") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (!v->starts_with("http://") && !v->starts_with("https://"))
        return std::unexpected(
            r.error(s, "must start with http:// or https://"));
      for (char ch : *v)
        if (static_cast<unsigned char>(ch) <= 0x20 ||
            static_cast<unsigned char>(ch) >= 0x7f)
          return std::unexpected(r.error(s, "must not contain spaces or "
                                            "control characters"));
      c.proxy = std::move(*v);
    } else if (key == "connect_timeout_ms") {
      auto v = r.integer(s, 100, 60000);
      if (!v) return std::unexpected(v.error());
      c.connect_timeout_ms = static_cast<long>(*v);
    } else if (key == "timeout_ms") {
      auto v = r.integer(s, 500, 60000);
      if (!v) return std::unexpected(v.error());
      c.timeout_ms = static_cast<long>(*v);
    } else {
      return std::unexpected(r.error(s, "unknown setting"));
    }
  }
  if (!have_account)
    return std::unexpected(r.error(group, "account_sid is missing"));
  if (!have_service)
    return std::unexpected(r.error(group, "service_sid is missing"));
  if (!c.api_key_sid.empty() && c.api_key_secret.empty())
    return std::unexpected(
        r.error(group, "api_key_sid is set but api_key_secret is missing"));
  if (c.api_key_sid.empty() && !c.api_key_secret.empty())
    return std::unexpected(
        r.error(group, "api_key_secret is set but api_key_sid is missing"));
  if (c.api_key_sid.empty() && c.auth_token.empty())
    return std::unexpected(r.error(
        group, "no credential: set auth_token, or api_key_sid and "
               "api_key_secret"));
  if (c.connect_timeout_ms > c.timeout_ms)
    return std::unexpected(r.error(
        group, "connect_timeout_ms must not be larger than timeout_ms"));
  return {};
}

Result parse_users(const Reader& r, const config_setting_t* list, Config& c) {
  const int type = config_setting_type(list);
  if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY)
    return std::unexpected(r.error(
        list, "must be a list of pairs: ( (\"user\", \"+15551234567\"), ... )"));
  std::set<std::string> seen;
  const int n = config_setting_length(list);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* pair = config_setting_get_elem(list, i);
    const int pt = config_setting_type(pair);
    if ((pt != CONFIG_TYPE_LIST && pt != CONFIG_TYPE_ARRAY) ||
        config_setting_length(pair) != 2)
      return std::unexpected(r.error(
          pair, "entry " + std::to_string(i + 1) +
                    " must be a pair (\"user\", \"+15551234567\")"));
    auto user = r.string(config_setting_get_elem(pair, 0));
    if (!user) return std::unexpected(user.error());
    auto number = r.string(config_setting_get_elem(pair, 1));
    if (!number) return std::unexpected(number.error());
    if (user->empty())
      return std::unexpected(r.error(
          pair, "entry " + std::to_string(i + 1) + " has an empty user name"));
    std::string normalised = normalise_phone(*number);
    if (!is_e164(normalised))
      return std::unexpected(r.error(
          pair, "the number of user \"" + log_safe(*user) +
                    "\" is not E.164 (\"+\", 7 to 15 digits, no leading "
                    "zero)"));
    if (!seen.insert(*user).second)
      return std::unexpected(r.error(
          pair, "user \"" + log_safe(*user) + "\" is listed twice"));
    c.users.emplace_back(std::move(*user), std::move(normalised));
  }
  return {};
}

Result parse_sources(const Reader& r, const config_setting_t* s, Config& c) {
  const int type = config_setting_type(s);
  if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
    return std::unexpected(
        r.error(s, "must be a list such as [ \"users\", \"gecos\" ]"));
  c.phone_sources.clear();
  const int n = config_setting_length(s);
  if (n == 0) return std::unexpected(r.error(s, "must name at least one source"));
  for (int i = 0; i < n; ++i) {
    auto v = r.string(config_setting_get_elem(s, i));
    if (!v) return std::unexpected(v.error());
    PhoneSource source;
    if (*v == "users") {
      source = PhoneSource::Users;
    } else if (*v == "gecos") {
      source = PhoneSource::Gecos;
    } else if (*v == "ldap") {
      source = PhoneSource::Ldap;
    } else if (*v == "command") {
      source = PhoneSource::Command;
    } else {
      return std::unexpected(r.error(
          s, "unknown source \"" + log_safe(*v) + "\" (use \"users\", "
             "\"gecos\", \"ldap\" or \"command\")"));
    }
    for (PhoneSource existing : c.phone_sources)
      if (existing == source)
        return std::unexpected(
            r.error(s, "source \"" + *v + "\" is listed twice"));
    c.phone_sources.push_back(source);
  }
  return {};
}

// One name of the services list: a PAM service name (PAM_SERVICE, the
// file name in /etc/pam.d).
Result check_service_name(const Reader& r, const config_setting_t* e,
                          int index, std::string_view name) {
  if (name.empty())
    return std::unexpected(
        r.error(e, "entry " + std::to_string(index + 1) + " is empty"));
  if (name.size() > kMaxServiceNameLength)
    return std::unexpected(r.error(
        e, "service \"" + log_safe(name) + "\" is longer than " +
               std::to_string(kMaxServiceNameLength) + " characters"));
  for (char ch : name) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x21 || u > 0x7e || ch == '/')
      return std::unexpected(r.error(
          e, "service \"" + log_safe(name) +
                 "\" must be printable ASCII without spaces or '/'"));
  }
  return {};
}

// The PAM services that ask for the code. An empty list would mean "no
// service", which is what leaving the module out of the stack means:
// refused, so that it cannot be mistaken for "every service".
Result parse_services(const Reader& r, const config_setting_t* s, Config& c) {
  const int type = config_setting_type(s);
  if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
    return std::unexpected(
        r.error(s, "must be a list such as [ \"sshd\", \"login\" ]"));
  const int n = config_setting_length(s);
  if (n == 0)
    return std::unexpected(
        r.error(s, "must name at least one service; leave the setting out "
                   "to cover every service"));
  c.services.clear();
  for (int i = 0; i < n; ++i) {
    const config_setting_t* e = config_setting_get_elem(s, i);
    auto v = r.string(e);
    if (!v) return std::unexpected(v.error());
    if (auto ok = check_service_name(r, e, i, *v); !ok) return ok;
    if (std::find(c.services.begin(), c.services.end(), *v) !=
        c.services.end())
      return std::unexpected(
          r.error(e, "service \"" + log_safe(*v) + "\" is listed twice"));
    c.services.push_back(std::move(*v));
  }
  c.services_set = true;
  return {};
}

Result parse_send_limit(const Reader& r, const config_setting_t* group,
                        Config& c) {
  if (config_setting_type(group) != CONFIG_TYPE_GROUP)
    return std::unexpected(r.error(
        group, "must be a group: send_limit = { count = 5; window_s = 3600; };"));
  const int n = config_setting_length(group);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* s = config_setting_get_elem(group, i);
    const std::string_view key = config_setting_name(s);
    if (key == "count") {
      auto v = r.integer(s, 1, 100);
      if (!v) return std::unexpected(v.error());
      c.send_limit_count = static_cast<int>(*v);
    } else if (key == "window_s") {
      auto v = r.integer(s, 60, 86400);
      if (!v) return std::unexpected(v.error());
      c.send_limit_window_s = static_cast<long>(*v);
    } else {
      return std::unexpected(r.error(s, "unknown setting"));
    }
  }
  return {};
}

// An absolute path without "." or ".." components, empty components
// (other than a trailing slash) or control characters. Whether it is a
// usable directory is checked at each login, where it is used.
Result check_state_dir(const Reader& r, const config_setting_t* s,
                       std::string_view path) {
  if (path.empty() || path.front() != '/')
    return std::unexpected(r.error(s, "must be an absolute path"));
  if (path == "/")
    return std::unexpected(r.error(s, "must not be the root directory"));
  if (path.size() > 1024)
    return std::unexpected(r.error(s, "must not be longer than 1024 characters"));
  for (char ch : path)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
      return std::unexpected(r.error(s, "must not contain control characters"));
  std::size_t pos = 1;
  while (pos < path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(pos, end - pos);
    if (part == "." || part == ".." || (part.empty() && end != path.size() - 1))
      return std::unexpected(r.error(
          s, "must be a plain absolute path (no \".\", \"..\" or \"//\")"));
    pos = end + 1;
  }
  return {};
}

// The URI list: ldap://, ldaps:// or ldapi:// URIs separated by spaces, all
// of one scheme (StartTLS applies to the connection, whichever URI it is).
Result check_ldap_uri(const Reader& r, const config_setting_t* s,
                      std::string_view uris) {
  std::string_view scheme;
  std::size_t count = 0;
  std::size_t pos = 0;
  while (pos < uris.size()) {
    if (uris[pos] == ' ') {
      ++pos;
      continue;
    }
    std::size_t end = uris.find(' ', pos);
    if (end == std::string_view::npos) end = uris.size();
    const std::string_view uri = uris.substr(pos, end - pos);
    std::string_view this_scheme;
    for (std::string_view known : {"ldap://", "ldaps://", "ldapi://"})
      if (uri.starts_with(known)) this_scheme = known;
    if (this_scheme.empty())
      return std::unexpected(r.error(
          s, "must hold ldap://, ldaps:// or ldapi:// URIs"));
    if (!scheme.empty() && scheme != this_scheme)
      return std::unexpected(
          r.error(s, "must not mix URI schemes (use one of ldap://, "
                     "ldaps:// or ldapi:// for every server)"));
    scheme = this_scheme;
    for (char c : uri)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return std::unexpected(r.error(s, "must not contain control characters"));
    ++count;
    pos = end;
  }
  if (count == 0) return std::unexpected(r.error(s, "must not be empty"));
  return {};
}

Result parse_ldap(const Reader& r, const config_setting_t* group, Config& c) {
  if (config_setting_type(group) != CONFIG_TYPE_GROUP)
    return std::unexpected(r.error(
        group, "must be a group: ldap = { uri = \"ldaps://...\"; base = "
               "\"...\"; };"));
  LdapSettings& l = c.ldap;
  const config_setting_t* starttls_setting = nullptr;
  bool have_uri = false, have_base = false, have_password = false;
  const int n = config_setting_length(group);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* s = config_setting_get_elem(group, i);
    const std::string_view key = config_setting_name(s);
    if (key == "uri") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (auto ok = check_ldap_uri(r, s, *v); !ok) return ok;
      // Without the spaces around the list, so that the scheme checks
      // below (StartTLS for ldap://) see the first URI.
      const std::size_t first = v->find_first_not_of(' ');
      const std::size_t last = v->find_last_not_of(' ');
      l.uri = v->substr(first, last - first + 1);
      have_uri = true;
    } else if (key == "starttls") {
      if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return std::unexpected(r.error(s, "must be true or false"));
      l.starttls = config_setting_get_bool(s) != 0;
      starttls_setting = s;
    } else if (key == "ca_file") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (auto ok = absolute_readable_file(r, s, *v); !ok) return ok;
      l.ca_file = std::move(*v);
    } else if (key == "base") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (v->empty()) return std::unexpected(r.error(s, "must not be empty"));
      l.base = std::move(*v);
      have_base = true;
    } else if (key == "filter") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (const std::string problem = check_ldap_filter_template(*v);
          !problem.empty())
        return std::unexpected(r.error(s, problem));
      l.filter = std::move(*v);
    } else if (key == "attribute") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (!is_ldap_attribute_name(*v))
        return std::unexpected(
            r.error(s, "must be an attribute name such as \"mobile\""));
      l.attribute = std::move(*v);
    } else if (key == "bind_dn") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (v->empty())
        return std::unexpected(r.error(
            s, "must not be empty (leave it out for an anonymous bind)"));
      l.bind_dn = std::move(*v);
    } else if (key == "bind_password") {
      auto v = secret(r, s, SecretKind::Password);
      if (!v) return std::unexpected(v.error());
      l.bind_password = std::move(*v);
      have_password = true;
    } else if (key == "timeout_ms") {
      auto v = r.integer(s, 100, 60000);
      if (!v) return std::unexpected(v.error());
      l.timeout_ms = static_cast<long>(*v);
    } else {
      return std::unexpected(r.error(s, "unknown setting"));
    }
  }
  if (!have_uri) return std::unexpected(r.error(group, "uri is missing"));
  if (!have_base) return std::unexpected(r.error(group, "base is missing"));
  if (!l.bind_dn.empty() && !have_password)
    return std::unexpected(
        r.error(group, "bind_dn is set but bind_password is missing"));
  if (l.bind_dn.empty() && have_password)
    return std::unexpected(
        r.error(group, "bind_password is set but bind_dn is missing"));
  if (starttls_setting != nullptr && l.starttls &&
      !l.uri.starts_with("ldap://"))
    return std::unexpected(r.error(
        starttls_setting, "applies to ldap:// URIs only (ldaps:// is TLS "
                          "from the start; ldapi:// is a local socket)"));
  if (!l.uri.starts_with("ldap://")) l.starttls = false;
  c.has_ldap = true;
  return {};
}

// The sources that need settings have them.
Result check_sources_configured(const Reader& r, const Config& c) {
  for (PhoneSource source : c.phone_sources) {
    if (source == PhoneSource::Ldap && !c.has_ldap)
      return std::unexpected(ConfigError{
          std::string(r.name()) + ": phone_sources lists \"ldap\" but the "
          "ldap = { ... }; group is missing"});
    if (source == PhoneSource::Command && c.command.path.empty())
      return std::unexpected(ConfigError{
          std::string(r.name()) + ": phone_sources lists \"command\" but "
          "lookup_command is not set"});
  }
  return {};
}

Result parse_root(const Reader& r, const config_setting_t* root, Config& c) {
  bool have_twilio = false;
  const int n = config_setting_length(root);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* s = config_setting_get_elem(root, i);
    const std::string_view key = config_setting_name(s);
    if (key == "twilio") {
      if (auto ok = parse_twilio(r, s, c); !ok) return ok;
      have_twilio = true;
    } else if (key == "channel") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (*v != "sms" && *v != "call" && *v != "whatsapp")
        return std::unexpected(
            r.error(s, "must be \"sms\", \"call\" or \"whatsapp\""));
      c.channel = std::move(*v);
    } else if (key == "failmode") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (*v == "secure") {
        c.failmode = FailMode::Secure;
      } else if (*v == "safe") {
        c.failmode = FailMode::Safe;
      } else {
        return std::unexpected(r.error(s, "must be \"secure\" or \"safe\""));
      }
    } else if (key == "no_phone") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (*v == "deny") {
        c.no_phone = NoPhone::Deny;
      } else if (*v == "skip") {
        c.no_phone = NoPhone::Skip;
      } else {
        return std::unexpected(r.error(s, "must be \"deny\" or \"skip\""));
      }
    } else if (key == "max_attempts") {
      auto v = r.integer(s, 1, 5);
      if (!v) return std::unexpected(v.error());
      c.max_attempts = static_cast<int>(*v);
    } else if (key == "phone_sources") {
      if (auto ok = parse_sources(r, s, c); !ok) return ok;
    } else if (key == "gecos_field") {
      auto v = r.integer(s, 1, 5);
      if (!v) return std::unexpected(v.error());
      c.gecos_field = static_cast<int>(*v);
    } else if (key == "users") {
      if (auto ok = parse_users(r, s, c); !ok) return ok;
    } else if (key == "ldap") {
      if (auto ok = parse_ldap(r, s, c); !ok) return ok;
    } else if (key == "lookup_command") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (v->empty() || v->front() != '/')
        return std::unexpected(r.error(s, "must be an absolute path"));
      for (char ch : *v)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
          return std::unexpected(
              r.error(s, "must not contain control characters"));
      c.command.path = std::move(*v);
    } else if (key == "lookup_command_user") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (v->empty()) return std::unexpected(r.error(s, "must not be empty"));
      if (*v == "root")
        return std::unexpected(r.error(
            s, "must be an unprivileged user, not root"));
      c.command.user = std::move(*v);
    } else if (key == "lookup_timeout_ms") {
      auto v = r.integer(s, 100, 60000);
      if (!v) return std::unexpected(v.error());
      c.command.timeout_ms = static_cast<long>(*v);
    } else if (key == "services") {
      if (auto ok = parse_services(r, s, c); !ok) return ok;
    } else if (key == "send_limit") {
      if (auto ok = parse_send_limit(r, s, c); !ok) return ok;
    } else if (key == "state_dir") {
      auto v = r.string(s);
      if (!v) return std::unexpected(v.error());
      if (auto ok = check_state_dir(r, s, *v); !ok) return ok;
      c.state_dir = std::move(*v);
      while (c.state_dir.size() > 1 && c.state_dir.back() == '/')
        c.state_dir.pop_back();
    } else {
      return std::unexpected(r.error(s, "unknown setting"));
    }
  }
  if (!have_twilio)
    return std::unexpected(ConfigError{
        std::string(r.name()) + ": the twilio = { ... }; group is missing"});
  return check_sources_configured(r, c);
}

// libconfig would open any file named by @include, bypassing the owner and
// mode checks of the main file, so the directive is refused outright.
bool has_include_directive(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    if (line.starts_with("@include")) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

bool is_sid(std::string_view value, std::string_view prefix) {
  if (value.size() != prefix.size() + 32 || !value.starts_with(prefix))
    return false;
  for (char c : value.substr(prefix.size())) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

std::expected<Config, ConfigError> parse_config_text(std::string_view text,
                                                     std::string_view name) {
  if (text.find('\0') != std::string_view::npos)
    return std::unexpected(
        ConfigError{std::string(name) + ": the file contains a NUL byte"});
  if (has_include_directive(text))
    return std::unexpected(ConfigError{
        std::string(name) + ": @include is not supported (every setting "
                            "must be in this one protected file)"});
  // libconfig copies the text it parses into its scanner's buffers and
  // builds string tokens in growing buffers, and frees all of them without
  // wiping; wiping the parse tree afterwards could not reach those copies.
  // So it never sees a string value: it parses the masked text, whose
  // literals are placeholders naming entries of our table of Secrets, and
  // whose comments are blank (config_strings.hpp). Its parse tree then holds
  // nothing to wipe, and is freed as it is. The masked text is itself a
  // NUL-terminated Secret, wiped on every path.
  const ConfigStrings strings = ConfigStrings::mask(text);
  ConfigHandle cfg(new config_t);
  config_init(cfg.get());
  if (config_read_string(cfg.get(), strings.masked_text().c_str()) !=
      CONFIG_TRUE) {
    const char* what = config_error_text(cfg.get());
    return std::unexpected(ConfigError{
        std::string(name) + ":" + std::to_string(config_error_line(cfg.get())) +
        ": parse error: " + (what != nullptr ? what : "unknown")});
  }
  Config config;
  const Reader reader(name, strings);
  if (auto ok = parse_root(reader, config_root_setting(cfg.get()), config); !ok)
    return std::unexpected(ok.error());
  return config;
}

std::expected<Config, ConfigError> load_config_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                                        O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return std::unexpected(ConfigError{
        path + ": cannot open: " +
        (err == ELOOP ? std::string("it is a symbolic link, which is refused")
                      : std::string(std::strerror(err)))});
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0)
    return std::unexpected(
        ConfigError{path + ": cannot stat: " + std::strerror(errno)});
  if (!S_ISREG(st.st_mode))
    return std::unexpected(ConfigError{path + ": is not a regular file"});
  if (st.st_uid != 0)
    return std::unexpected(ConfigError{
        path + ": must be owned by root (it is owned by uid " +
        std::to_string(st.st_uid) + ")"});
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return std::unexpected(ConfigError{
        path + ": holds a credential, so group and others must have no "
               "access (mode is " + mode + "; run chmod 600 " + path + ")"});
  }
  if (st.st_size > static_cast<off_t>(kMaxConfigBytes))
    return std::unexpected(ConfigError{path + ": is larger than 1 MiB"});
  // Read into room reserved once: an append that reallocated would leave
  // an unwiped copy of what was read so far.
  const auto room = static_cast<std::size_t>(st.st_size);
  Secret text;
  text.reserve(room + 1);
  char buffer[4096];
  for (;;) {
    const ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      wipe_memory(buffer, sizeof buffer);
      return std::unexpected(
          ConfigError{path + ": read error: " + std::strerror(errno)});
    }
    if (got == 0) break;
    if (text.size() + static_cast<std::size_t>(got) > kMaxConfigBytes) {
      wipe_memory(buffer, sizeof buffer);
      return std::unexpected(ConfigError{path + ": is larger than 1 MiB"});
    }
    // The file grew after fstat: it is being rewritten, and what was read
    // is no configuration anyone wrote.
    if (text.size() + static_cast<std::size_t>(got) > room) {
      wipe_memory(buffer, sizeof buffer);
      return std::unexpected(
          ConfigError{path + ": changed while it was being read"});
    }
    text.append(std::string_view(buffer, static_cast<std::size_t>(got)));
  }
  wipe_memory(buffer, sizeof buffer);
  return parse_config_text(text.view(), path);
}

}  // namespace ptv
