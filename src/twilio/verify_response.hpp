// Interpretation of Twilio Verify answers: what an HTTP response means for
// the authentication. Pure functions over (status, content type, body), so
// that every status and error code is unit-tested and fuzzed.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_transport.hpp"

namespace ptv {

// Why Twilio did not give the answer asked for.
enum class VerifyError {
  Unavailable,       // 5xx: Twilio is failing (failmode applies)
  Throttled,         // 429 (20429...) without a rate limit named: Twilio's
                     // account throttle, caused by traffic that anyone
                     // can generate; denies under both failmodes
  RateLimited,       // 429 with Twilio-Reached-Rate-Limit: one of the
                     // service's rate limits is used up; denies
  AuthFailed,        // 401/20003: wrong credentials (a configuration error)
  NotFound,          // 404/20404: expired, already approved or used up
  InvalidParameter,  // 400/60200
  MaxChecks,         // 429/60202
  MaxSends,          // 429/60203
  Landline,          // 403/60205
  FraudGuard,        // 403/60410
  GeoBlocked,        // 403/60605
  Undeliverable,     // Messaging 21211, 21408, 21610, 21614: no SMS can
                     // go to this number (invalid, region, opted out,
                     // not a mobile)
  SenderRefused,     // Messaging 21606, 21659: the From or the Messaging
                     // Service cannot send it (a configuration error)
  Expired,           // Messaging: the helper's code outlived code_ttl_s,
                     // or was used (no request to Twilio)
  Rejected,          // any other 4xx
  Malformed,         // unexpected status, content type or JSON
};

// True for the errors that mean Twilio cannot be reached or is failing:
// only these let failmode = "safe" open. A throttle (429) is not one of
// them: it answers traffic, which an attacker can make.
bool is_unavailable(VerifyError e);

const char* describe(VerifyError e);

// Twilio's refusal, as its answer said it.
struct Refusal {
  VerifyError error = VerifyError::Malformed;
  int twilio_code = 0;     // the "code" of the error body, 0 when none
  std::string rate_limit;  // RateLimited: the limit Twilio named
};
// The error, with Twilio's code where the description does not hold it.
std::string describe(const Refusal& r);

enum class CheckStatus { Approved, Pending, Other };

// A started verification: its SID (^VE[0-9a-fA-F]{32}$, checked).
std::expected<std::string, Refusal> interpret_start(const HttpResponse& response);
std::expected<CheckStatus, Refusal> interpret_check(const HttpResponse& response);
// A message created by Programmable Messaging (POST .../Messages.json):
// its SID (SM or MM + 32 hex digits) with status "queued" or "accepted".
std::expected<std::string, Refusal> interpret_message(const HttpResponse& response);
// A cancel only needs to know whether it was taken.
std::expected<void, Refusal> interpret_cancel(const HttpResponse& response);

// The Verify service as GET /v2/Services/{sid} describes it (what
// twilio-verify-admin check shows).
struct ServiceInfo {
  std::string sid;            // VA + 32 hex digits, checked
  std::string friendly_name;  // as Twilio has it (may be empty)
  long code_length = 0;       // 4 to 10; 0 when absent
};
std::expected<ServiceInfo, Refusal> interpret_service(const HttpResponse& response);

// The service's rate limits and buckets, as GET .../RateLimits and
// .../RateLimits/{sid}/Buckets list them (twilio-verify-admin rate-limits).
struct ServiceBucket {
  std::string sid;  // BL + 32 hex digits, checked
  long max = 0;
  long interval_s = 0;
};
struct ServiceRateLimit {
  std::string sid;  // RK + 32 hex digits, checked
  std::string unique_name;
  std::vector<ServiceBucket> buckets;
};
std::expected<std::vector<ServiceRateLimit>, Refusal> interpret_rate_limits(
    const HttpResponse& response);
std::expected<std::vector<ServiceBucket>, Refusal> interpret_buckets(
    const HttpResponse& response);
// A created or updated resource: its SID, which must start with `prefix`.
std::expected<std::string, Refusal> interpret_resource(const HttpResponse& response,
                                                       std::string_view prefix);
// A DELETE: 204 (any 2xx).
std::expected<void, Refusal> interpret_delete(const HttpResponse& response);

}  // namespace ptv
