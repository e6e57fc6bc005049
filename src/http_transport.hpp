// The HTTP transport behind a small interface: the real one uses libcurl;
// unit tests and fuzzers use a fake.
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <string_view>

#include "secret.hpp"

namespace ptv {

struct HttpResponse {
  long status = 0;
  std::string content_type;
  std::string body;
  long retry_after_s = -1;  // from a Retry-After header, -1 when absent
};

enum class TransportErrorKind {
  Unreachable,  // DNS failure, connection refused, connect timeout
  Timeout,      // no complete answer within timeout_ms
  Tls,          // certificate or handshake failure: never fail-open
  Protocol,     // truncated or otherwise broken HTTP exchange
  TooLarge,     // response body over kMaxResponseBytes
  Internal,     // out of memory, curl could not be set up
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
};

}  // namespace ptv
