// interpret_start, interpret_check and interpret_cancel over fuzzed HTTP
// answers. Input: one byte picks the status (a table of the statuses that
// matter, or a raw value from the next two bytes), one byte the content
// type; the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "fuzz_common.hpp"
#include "twilio/sid.hpp"
#include "twilio/verify_response.hpp"

namespace {

constexpr long kStatuses[] = {200, 201, 204, 301, 302, 400, 401,
                              403, 404, 429, 500, 502, 503};
constexpr std::size_t kNumStatuses = sizeof kStatuses / sizeof kStatuses[0];

constexpr const char* kContentTypes[] = {
    "application/json",
    "application/json; charset=utf-8",
    "text/html",
    "",
    "Application/JSON;charset=UTF-8",
    "application/jsonp",
    "application/problem+json",
    "text/plain; application/json",
};
constexpr std::size_t kNumContentTypes =
    sizeof kContentTypes / sizeof kContentTypes[0];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return -1;
  ptv::HttpResponse r;
  std::size_t pos = 0;
  const std::size_t pick = data[pos++];
  if (pick % 16 < kNumStatuses) {
    r.status = kStatuses[pick % 16];
  } else if (size - pos >= 2) {
    // Raw: 0 .. 65535 shifted so that negative values occur too.
    r.status = static_cast<long>((data[pos] << 8) | data[pos + 1]) - 1000;
    pos += 2;
  }
  if (pos < size) r.content_type = kContentTypes[data[pos++] % kNumContentTypes];
  const std::string_view body_view(reinterpret_cast<const char*>(data + pos),
                                   size - pos);
  if (body_view.size() > ptv::kMaxResponseBytes) return -1;
  r.body = std::string(body_view);

  const bool ok_status = r.status >= 200 && r.status <= 299;
  const auto start = ptv::interpret_start(r);
  const auto check = ptv::interpret_check(r);
  const auto cancel = ptv::interpret_cancel(r);
  for (const ptv::Refusal* refused :
       {start ? nullptr : &start.error(), check ? nullptr : &check.error(),
        cancel ? nullptr : &cancel.error()})
    if (refused != nullptr) FUZZ_CHECK(ptv::describe(refused->error) != nullptr);

  // Approved only for a 2xx JSON object whose "status" is "approved", and
  // never when "valid" says otherwise.
  if (check && *check == ptv::CheckStatus::Approved) {
    FUZZ_CHECK(ok_status);
    FUZZ_CHECK(ptv_fuzz::reference_is_json(r.content_type));
    FUZZ_CHECK(ptv_fuzz::reference_may_approve(r.status, r.content_type,
                                               r.body));
    FUZZ_CHECK(ptv_fuzz::reference_valid_not_false(r.body));
  }
  if (check) {
    FUZZ_CHECK(ok_status);
    FUZZ_CHECK(ptv_fuzz::reference_is_json(r.content_type));
  }
  if (check && *check == ptv::CheckStatus::Pending)
    FUZZ_CHECK(ptv_fuzz::reference_member_is(r.body, "status", "pending"));

  // A started verification has a well-formed SID, and it is pending.
  if (start) {
    FUZZ_CHECK(ptv::is_sid(*start, "VE"));
    FUZZ_CHECK(ok_status);
    FUZZ_CHECK(ptv_fuzz::reference_is_json(r.content_type));
    FUZZ_CHECK(ptv_fuzz::reference_member_is(r.body, "sid", *start));
    FUZZ_CHECK(ptv_fuzz::reference_member_is(r.body, "status", "pending"));
  }

  FUZZ_CHECK(cancel.has_value() == ok_status);
  if (!ok_status) {
    // The three agree on what an error status means.
    FUZZ_CHECK(!start && !check && !cancel);
    const ptv::VerifyError e = cancel.error().error;
    FUZZ_CHECK(start.error().error == check.error().error &&
               check.error().error == e);
    FUZZ_CHECK(start.error().twilio_code == check.error().twilio_code);
    if (r.status >= 500 && r.status <= 599)
      FUZZ_CHECK(e == ptv::VerifyError::Unavailable);
    if (r.status == 401) FUZZ_CHECK(e == ptv::VerifyError::AuthFailed);
    if (r.status == 404) FUZZ_CHECK(e == ptv::VerifyError::NotFound);
    if (r.status < 400 || r.status > 599)
      FUZZ_CHECK(e == ptv::VerifyError::Malformed);
    // Only 5xx and 429 may open with failmode = safe.
    if (ptv::is_unavailable(e))
      FUZZ_CHECK((r.status >= 500 && r.status <= 599) || r.status == 429);
    if (!ptv_fuzz::reference_is_json(r.content_type))
      FUZZ_CHECK(check.error().twilio_code == 0);
  } else {
    // A 2xx answer that is not understood is Malformed, with no code.
    FUZZ_CHECK(start || start.error().twilio_code == 0);
    FUZZ_CHECK(check || check.error().twilio_code == 0);
  }
  return 0;
}
