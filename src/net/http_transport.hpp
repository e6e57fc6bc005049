// The HTTP transport behind a small interface: the real one uses libcurl;
// unit tests and fuzzers use a fake.
#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "util/secret.hpp"

namespace ptv {

struct HttpResponse {
  long status = 0;
  std::string content_type;
  std::string body;
  long retry_after_s = -1;  // from a Retry-After header, -1 when absent
  // A Twilio-Reached-Rate-Limit header: one of the service's rate limits
  // (Verify's Programmable Rate Limits) refused the request.
  bool reached_rate_limit = false;
  std::string rate_limit_name;  // the header's value, as sent
};

// Only the first three are evidence that Twilio cannot be reached or is
// failing, and only they let failmode = "safe" open.
enum class TransportErrorKind {
  Unreachable,    // nothing left the host: the resolver answered that the
                  // name does not resolve, the kernel reported the
                  // connection refused or unroutable, or nothing answered
                  // within connect_timeout_ms
  Timeout,        // the request went out and nothing came back in time
  Protocol,       // the server broke the exchange off (closed, reset,
                  // truncated or stalled answer)
  Tls,            // certificate or handshake failure: never fail-open
  TooLarge,       // response body over kMaxResponseBytes
  LocalResource,  // this process ran out of descriptors, memory, threads or
                  // local ports: the caller of su can cause that
  Internal,       // libcurl could not be set up, or failed in another way
};

struct TransportError {
  TransportErrorKind kind = TransportErrorKind::Internal;
  std::string detail;  // safe to log
};

inline constexpr std::size_t kMaxResponseBytes = 64 * 1024;

const char* describe(TransportErrorKind kind);

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // POSTs a form-encoded body to an https URL, with the transport's
  // credentials. Redirects are never followed: a 3xx is returned as is.
  // The exchange ends within `budget` (connecting included), whatever the
  // configured timeouts say.
  virtual std::expected<HttpResponse, TransportError> post_form(
      const std::string& url, const Secret& body,
      std::chrono::milliseconds budget) = 0;
  // GETs an https URL, with the same credentials, rules and budget. Only
  // twilio-verify-admin's check uses it (the Service fetch, which sends
  // nothing); a transport without it answers Internal.
  virtual std::expected<HttpResponse, TransportError> get(
      const std::string& /*url*/, std::chrono::milliseconds /*budget*/) {
    return std::unexpected(
        TransportError{TransportErrorKind::Internal, "GET is not supported"});
  }
  // DELETEs an https URL, with the same credentials, rules and budget.
  // Only twilio-verify-admin rate-limits --prune uses it.
  virtual std::expected<HttpResponse, TransportError> del(
      const std::string& /*url*/, std::chrono::milliseconds /*budget*/) {
    return std::unexpected(
        TransportError{TransportErrorKind::Internal, "DELETE is not supported"});
  }
};

// Makes the transport of one login, when (and only when) a request is to
// be made: the real one sets up libcurl, tests and fuzzers return fakes.
class TransportMaker {
 public:
  virtual ~TransportMaker() = default;
  virtual std::expected<std::unique_ptr<HttpTransport>, TransportError> make() = 0;
};

}  // namespace ptv
