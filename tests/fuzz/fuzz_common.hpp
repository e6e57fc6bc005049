// Helpers shared by the fuzz targets: a trap that names the broken
// invariant, and reference checks written independently of src/.
#pragma once

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <json-c/json.h>

namespace ptv_fuzz {

// Prints the invariant and stops with a crash libFuzzer reports.
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "\n*** invariant violated at %s:%d: %s\n", file, line,
               what);
  __builtin_trap();
}

#define FUZZ_CHECK(cond)                                      \
  do {                                                        \
    if (!(cond)) ::ptv_fuzz::fail(#cond, __FILE__, __LINE__); \
  } while (0)

inline bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

inline bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != prefix[i]) return false;
  }
  return true;
}

// The media type is application/json, whatever parameters follow.
inline bool reference_is_json(std::string_view content_type) {
  if (!starts_with_ci(content_type, "application/json")) return false;
  const std::string_view rest = content_type.substr(16);
  return rest.empty() || rest.front() == ';' || rest.front() == ' ';
}

// The first JSON value of the body (json-c, default lenient settings), or
// nullptr. Lenient on purpose: the module's strict parser must accept a
// subset of what this accepts, and find the same object.
inline json_object* reference_parse(std::string_view body) {
  json_tokener* tok = json_tokener_new();
  if (tok == nullptr) return nullptr;
  json_object* obj = json_tokener_parse_ex(tok, body.data(),
                                           static_cast<int>(body.size()));
  if (json_tokener_get_error(tok) != json_tokener_success) {
    json_object_put(obj);
    obj = nullptr;
  }
  json_tokener_free(tok);
  return obj;
}

// The body is an object holding the string member `key` equal to `want`,
// embedded NULs included.
inline bool reference_member_is(std::string_view body, const char* key,
                                std::string_view want) {
  json_object* obj = reference_parse(body);
  bool ok = false;
  json_object* v = nullptr;
  if (obj != nullptr && json_object_is_type(obj, json_type_object) &&
      json_object_object_get_ex(obj, key, &v) &&
      json_object_is_type(v, json_type_string)) {
    const std::string_view s(
        json_object_get_string(v),
        static_cast<std::size_t>(json_object_get_string_len(v)));
    ok = s == want;
  }
  json_object_put(obj);
  return ok;
}

// False when the object has a "valid" member that is not the boolean true.
inline bool reference_valid_not_false(std::string_view body) {
  json_object* obj = reference_parse(body);
  bool ok = true;
  json_object* v = nullptr;
  if (obj != nullptr && json_object_is_type(obj, json_type_object) &&
      json_object_object_get_ex(obj, "valid", &v))
    ok = json_object_is_type(v, json_type_boolean) &&
         json_object_get_boolean(v);
  json_object_put(obj);
  return ok;
}

// What interpret_check may call approved, at the least: a 2xx JSON answer
// whose object has "status": "approved".
inline bool reference_may_approve(long status, std::string_view content_type,
                                  std::string_view body) {
  return status >= 200 && status <= 299 && reference_is_json(content_type) &&
         reference_member_is(body, "status", "approved");
}

}  // namespace ptv_fuzz
