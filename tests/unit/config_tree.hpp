// libconfig alone against libconfig behind our masking (src/config_strings.*):
// parses a text both ways and describes each outcome in one string (the
// error line and text, or every setting with its name, type, line and
// value), so that tests and the fuzz target can demand they be equal.
// Shared by tests/unit/test_config_strings.cpp and tests/fuzz/fuzz_config.cpp;
// it includes no test framework.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <libconfig.h>

#include "config/config_strings.hpp"

namespace ptv_test {

inline void describe_bytes(std::string& out, std::string_view v) {
  out += '"';
  for (char ch : v) {
    const auto u = static_cast<unsigned char>(ch);
    if (u >= 0x20 && u < 0x7f && ch != '"' && ch != '\\') {
      out += ch;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    }
  }
  out += '"';
}

// One setting and everything under it. With `strings`, a string value is
// the masked text's placeholders and is shown as the table's value.
inline void describe_setting(std::string& out, const config_setting_t* s,
                             const ptv::ConfigStrings* strings, int depth) {
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
  const char* name = config_setting_name(s);
  out += name != nullptr ? name : "-";
  out += " line " + std::to_string(config_setting_source_line(s)) + " ";
  const int type = config_setting_type(s);
  switch (type) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
      out += "int" + std::to_string(type) + " " +
             std::to_string(config_setting_get_int64(s)) + " fmt " +
             std::to_string(config_setting_get_format(s));
      break;
    case CONFIG_TYPE_FLOAT: {
      char f[64];
      std::snprintf(f, sizeof f, "float %.17g", config_setting_get_float(s));
      out += f;
      break;
    }
    case CONFIG_TYPE_BOOL:
      out += config_setting_get_bool(s) ? "bool true" : "bool false";
      break;
    case CONFIG_TYPE_STRING: {
      const char* v = config_setting_get_string(s);
      out += "string ";
      if (strings == nullptr) {
        describe_bytes(out, v != nullptr ? v : "");
      } else if (auto real = strings->value_of(v != nullptr ? v : "")) {
        describe_bytes(out, real->view());
      } else {
        out += "UNRESOLVED ";
        describe_bytes(out, v != nullptr ? v : "");
      }
      break;
    }
    default: {
      out += "aggregate" + std::to_string(type) + "\n";
      const int n = config_setting_length(s);
      for (int i = 0; i < n; ++i)
        describe_setting(out, config_setting_get_elem(s, i), strings, depth + 1);
      return;
    }
  }
  out += "\n";
}

// libconfig's verdict on a NUL-terminated text: "error LINE: TEXT" or the
// tree.
inline std::string describe_parse(const char* text,
                                  const ptv::ConfigStrings* strings) {
  struct Destroy {
    void operator()(config_t* c) const noexcept {
      config_destroy(c);
      delete c;
    }
  };
  std::unique_ptr<config_t, Destroy> cfg(new config_t);
  config_init(cfg.get());
  if (config_read_string(cfg.get(), text) != CONFIG_TRUE) {
    const char* what = config_error_text(cfg.get());
    return "error " + std::to_string(config_error_line(cfg.get())) + ": " +
           (what != nullptr ? what : "?");
  }
  std::string out;
  describe_setting(out, config_root_setting(cfg.get()), strings, 0);
  return out;
}

// libconfig alone, on the text as written (which must hold no NUL byte and
// no @include: parse_config_text refuses both before any parsing).
inline std::string describe_unmasked(std::string_view text) {
  const std::string copy(text);
  return describe_parse(copy.c_str(), nullptr);
}

// libconfig on the masked text, string values taken from our table.
inline std::string describe_masked(std::string_view text) {
  const ptv::ConfigStrings strings = ptv::ConfigStrings::mask(text);
  return describe_parse(strings.masked_text().c_str(), &strings);
}

}  // namespace ptv_test
