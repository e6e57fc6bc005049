#include "twilio/verify_response.hpp"

#include "util/log.hpp"

#include <strings.h>

#include "twilio/sid.hpp"
#include "net/net_handles.hpp"

namespace ptv {

namespace {

bool is_json(std::string_view content_type) {
  constexpr std::string_view kJson = "application/json";
  if (content_type.size() < kJson.size() ||
      strncasecmp(content_type.data(), kJson.data(), kJson.size()) != 0)
    return false;
  const std::string_view rest = content_type.substr(kJson.size());
  return rest.empty() || rest.front() == ';' || rest.front() == ' ';
}

// Parses a complete JSON object; nullptr for anything else (broken JSON,
// trailing garbage, a value that is not an object, too deep).
JsonHandle parse_object(std::string_view body) {
  JsonTokener tok(json_tokener_new_ex(32));
  if (!tok) return nullptr;
  // Strict JSON only: no single quotes, trailing commas or leading zeros.
  json_tokener_set_flags(tok.get(), JSON_TOKENER_STRICT);
  JsonHandle obj(json_tokener_parse_ex(tok.get(), body.data(),
                                       static_cast<int>(body.size())));
  if (!obj || json_tokener_get_error(tok.get()) != json_tokener_success)
    return nullptr;
  if (json_tokener_get_parse_end(tok.get()) != body.size()) {
    // Only white space may follow the object.
    for (std::size_t i = json_tokener_get_parse_end(tok.get());
         i < body.size(); ++i) {
      const char c = body[i];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return nullptr;
    }
  }
  if (!json_object_is_type(obj.get(), json_type_object)) return nullptr;
  return obj;
}

std::string_view string_member(json_object* obj, const char* key) {
  json_object* v = nullptr;
  if (!json_object_object_get_ex(obj, key, &v) ||
      !json_object_is_type(v, json_type_string))
    return {};
  return {json_object_get_string(v),
          static_cast<std::size_t>(json_object_get_string_len(v))};
}

// Classifies a non-2xx answer from its HTTP status and Twilio error code.
std::pair<VerifyError, int> classify(const HttpResponse& r) {
  int code = 0;
  if (is_json(r.content_type)) {
    if (JsonHandle obj = parse_object(r.body)) {
      json_object* v = nullptr;
      if (json_object_object_get_ex(obj.get(), "code", &v) &&
          json_object_is_type(v, json_type_int))
        code = static_cast<int>(json_object_get_int64(v));
    }
  }
  const long s = r.status;
  if (s >= 500 && s <= 599) return {VerifyError::Unavailable, code};
  if (s == 429) {
    if (code == 60202) return {VerifyError::MaxChecks, code};
    if (code == 60203) return {VerifyError::MaxSends, code};
    if (r.reached_rate_limit) return {VerifyError::RateLimited, code};
    return {VerifyError::Throttled, code};  // 20429 or unknown
  }
  if (s == 401) return {VerifyError::AuthFailed, code};
  if (s == 404) return {VerifyError::NotFound, code};
  if (s == 400 && code == 60200) return {VerifyError::InvalidParameter, code};
  if (s == 403 && code == 60205) return {VerifyError::Landline, code};
  if (s == 403 && code == 60410) return {VerifyError::FraudGuard, code};
  if (s == 403 && code == 60605) return {VerifyError::GeoBlocked, code};
  if (s >= 400 && s <= 499) return {VerifyError::Rejected, code};
  return {VerifyError::Malformed, code};  // 1xx, 3xx (redirects), other
}

}  // namespace

bool is_unavailable(VerifyError e) { return e == VerifyError::Unavailable; }

const char* describe(VerifyError e) {
  switch (e) {
    case VerifyError::Unavailable:
      return "service unavailable";
    case VerifyError::Throttled:
      return "Twilio throttled the request (429)";
    case VerifyError::RateLimited:
      return "a rate limit of the Verify service is reached (429)";
    case VerifyError::AuthFailed:
      return "Twilio rejected the credentials (20003)";
    case VerifyError::NotFound:
      return "verification not found: expired, already used or canceled "
             "(20404)";
    case VerifyError::InvalidParameter:
      return "invalid parameter (60200)";
    case VerifyError::MaxChecks:
      return "too many check attempts (60202)";
    case VerifyError::MaxSends:
      return "too many codes sent to this number (60203)";
    case VerifyError::Landline:
      return "the number cannot receive SMS (60205)";
    case VerifyError::FraudGuard:
      return "number prefix blocked by Fraud Guard (60410)";
    case VerifyError::GeoBlocked:
      return "destination blocked by geo permissions (60605)";
    case VerifyError::Undeliverable:
      return "Twilio cannot send an SMS to this number";
    case VerifyError::SenderRefused:
      return "the sender cannot send this message; check messaging.from or "
             "messaging.messaging_service_sid";
    case VerifyError::Expired:
      return "the code has expired (code_ttl_s) or was already used";
    case VerifyError::Rejected:
      return "request rejected";
    case VerifyError::Malformed:
      return "unexpected response";
  }
  return "error";
}

std::string describe(const Refusal& r) {
  std::string text = describe(r.error);
  const std::string code = std::to_string(r.twilio_code);
  if (r.twilio_code != 0 && text.find(code) == std::string::npos)
    text += " [Twilio code " + code + "]";
  if (r.error == VerifyError::RateLimited)
    text += ": rate limit " + (r.rate_limit.empty()
                                   ? std::string("(unnamed)")
                                   : "\"" + log_safe(r.rate_limit, 100) + "\"");
  return text;
}

namespace {

bool is_success(const HttpResponse& r) { return r.status >= 200 && r.status <= 299; }

Refusal refusal(const HttpResponse& r) {
  auto [error, code] = classify(r);
  Refusal refused{error, code, {}};
  if (error == VerifyError::RateLimited) refused.rate_limit = r.rate_limit_name;
  return refused;
}

const std::unexpected<Refusal> kMalformed{Refusal{}};

}  // namespace

std::expected<std::string, Refusal> interpret_start(const HttpResponse& r) {
  if (!is_success(r)) return std::unexpected(refusal(r));
  if (!is_json(r.content_type)) return kMalformed;
  JsonHandle obj = parse_object(r.body);
  if (!obj) return kMalformed;
  const std::string_view sid = string_member(obj.get(), "sid");
  if (!is_sid(sid, "VE")) return kMalformed;
  if (string_member(obj.get(), "status") != "pending") return kMalformed;
  return std::string(sid);
}

std::expected<CheckStatus, Refusal> interpret_check(const HttpResponse& r) {
  if (!is_success(r)) return std::unexpected(refusal(r));
  if (!is_json(r.content_type)) return kMalformed;
  JsonHandle obj = parse_object(r.body);
  if (!obj) return kMalformed;
  const std::string_view status = string_member(obj.get(), "status");
  if (status.empty()) return kMalformed;
  if (status == "pending") return CheckStatus::Pending;
  if (status != "approved") return CheckStatus::Other;
  // "valid" must not contradict the status when Twilio sends it.
  json_object* valid = nullptr;
  if (json_object_object_get_ex(obj.get(), "valid", &valid) &&
      (!json_object_is_type(valid, json_type_boolean) ||
       !json_object_get_boolean(valid)))
    return kMalformed;
  return CheckStatus::Approved;
}

std::expected<std::string, Refusal> interpret_message(const HttpResponse& r) {
  if (!is_success(r)) {
    Refusal refused = refusal(r);
    const int code = refused.twilio_code;
    if (code == 20003) refused.error = VerifyError::AuthFailed;
    if (code == 21211 || code == 21408 || code == 21610 || code == 21614)
      refused.error = VerifyError::Undeliverable;
    if (code == 21606 || code == 21659) refused.error = VerifyError::SenderRefused;
    // Messaging has no Verify rate limits or send counts: a 429 is a throttle.
    if (r.status == 429) refused.error = VerifyError::Throttled;
    return std::unexpected(refused);
  }
  if (!is_json(r.content_type)) return kMalformed;
  JsonHandle obj = parse_object(r.body);
  if (!obj) return kMalformed;
  const std::string_view sid = string_member(obj.get(), "sid");
  if (!is_sid(sid, "SM") && !is_sid(sid, "MM")) return kMalformed;
  const std::string_view status = string_member(obj.get(), "status");
  if (status != "queued" && status != "accepted") return kMalformed;
  return std::string(sid);
}

std::expected<void, Refusal> interpret_cancel(const HttpResponse& r) {
  if (is_success(r)) return {};
  return std::unexpected(Refusal{classify(r).first, 0, {}});
}

std::expected<ServiceInfo, Refusal> interpret_service(const HttpResponse& r) {
  if (!is_success(r)) return std::unexpected(refusal(r));
  if (!is_json(r.content_type)) return kMalformed;
  JsonHandle obj = parse_object(r.body);
  if (!obj) return kMalformed;
  ServiceInfo info;
  info.sid = std::string(string_member(obj.get(), "sid"));
  if (!is_sid(info.sid, "VA")) return kMalformed;
  info.friendly_name = std::string(string_member(obj.get(), "friendly_name"));
  json_object* length = nullptr;
  if (json_object_object_get_ex(obj.get(), "code_length", &length) &&
      json_object_is_type(length, json_type_int)) {
    const auto n = json_object_get_int64(length);
    if (n < 4 || n > 10) return kMalformed;
    info.code_length = static_cast<long>(n);
  }
  return info;
}

namespace {

long integer_member(json_object* obj, const char* key) {
  json_object* v = nullptr;
  if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
    return -1;
  return static_cast<long>(json_object_get_int64(v));
}

// The array `key` of a 2xx JSON list answer, each element read by `read`
// (false: malformed).
template <typename T>
std::expected<std::vector<T>, Refusal> read_list(const HttpResponse& r, const char* key,
                                                 bool (*read)(json_object*, T&)) {
  if (!is_success(r)) return std::unexpected(refusal(r));
  if (!is_json(r.content_type)) return kMalformed;
  JsonHandle obj = parse_object(r.body);
  json_object* list = nullptr;
  if (!obj || !json_object_object_get_ex(obj.get(), key, &list) ||
      !json_object_is_type(list, json_type_array))
    return kMalformed;
  std::vector<T> out;
  for (std::size_t i = 0; i < json_object_array_length(list); ++i) {
    json_object* e = json_object_array_get_idx(list, i);
    T item;
    if (!json_object_is_type(e, json_type_object) || !read(e, item)) return kMalformed;
    out.push_back(std::move(item));
  }
  return out;
}

bool read_rate_limit(json_object* e, ServiceRateLimit& l) {
  l.sid = std::string(string_member(e, "sid"));
  l.unique_name = std::string(string_member(e, "unique_name"));
  return is_sid(l.sid, "RK");
}

bool read_bucket(json_object* e, ServiceBucket& b) {
  b.sid = std::string(string_member(e, "sid"));
  b.max = integer_member(e, "max");
  b.interval_s = integer_member(e, "interval");
  return is_sid(b.sid, "BL") && b.max >= 0 && b.interval_s >= 0;
}

}  // namespace

std::expected<std::vector<ServiceRateLimit>, Refusal> interpret_rate_limits(
    const HttpResponse& r) {
  return read_list<ServiceRateLimit>(r, "rate_limits", read_rate_limit);
}

std::expected<std::vector<ServiceBucket>, Refusal> interpret_buckets(
    const HttpResponse& r) {
  return read_list<ServiceBucket>(r, "buckets", read_bucket);
}

std::expected<std::string, Refusal> interpret_resource(const HttpResponse& r,
                                                       std::string_view prefix) {
  if (!is_success(r)) return std::unexpected(refusal(r));
  if (!is_json(r.content_type)) return kMalformed;
  JsonHandle obj = parse_object(r.body);
  if (!obj) return kMalformed;
  const std::string_view sid = string_member(obj.get(), "sid");
  if (!is_sid(sid, prefix)) return kMalformed;
  return std::string(sid);
}

std::expected<void, Refusal> interpret_delete(const HttpResponse& r) {
  if (is_success(r)) return {};
  return std::unexpected(refusal(r));
}

}  // namespace ptv
