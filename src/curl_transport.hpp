// HttpTransport over one libcurl easy handle, reused for every request of
// one authentication so that create, check and cancel share a connection.
#pragma once

#include <curl/curl.h>

#include <memory>

#include "config.hpp"
#include "handles.hpp"
#include "http_transport.hpp"

namespace ptv {

class CurlTransport final : public HttpTransport {
 public:
  // Sets up the handle: https only, TLS verification on (ca_file when set),
  // no redirects, no proxy from the environment, timeouts from the config,
  // Basic auth built once into a header whose memory is wiped at the end.
  static std::expected<std::unique_ptr<CurlTransport>, TransportError> create(
      const Config& config);

  std::expected<HttpResponse, TransportError> post_form(
      const std::string& url, const Secret& body,
      std::chrono::milliseconds budget) override;

 private:
  CurlTransport() = default;
  long connect_timeout_ms_ = 0;
  CurlHeaders headers_;  // declared first: it must outlive the handle
  CurlHandle curl_;
};

}  // namespace ptv
