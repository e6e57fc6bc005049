#include "core/network.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace ptv {

namespace {

constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0xff, 0xff};

int bits_of(const IpAddress& a) { return a.v4 ? 32 : 128; }

// Bit `i` (from the most significant) of the address.
bool bit(const IpAddress& a, int i) {
  return (a.bytes[static_cast<std::size_t>(i / 8)] >> (7 - i % 8)) & 1;
}

}  // namespace

std::optional<IpAddress> parse_ip_literal(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.v4 = true;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  if (std::equal(std::begin(kMappedPrefix), std::end(kMappedPrefix),
                 a.bytes.begin())) {
    std::copy(a.bytes.begin() + 12, a.bytes.end(), a.bytes.begin());
    std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
    a.v4 = true;
  }
  return a;
}

std::string canonical_text(const IpAddress& address) {
  char out[INET6_ADDRSTRLEN] = {};
  inet_ntop(address.v4 ? AF_INET : AF_INET6, address.bytes.data(), out,
            sizeof out);
  return out;
}

std::expected<Network, std::string> parse_network(std::string_view text) {
  const auto slash = text.find('/');
  const auto address = parse_ip_literal(text.substr(0, slash));
  if (!address)
    return std::unexpected(std::string(
        "is not an IPv4 or IPv6 network (write it as 10.0.0.0/8 or "
        "2001:db8::/32)"));
  Network n{*address, bits_of(*address), std::string(text)};
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), n.prefix);
    if (digits.empty() || ec != std::errc() ||
        end != digits.data() + digits.size() || n.prefix < 0 ||
        n.prefix > bits_of(*address) ||
        (digits.size() > 1 && digits.front() == '0'))
      return std::unexpected("has a bad prefix length (0 to " +
                             std::to_string(bits_of(*address)) + ")");
  }
  for (int i = n.prefix; i < bits_of(*address); ++i)
    if (bit(*address, i))
      return std::unexpected(std::string(
          "has host bits set (the network address of this prefix ends in "
          "zero bits)"));
  return n;
}

bool contains(const Network& network, const IpAddress& address) {
  if (network.base.v4 != address.v4) return false;
  for (int i = 0; i < network.prefix; ++i)
    if (bit(network.base, i) != bit(address, i)) return false;
  return true;
}

}  // namespace ptv
