// IP addresses and networks for the access policy: PAM_RHOST read as an IP
// literal (never resolved), and the CIDR networks of exempt_networks.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace ptv {

struct IpAddress {
  bool v4 = false;                    // IPv4 (an IPv4-mapped IPv6 address too)
  std::array<std::uint8_t, 16> bytes{};  // 4 bytes used when v4
};

// An IPv4 or IPv6 literal ("10.1.2.3", "2001:db8::1", "::ffff:10.1.2.3";
// an IPv6 zone such as "%eth0" is refused), or nothing: a host name is not
// an address, and the module never resolves one.
std::optional<IpAddress> parse_ip_literal(std::string_view text);

// The address in its canonical text ("10.1.2.3" for ::ffff:10.1.2.3), the
// key of a grace entry.
std::string canonical_text(const IpAddress& address);

struct Network {
  IpAddress base;
  int prefix = 0;    // 0-32 for IPv4, 0-128 for IPv6
  std::string text;  // as written in the configuration
};

// "10.0.0.0/8", "2001:db8::/32", or a single address ("10.1.2.3" is
// 10.1.2.3/32). The error says what is wrong: a bad prefix, host bits set,
// something that is no address.
std::expected<Network, std::string> parse_network(std::string_view text);

// True when the address lies in the network (an IPv4 address never in an
// IPv6 network, and the other way round).
bool contains(const Network& network, const IpAddress& address);

}  // namespace ptv
