#include "config/reader.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace ptv {

std::string setting_path(const config_setting_t* s) {
  std::string path;
  for (const config_setting_t* p = s; p != nullptr; p = p->parent) {
    const char* n = config_setting_name(p);
    if (n == nullptr) continue;
    path = path.empty() ? std::string(n) : std::string(n) + "." + path;
  }
  return path;
}

ConfigError Reader::error(const config_setting_t* s, std::string_view what) const {
  std::string where(name_);
  if (s != nullptr) {
    const int line = config_setting_source_line(s);
    if (line > 0) where += ":" + std::to_string(line);
    where += ": " + setting_path(s);
  }
  return ConfigError{where + ": " + std::string(what)};
}

ConfigError Reader::file_error(std::string_view what) const {
  return error(nullptr, what);
}

std::expected<Secret, ConfigError> Reader::string_value(
    const config_setting_t* s) const {
  if (config_setting_type(s) != CONFIG_TYPE_STRING)
    return std::unexpected(error(s, "must be a string in double quotes"));
  const char* masked = config_setting_get_string(s);
  std::optional<Secret> v = strings_.value_of(masked != nullptr ? masked : "");
  // Cannot happen: libconfig only ever saw placeholders.
  if (!v)
    return std::unexpected(
        error(s, "internal error: not a placeholder of the masked text"));
  return std::move(*v);
}

std::expected<std::string, ConfigError> Reader::string(
    const config_setting_t* s) const {
  auto v = string_value(s);
  if (!v) return std::unexpected(v.error());
  return std::string(v->view());
}

std::expected<long long, ConfigError> Reader::integer(const config_setting_t* s,
                                                      long long min,
                                                      long long max) const {
  const int type = config_setting_type(s);
  if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
    return std::unexpected(error(s, "must be a whole number"));
  const long long v = config_setting_get_int64(s);
  // libconfig 1.5 silently truncates a literal without the L suffix to 32
  // bits; the number as written must be the number we got.
  if (!literal_matches(s, v) || v < min || v > max)
    return std::unexpected(error(s, "must be between " + std::to_string(min) +
                                        " and " + std::to_string(max)));
  return v;
}

std::expected<bool, ConfigError> Reader::boolean(const config_setting_t* s) const {
  if (config_setting_type(s) != CONFIG_TYPE_BOOL)
    return std::unexpected(error(s, "must be true or false"));
  return config_setting_get_bool(s) != 0;
}

std::string_view Reader::line_of(int line) const {
  std::size_t start = 0;
  for (int i = 1; i < line && start != std::string_view::npos; ++i) {
    start = text_.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos) return {};
  std::size_t end = text_.find('\n', start);
  if (end == std::string_view::npos) end = text_.size();
  return text_.substr(start, end - start);
}

namespace {

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
         c == '*';
}

std::size_t skip_blanks(const std::string& text, std::size_t p) {
  while (p < text.size() && (text[p] == ' ' || text[p] == '\t')) ++p;
  return p;
}

// How many settings of the same name written on the same line come before
// `s` in the file (pre-order, as libconfig keeps them): two buckets on one
// line both have a max, and the second is the second "max =" of the line.
// True once `s` is reached.
bool count_before(const config_setting_t* at, const config_setting_t* s,
                  std::string_view name, int line, int& count) {
  if (at == s) return true;
  const char* n = config_setting_name(at);
  if (n != nullptr && name == n && config_setting_source_line(at) == line) ++count;
  if (!config_setting_is_aggregate(at)) return false;
  for (int i = 0; i < config_setting_length(at); ++i)
    if (count_before(config_setting_get_elem(at, i), s, name, line, count))
      return true;
  return false;
}

int ordinal_on_line(const config_setting_t* s, std::string_view name, int line) {
  const config_setting_t* root = s;
  while (root->parent != nullptr) root = root->parent;
  int count = 0;
  (void)count_before(root, s, name, line, count);
  return count;
}

}  // namespace

// Finds "name = literal" (or "name : literal") on the setting's line (the
// setting's own occurrence of it) and compares the literal, parsed with
// overflow detection, to the value.
bool Reader::literal_matches(const config_setting_t* s, long long value) const {
  const char* name = config_setting_name(s);
  const int line = config_setting_source_line(s);
  if (name == nullptr || line <= 0) return true;  // list element: no name
  const std::string line_text(line_of(line));
  int skip = ordinal_on_line(s, name, line);
  for (std::size_t pos = line_text.find(name); pos != std::string::npos;
       pos = line_text.find(name, pos + 1)) {
    if (pos != 0 && is_name_char(line_text[pos - 1])) continue;
    std::size_t p = skip_blanks(line_text, pos + std::strlen(name));
    if (p >= line_text.size() || (line_text[p] != '=' && line_text[p] != ':'))
      continue;
    if (skip-- > 0) continue;
    p = skip_blanks(line_text, p + 1);
    errno = 0;
    char* after = nullptr;
    const long long written = std::strtoll(line_text.c_str() + p, &after, 0);
    if (after == line_text.c_str() + p) return false;
    return errno != ERANGE && written == value;
  }
  return false;  // not written on one line as name = number: refuse
}

}  // namespace ptv
