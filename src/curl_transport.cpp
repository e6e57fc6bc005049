#include "curl_transport.hpp"

#include <stdlib.h>
#include <strings.h>

#include <cstring>

namespace ptv {

namespace {

constexpr char kUserAgent[] = "pam_twilio_verify/" PTV_VERSION;
constexpr char kSystemCaPath[] = "/etc/ssl/certs";

struct Exchange {
  HttpResponse response;
  bool too_large = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  if (ex->response.body.size() + n > kMaxResponseBytes) {
    ex->too_large = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  ex->response.body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  constexpr std::string_view kRetry = "retry-after:";
  if (line.size() > kRetry.size() &&
      strncasecmp(line.data(), kRetry.data(), kRetry.size()) == 0) {
    long seconds = 0;
    bool digits = false;
    for (char c : line.substr(kRetry.size())) {
      if (c >= '0' && c <= '9') {
        if (seconds < 100000) seconds = seconds * 10 + (c - '0');
        digits = true;
      } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
        digits = false;  // an HTTP date: not used
        break;
      }
    }
    if (digits) ex->response.retry_after_s = seconds;
  }
  return n;
}

Secret base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  Secret out;
  out.reserve((in.size() + 2) / 3 * 4 + 1);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

TransportError classify(CURLcode rc, CURL* curl, const Exchange& ex,
                        const char* errbuf) {
  std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return {TransportErrorKind::Unreachable, detail};
    case CURLE_OPERATION_TIMEDOUT: {
      // Whether the request went out decides: before that, nothing reached
      // Twilio (a connect timeout); after, Twilio may have acted on it. The
      // connect time cannot tell: it is 0 on a reused connection.
      long sent = 0;
      curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &sent);
      return {sent == 0 ? TransportErrorKind::Unreachable
                        : TransportErrorKind::Timeout,
              detail};
    }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
      return {TransportErrorKind::Tls, detail};
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
      if (ex.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return {TransportErrorKind::TooLarge,
                "response body larger than 64 KiB"};
      return {TransportErrorKind::Internal, detail};
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
      return {TransportErrorKind::Protocol, detail};
    default:
      return {TransportErrorKind::Internal, detail};
  }
}

}  // namespace

const char* describe(TransportErrorKind kind) {
  switch (kind) {
    case TransportErrorKind::Unreachable:
      return "unreachable";
    case TransportErrorKind::Timeout:
      return "timeout";
    case TransportErrorKind::Tls:
      return "TLS failure";
    case TransportErrorKind::Protocol:
      return "broken HTTP exchange";
    case TransportErrorKind::TooLarge:
      return "response too large";
    case TransportErrorKind::Internal:
      return "internal error";
  }
  return "error";
}

// libcurl reads SSLKEYLOGFILE with getenv() when it first initialises its
// TLS library, and would then write the session keys to that file. su and
// sudo keep the calling user's environment, so the variable is hidden while
// the module initialises libcurl (once per process; libcurl counts the
// initialisations, so a host application that uses libcurl itself keeps
// whatever it set up).
void init_curl_without_keylog() {
  static const bool done = [] {
    const char* keylog = getenv("SSLKEYLOGFILE");
    std::string saved = keylog != nullptr ? keylog : "";
    if (keylog != nullptr) unsetenv("SSLKEYLOGFILE");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (keylog != nullptr) setenv("SSLKEYLOGFILE", saved.c_str(), 1);
    return true;
  }();
  (void)done;
}

std::expected<std::unique_ptr<CurlTransport>, TransportError>
CurlTransport::create(const Config& config) {
  init_curl_without_keylog();
  std::unique_ptr<CurlTransport> t(new CurlTransport());
  t->curl_.reset(curl_easy_init());
  CURL* c = t->curl_.get();
  if (c == nullptr)
    return std::unexpected(
        TransportError{TransportErrorKind::Internal, "curl_easy_init failed"});

  // "Authorization: Basic base64(user:secret)", in memory we wipe.
  Secret credentials;
  credentials.reserve(config.auth_user().size() + config.auth_secret().size() +
                      2);
  credentials.append(config.auth_user());
  credentials.push_back(':');
  credentials.append(config.auth_secret().view());
  Secret encoded = base64(credentials.view());
  Secret header;
  header.reserve(encoded.size() + 32);
  header.append("Authorization: Basic ");
  header.append(encoded.view());
  t->headers_.reset(curl_slist_append(nullptr, header.c_str()));
  curl_slist* list = t->headers_.get();
  for (const char* h : {"Accept: application/json",
                        "Content-Type: application/x-www-form-urlencoded",
                        "Expect:"}) {
    if (list == nullptr) break;
    list = curl_slist_append(list, h);
  }
  if (list == nullptr)
    return std::unexpected(
        TransportError{TransportErrorKind::Internal, "out of memory"});

  bool ok = true;
  auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
  set(curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers_.get()));
  set(curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https"));
  set(curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https"));
  set(curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L));
  set(curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L));
  set(curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2));
  if (!config.ca_file.empty()) {
    // ca_file replaces the system trust store: it is then the only anchor.
    set(curl_easy_setopt(c, CURLOPT_CAINFO, config.ca_file.c_str()));
    set(curl_easy_setopt(c, CURLOPT_CAPATH, nullptr));
  } else {
    // The system trust store through its hashed directory: OpenSSL then
    // reads only the certificates a handshake needs, instead of parsing
    // the whole bundle (about 150 certificates) at every login.
    set(curl_easy_setopt(c, CURLOPT_CAINFO, nullptr));
    set(curl_easy_setopt(c, CURLOPT_CAPATH, kSystemCaPath));
  }
  // Proxy settings come from the config file only. An empty CURLOPT_PROXY
  // disables the environment's http(s)_proxy, and an empty CURLOPT_NOPROXY
  // overrides its no_proxy: a user running su must not be able to route
  // the module through a proxy of theirs, or around the configured one.
  set(curl_easy_setopt(c, CURLOPT_PROXY, config.proxy.c_str()));
  set(curl_easy_setopt(c, CURLOPT_NOPROXY, ""));
  set(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L));
  t->connect_timeout_ms_ = config.connect_timeout_ms;
  set(curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, config.connect_timeout_ms));
  set(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, config.timeout_ms));
  set(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(kMaxResponseBytes)));
  set(curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent));
  set(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body));
  set(curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header));
  set(curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED)));
  set(curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L));
  if (!ok)
    return std::unexpected(TransportError{
        TransportErrorKind::Internal, "libcurl refused an option"});
  return t;
}

std::expected<HttpResponse, TransportError> CurlTransport::post_form(
    const std::string& url, const Secret& body,
    std::chrono::milliseconds budget) {
  CURL* c = curl_.get();
  const long total = budget.count() > 0 ? static_cast<long>(budget.count()) : 1;
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   connect_timeout_ms_ < total ? connect_timeout_ms_ : total);
  Exchange ex;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(body.size()));
  const CURLcode rc = curl_easy_perform(c);
  // The body (which may hold the code) is the caller's; make sure curl
  // keeps no pointer to it past this call.
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  if (rc != CURLE_OK) return std::unexpected(classify(rc, c, ex, errbuf));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ex.response.status);
  const char* type = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) ex.response.content_type = type;
  return std::move(ex.response);
}

}  // namespace ptv
