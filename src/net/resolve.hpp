// Name resolution for the HTTPS transport, done in the module's own code so
// that each failure is told by its cause. libcurl 7.88 reports every name
// failure with one code, "getaddrinfo() thread failed to start" included,
// and a caller who lowers RLIMIT_NOFILE or RLIMIT_NPROC through su could
// then pass a local failure off as Twilio being unreachable. The addresses
// found here are handed to libcurl (CURLOPT_RESOLVE); the host name is
// still what TLS verifies.
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <vector>

#include "net/http_transport.hpp"

namespace ptv {

// https://host[:port][/path] (also http:// for a proxy): the host as libcurl
// looks it up (IPv6 literals without their brackets) and the port.
struct HostPort {
  std::string host;
  int port = 443;
  bool literal = false;  // an IP address: nothing to resolve
};
std::expected<HostPort, std::string> host_of_url(const std::string& url,
                                                 int default_port);

// The numeric addresses of host (IPv6 ones in brackets, as CURLOPT_RESOLVE
// wants them), from getaddrinfo in a thread of its own, waited for until
// the deadline (a stop of the process does not count; see stop_signals).
//  - the resolver answered that the name does not exist or cannot be
//    resolved now (EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_NODATA), or did not
//    answer in time: Unreachable (evidence of an outage);
//  - the same codes, when the lookup itself ran out of descriptors or
//    memory (glibc then answers EAI_NONAME with errno EMFILE), EAI_MEMORY,
//    EAI_SYSTEM, or a thread that cannot start: LocalResource;
//  - anything else: Internal.
std::expected<std::vector<std::string>, TransportError> resolve_addresses(
    const std::string& host, int port,
    std::chrono::steady_clock::time_point deadline);

// Classification of one getaddrinfo result (rc, and errno in the thread
// that called it); exposed for the unit tests.
TransportErrorKind classify_resolver_failure(int rc, int saved_errno);

}  // namespace ptv
