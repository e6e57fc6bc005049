#include "net/resolve.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "util/log.hpp"
#include "util/stop_signals.hpp"

namespace ptv {

namespace {

using Clock = std::chrono::steady_clock;

// What the resolver thread and the waiting thread share; each holds a
// reference, so whichever finishes last frees it (the waiter may give up).
struct Lookup {
  std::mutex lock;
  std::condition_variable done_cv;
  bool done = false;
  std::string host;
  std::string port;
  int rc = 0;
  int saved_errno = 0;
  std::vector<std::string> addresses;
};

void collect(Lookup& l, const addrinfo* list) {
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {0};
    if (a->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr)
        l.addresses.emplace_back(text);
    } else if (a->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text) != nullptr)
        l.addresses.push_back("[" + std::string(text) + "]");
    }
  }
}

void* run_lookup(void* arg) {
  std::shared_ptr<Lookup> l(*static_cast<std::shared_ptr<Lookup>*>(arg));
  delete static_cast<std::shared_ptr<Lookup>*>(arg);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  errno = 0;
  const int rc = getaddrinfo(l->host.c_str(), l->port.c_str(), &hints, &list);
  const int saved_errno = errno;
  std::lock_guard<std::mutex> guard(l->lock);
  l->rc = rc;
  l->saved_errno = saved_errno;
  if (rc == 0) {
    try {
      collect(*l, list);
    } catch (...) {
      l->rc = EAI_MEMORY;
    }
    freeaddrinfo(list);
  }
  l->done = true;
  l->done_cv.notify_all();
  return nullptr;
}

bool is_local_errno(int e) {
  return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS;
}

// Starts the lookup thread; an error when it cannot start.
std::expected<void, TransportError> start_thread(std::shared_ptr<Lookup> l) {
  auto* arg = new std::shared_ptr<Lookup>(std::move(l));
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) {
    delete arg;
    return std::unexpected(TransportError{TransportErrorKind::LocalResource,
                                          "cannot set up the resolver thread"});
  }
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  const int rc = pthread_create(&thread, &attr, run_lookup, arg);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete arg;
    return std::unexpected(TransportError{
        TransportErrorKind::LocalResource,
        std::string("cannot start the resolver thread: ") + std::strerror(rc)});
  }
  return {};
}

}  // namespace

TransportErrorKind classify_resolver_failure(int rc, int saved_errno) {
  switch (rc) {
    case EAI_NONAME:
    case EAI_AGAIN:
    case EAI_FAIL:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
      // glibc answers "no such name" when it could not even open
      // /etc/hosts or a socket to the DNS server: errno tells.
      return is_local_errno(saved_errno) ? TransportErrorKind::LocalResource
                                         : TransportErrorKind::Unreachable;
    case EAI_MEMORY:
    case EAI_SYSTEM:
      return TransportErrorKind::LocalResource;
    default:
      return TransportErrorKind::Internal;
  }
}

std::expected<std::vector<std::string>, TransportError> resolve_addresses(
    const std::string& host, int port, Clock::time_point deadline) {
  auto lookup = std::make_shared<Lookup>();
  lookup->host = host;
  lookup->port = std::to_string(port);
  HoldStopSignals hold;
  if (auto started = start_thread(lookup); !started)
    return std::unexpected(started.error());
  const auto budget = deadline - Clock::now();
  std::unique_lock<std::mutex> guard(lookup->lock);
  // Short slices, so that a stop of the process is seen and not counted.
  while (!lookup->done) {
    const auto now = Clock::now();
    if (hold.continued()) deadline = std::max(deadline, now + budget);
    if (now >= deadline) break;
    lookup->done_cv.wait_until(
        guard, std::min(deadline, now + std::chrono::milliseconds(100)));
  }
  if (!lookup->done)  // checked after the last wait: an answer counts
    return std::unexpected(TransportError{
        TransportErrorKind::Unreachable,
        "no answer from the resolver for " + log_safe(host, 200) +
            " within connect_timeout_ms"});
  const std::string name = log_safe(host, 200);
  if (lookup->rc != 0) {
    std::string detail = "cannot resolve " + name + ": " +
                         gai_strerror(lookup->rc);
    const TransportErrorKind kind =
        classify_resolver_failure(lookup->rc, lookup->saved_errno);
    if (kind == TransportErrorKind::LocalResource && lookup->saved_errno != 0)
      detail += std::string(" (") + std::strerror(lookup->saved_errno) + ")";
    return std::unexpected(TransportError{kind, std::move(detail)});
  }
  if (lookup->addresses.empty())
    return std::unexpected(TransportError{
        TransportErrorKind::Unreachable, "cannot resolve " + name +
                                             ": no IPv4 or IPv6 address"});
  return std::move(lookup->addresses);
}

std::expected<HostPort, std::string> host_of_url(const std::string& url,
                                                 int default_port) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) return std::unexpected("no scheme");
  std::string authority = url.substr(scheme + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const std::size_t at = authority.rfind('@'); at != std::string::npos)
    authority.erase(0, at + 1);  // a proxy's user:password
  HostPort hp;
  hp.port = default_port;
  std::string port_text;
  if (authority.starts_with("[")) {
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) return std::unexpected("unclosed [");
    hp.host = authority.substr(1, close - 1);
    const std::string rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::unexpected("text after ]");
      port_text = rest.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    hp.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (hp.host.empty()) return std::unexpected("no host");
  if (!port_text.empty()) {
    if (port_text.size() > 5 ||
        port_text.find_first_not_of("0123456789") != std::string::npos)
      return std::unexpected("bad port");
    hp.port = std::stoi(port_text);
    if (hp.port < 1 || hp.port > 65535) return std::unexpected("bad port");
  }
  unsigned char buffer[sizeof(in6_addr)];
  hp.literal = inet_pton(AF_INET, hp.host.c_str(), buffer) == 1 ||
               inet_pton(AF_INET6, hp.host.c_str(), buffer) == 1;
  return hp;
}

}  // namespace ptv
