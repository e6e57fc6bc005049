// HttpTransport over one libcurl easy handle, reused for every request of
// one authentication so that create, check and cancel share a connection.
//
// The deadlines are the module's, not libcurl's: libcurl judges its own
// timeouts before it reads what has arrived, so a process stopped (SIGSTOP,
// Ctrl-Z) for longer than timeout_ms would see a timeout although Twilio
// had answered. Here the transfer runs through the multi interface in a
// loop that reads whatever has arrived first, and declares a timeout only
// after the connection stayed silent while the module was really waiting.
#pragma once

#include <curl/curl.h>

#include <memory>

#include "net/net_handles.hpp"
#include "net/http_transport.hpp"
#include "twilio/settings.hpp"

namespace ptv {

class CurlTransport final : public HttpTransport {
 public:
  // Sets up the handle: https only, TLS verification on (ca_file when set),
  // no redirects, no proxy from the environment, Basic auth built once
  // into a header whose memory is wiped at the end.
  static std::expected<std::unique_ptr<CurlTransport>, TransportError> create(
      const TwilioSettings& settings);

  std::expected<HttpResponse, TransportError> post_form(
      const std::string& url, const Secret& body,
      std::chrono::milliseconds budget) override;
  std::expected<HttpResponse, TransportError> get(
      const std::string& url, std::chrono::milliseconds budget) override;
  std::expected<HttpResponse, TransportError> del(
      const std::string& url, std::chrono::milliseconds budget) override;

 private:
  // One exchange: a POST of *body, or a GET when body is null (a DELETE
  // when also `remove`).
  std::expected<HttpResponse, TransportError> exchange(
      const std::string& url, const Secret* body,
      std::chrono::milliseconds budget, bool remove = false);
  CurlTransport() = default;
  // Resolves the host libcurl will connect to (the API's, or the proxy's)
  // once, and hands the addresses to libcurl.
  std::expected<void, TransportError> resolve_once(
      std::chrono::steady_clock::time_point deadline);

  long connect_timeout_ms_ = 0;
  std::string connect_url_;  // the proxy when one is set, else the API's URL
  bool resolved_ = false;
  CurlHeaders headers_;  // declared first: the lists outlive the handles
  CurlList resolve_list_;
  CurlMulti multi_;
  CurlHandle curl_;
};

}  // namespace ptv
