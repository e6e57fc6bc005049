#include "net/curl_transport.hpp"

#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/log.hpp"
#include "net/resolve.hpp"
#include "util/stop_signals.hpp"

namespace ptv {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kUserAgent[] = "pam_twilio_verify/" PTV_VERSION;
constexpr char kSystemCaPath[] = "/etc/ssl/certs";

struct Exchange {
  HttpResponse response;
  bool too_large = false;
  bool received = false;         // any byte of an answer arrived
  bool request_started = false;  // connected; the request may have gone out
  int socket_errno = 0;          // socket() failed with this
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  ex->received = true;
  if (ex->response.body.size() + n > kMaxResponseBytes) {
    ex->too_large = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  ex->response.body.append(data, n);
  return n;
}

bool header_is(std::string_view line, std::string_view name) {
  return line.size() > name.size() &&
         strncasecmp(line.data(), name.data(), name.size()) == 0;
}

std::string_view trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' ||
                        v.back() == '\n'))
    v.remove_suffix(1);
  return v;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  ex->received = true;
  std::string_view line(data, n);
  constexpr std::string_view kRetry = "retry-after:";
  constexpr std::string_view kRateLimit = "twilio-reached-rate-limit:";
  if (header_is(line, kRateLimit)) {
    ex->response.reached_rate_limit = true;
    ex->response.rate_limit_name =
        std::string(trimmed(line.substr(kRateLimit.size())).substr(0, 200));
  } else if (header_is(line, kRetry)) {
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

// Called once the connection (TLS included) is up, just before the request
// is sent: from here on Twilio may act on it.
int on_prereq(void* user, char*, char*, int, int) {
  static_cast<Exchange*>(user)->request_started = true;
  return CURL_PREREQFUNC_OK;
}

// The module opens the sockets itself, so that a socket() refused for lack
// of descriptors is known to be local, not Twilio being unreachable.
curl_socket_t open_socket(void* user, curlsocktype, curl_sockaddr* a) {
  const int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd < 0) {
    static_cast<Exchange*>(user)->socket_errno = errno;
    return CURL_SOCKET_BAD;
  }
  return fd;
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

bool is_local_errno(long e) {
  return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS ||
         e == EAGAIN || e == EADDRNOTAVAIL;
}

// Only what the kernel reports about the network is evidence of an outage.
bool is_network_errno(long e) {
  return e == ECONNREFUSED || e == ENETUNREACH || e == EHOSTUNREACH ||
         e == ENETDOWN || e == EHOSTDOWN || e == ETIMEDOUT;
}

TransportError connect_failure(CURL* curl, const Exchange& ex,
                               std::string detail) {
  if (ex.socket_errno != 0)
    return {TransportErrorKind::LocalResource,
            std::string("cannot open a socket: ") + std::strerror(ex.socket_errno)};
  long os_errno = 0;
  curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
  if (is_network_errno(os_errno))
    return {TransportErrorKind::Unreachable, std::move(detail)};
  if (is_local_errno(os_errno))
    return {TransportErrorKind::LocalResource, std::move(detail)};
  return {TransportErrorKind::Internal, std::move(detail)};
}

TransportError classify(CURLcode rc, CURL* curl, const Exchange& ex,
                        const char* errbuf) {
  std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      return connect_failure(curl, ex, std::move(detail));
    case CURLE_OUT_OF_MEMORY:
      return {TransportErrorKind::LocalResource, detail};
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
    case CURLE_BAD_CONTENT_ENCODING: {
      long os_errno = 0;
      curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
      if (is_local_errno(os_errno))
        return {TransportErrorKind::LocalResource, detail};
      return {TransportErrorKind::Protocol, detail};
    }
    default:
      // Name resolution is the module's (CURLOPT_RESOLVE), and libcurl has
      // no timeouts of its own here: anything else is not an outage.
      return {TransportErrorKind::Internal, detail};
  }
}

TransportError multi_failure(CURLMcode mc) {
  return {mc == CURLM_OUT_OF_MEMORY ? TransportErrorKind::LocalResource
                                    : TransportErrorKind::Internal,
          std::string("libcurl: ") + curl_multi_strerror(mc)};
}

// How long the connection must have stayed silent, while the module was
// really waiting, before a passed deadline counts as a timeout: a process
// that was stopped past its deadline first reads what has arrived, then
// still gives Twilio this long.
constexpr milliseconds kSilenceToJudge{1000};

milliseconds ms_until(Clock::time_point t) {
  const auto d = std::chrono::ceil<milliseconds>(t - Clock::now());
  return d.count() > 0 ? d : milliseconds{0};
}

TransportError timed_out(const Exchange& ex, bool connecting,
                         milliseconds phase) {
  const std::string limit = std::to_string(phase.count()) + " ms";
  if (connecting)
    return {TransportErrorKind::Unreachable,
            "no connection within connect_timeout_ms (" + limit + ")"};
  if (!ex.received)
    return {TransportErrorKind::Timeout, "no answer within " + limit};
  return {TransportErrorKind::Protocol,
          "the answer stopped arriving: not complete within " + limit};
}

// The transfer's result once libcurl has finished it.
CURLcode finished_code(CURLM* multi, CURL* easy) {
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi, &left))
    if (m->msg == CURLMSG_DONE && m->easy_handle == easy) return m->data.result;
  return CURLE_GOT_NOTHING;
}

struct Attached {
  CURLM* multi;
  CURL* easy;
  ~Attached() { curl_multi_remove_handle(multi, easy); }
};

// Runs one transfer to its end or to the module's deadline: the connection
// (with TLS) within connect_budget, the answer within budget. An answer
// that has arrived is always read before a deadline is judged.
std::expected<CURLcode, TransportError> run_transfer(
    CURLM* multi, CURL* easy, const Exchange& ex, milliseconds budget,
    milliseconds connect_budget) {
  HoldStopSignals hold;
  connect_budget = std::min(connect_budget, budget);
  auto deadline = Clock::now() + budget;
  auto connect_deadline = Clock::now() + connect_budget;
  if (CURLMcode mc = curl_multi_add_handle(multi, easy); mc != CURLM_OK)
    return std::unexpected(multi_failure(mc));
  const Attached attached{multi, easy};
  milliseconds silent{0};
  for (;;) {
    int running = 0;
    if (CURLMcode mc = curl_multi_perform(multi, &running); mc != CURLM_OK)
      return std::unexpected(multi_failure(mc));
    if (running == 0) return finished_code(multi, easy);
    const auto now = Clock::now();
    if (hold.continued()) {  // stopped and continued: that time is not ours
      deadline = std::max(deadline, now + budget);
      connect_deadline = std::max(connect_deadline, now + connect_budget);
      silent = milliseconds{0};
    }
    const bool connecting = !ex.request_started;
    const auto due = connecting ? std::min(connect_deadline, deadline) : deadline;
    const milliseconds phase = connecting ? connect_budget : budget;
    const milliseconds needed = std::min(kSilenceToJudge, phase);
    milliseconds wait = ms_until(due);
    if (now >= due) {
      if (silent >= needed || now >= due + budget)
        return std::unexpected(timed_out(ex, connecting, phase));
      wait = std::max(needed - silent, milliseconds{10});
    }
    int events = 0;
    const auto before = Clock::now();
    if (CURLMcode mc = curl_multi_poll(multi, nullptr, 0,
                                       static_cast<int>(wait.count()), &events);
        mc != CURLM_OK)
      return std::unexpected(multi_failure(mc));
    silent = events == 0 ? silent + std::chrono::duration_cast<milliseconds>(
                                        Clock::now() - before)
                         : milliseconds{0};
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
    case TransportErrorKind::LocalResource:
      return "local resource failure";
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

namespace {

// "Authorization: Basic base64(user:secret)", in memory that is wiped.
Secret authorization_header(const TwilioSettings& config) {
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
  return header;
}

bool set_options(CURL* c, const TwilioSettings& config, curl_slist* headers) {
  bool ok = true;
  auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
  set(curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers));
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
  // No timeouts of libcurl's own: the transfer loop keeps the deadlines.
  set(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 0L));
  set(curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 0L));
  set(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(kMaxResponseBytes)));
  set(curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent));
  set(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body));
  set(curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header));
  set(curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq));
  set(curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket));
  set(curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED)));
  set(curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L));
  return ok;
}

}  // namespace

std::expected<std::unique_ptr<CurlTransport>, TransportError>
CurlTransport::create(const TwilioSettings& config) {
  init_curl_without_keylog();
  std::unique_ptr<CurlTransport> t(new CurlTransport());
  t->curl_.reset(curl_easy_init());
  t->multi_.reset(curl_multi_init());
  CURL* c = t->curl_.get();
  if (c == nullptr || !t->multi_)
    return std::unexpected(TransportError{TransportErrorKind::LocalResource,
                                          "cannot set up libcurl"});
  const Secret header = authorization_header(config);
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
        TransportError{TransportErrorKind::LocalResource, "out of memory"});
  if (!set_options(c, config, t->headers_.get()))
    return std::unexpected(TransportError{
        TransportErrorKind::Internal, "libcurl refused an option"});
  t->connect_timeout_ms_ = config.connect_timeout_ms;
  // The API the backend talks to: Verify's, or Programmable Messaging's.
  const std::string& api = config.backend == Backend::Messaging
                               ? config.messaging.api_url
                               : config.api_url;
  t->connect_url_ = config.proxy.empty() ? api : config.proxy;
  return t;
}

std::expected<void, TransportError> CurlTransport::resolve_once(
    Clock::time_point deadline) {
  if (resolved_) return {};
  const bool https = connect_url_.starts_with("https://");
  // libcurl's default proxy port is 1080; an https:// proxy's is 443.
  const int default_port = https ? 443 : 1080;
  auto where = host_of_url(connect_url_, default_port);
  if (!where)
    return std::unexpected(TransportError{
        TransportErrorKind::Internal,
        "cannot read the host of " + log_safe(connect_url_, 200) + ": " +
            where.error()});
  if (!where->literal) {
    auto addresses = resolve_addresses(where->host, where->port, deadline);
    if (!addresses) return std::unexpected(addresses.error());
    std::string entry = where->host + ":" + std::to_string(where->port) + ":";
    for (std::size_t i = 0; i < addresses->size(); ++i)
      entry += (i == 0 ? "" : ",") + (*addresses)[i];
    resolve_list_.reset(curl_slist_append(nullptr, entry.c_str()));
    if (!resolve_list_ ||
        curl_easy_setopt(curl_.get(), CURLOPT_RESOLVE, resolve_list_.get()) !=
            CURLE_OK)
      return std::unexpected(TransportError{TransportErrorKind::LocalResource,
                                            "cannot hand the addresses to "
                                            "libcurl"});
  }
  resolved_ = true;
  return {};
}

std::expected<HttpResponse, TransportError> CurlTransport::post_form(
    const std::string& url, const Secret& body, milliseconds budget) {
  return exchange(url, &body, budget);
}

std::expected<HttpResponse, TransportError> CurlTransport::get(
    const std::string& url, milliseconds budget) {
  return exchange(url, nullptr, budget);
}

std::expected<HttpResponse, TransportError> CurlTransport::del(
    const std::string& url, milliseconds budget) {
  return exchange(url, nullptr, budget, true);
}

std::expected<HttpResponse, TransportError> CurlTransport::exchange(
    const std::string& url, const Secret* body, milliseconds budget, bool remove) {
  CURL* c = curl_.get();
  if (budget.count() <= 0) budget = milliseconds{1};
  const milliseconds connect_budget{connect_timeout_ms_};
  if (auto ok = resolve_once(Clock::now() + std::min(connect_budget, budget));
      !ok)
    return std::unexpected(ok.error());
  Exchange ex;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(c, CURLOPT_PREREQDATA, &ex);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &ex);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body->size()));
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, remove ? "DELETE" : nullptr);
  auto done = run_transfer(multi_.get(), c, ex, budget, connect_budget);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, nullptr);
  // The body (which may hold the code) is the caller's; make sure curl
  // keeps no pointer to it, or to this call's buffers, past this call.
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  if (!done) return std::unexpected(done.error());
  if (*done != CURLE_OK) return std::unexpected(classify(*done, c, ex, errbuf));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ex.response.status);
  const char* type = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) ex.response.content_type = type;
  return std::move(ex.response);
}

}  // namespace ptv
