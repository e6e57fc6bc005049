#include "core/access.hpp"

#include <grp.h>

#include <algorithm>
#include <cerrno>

#include "core/network.hpp"

namespace ptv {

namespace {

std::string rhost_text(std::string_view remote_host) {
  return remote_host.empty() ? "-" : log_safe(remote_host);
}

// The first exempt group the account is in. A group that does not resolve
// matches no one and is logged as a warning.
std::optional<std::string> exempt_group(const PolicySettings& policy,
                                        const Account& account,
                                        const AccessDeps& deps) {
  if (policy.exempt_groups.empty()) return std::nullopt;
  std::optional<std::vector<gid_t>> mine;
  for (const std::string& name : policy.exempt_groups) {
    const std::optional<gid_t> gid = deps.groups.group_id(name);
    if (!gid) {
      deps.log.warning("exempt_groups: group \"" + log_safe(name) +
                       "\" does not resolve; it exempts no one");
      continue;
    }
    if (!mine) mine = deps.groups.groups_of(account);
    if (!mine) {
      deps.log.warning("exempt_groups: the groups of user " +
                       log_safe(account.name) +
                       " cannot be read; no group exempts it");
      return std::nullopt;
    }
    if (std::find(mine->begin(), mine->end(), *gid) != mine->end()) return name;
  }
  return std::nullopt;
}

// PAM_RHOST as an IP literal; the debug log says why not.
std::optional<IpAddress> remote_address(std::string_view remote_host,
                                        Logger& log) {
  if (remote_host.empty()) {
    log.debug("no PAM_RHOST (a console, su or sudo): no exempt network or "
              "grace applies");
    return std::nullopt;
  }
  auto address = parse_ip_literal(remote_host);
  if (!address)
    log.debug("PAM_RHOST \"" + log_safe(remote_host) +
              "\" is not an IP address (a host name): no exempt network or "
              "grace applies");
  return address;
}

const Network* exempt_network(const PolicySettings& policy,
                              const IpAddress& address) {
  for (const Network& n : policy.exempt_networks)
    if (contains(n, address)) return &n;
  return nullptr;
}

std::optional<AuthResult> grace(const PolicySettings& policy,
                                const Account& account,
                                const IpAddress& address,
                                const AccessDeps& deps) {
  if (policy.grace_period_s <= 0) return std::nullopt;
  auto until = deps.grace.find(account.name, canonical_text(address));
  if (!until) {
    deps.log.warning("grace_period_s: the grace entries cannot be read (" +
                     describe(until.error()) + "); the code is asked for");
    return std::nullopt;
  }
  if (!until->has_value()) return std::nullopt;
  return decided(Outcome::Grace, account.name,
                 "rhost " + canonical_text(address) +
                     ": a code was approved from this address within "
                     "grace_period_s; the entry expires at " +
                     std::to_string(**until));
}

}  // namespace

std::optional<AuthResult> exempt_or_grace(const PolicySettings& policy,
                                          const Account& account,
                                          std::string_view remote_host,
                                          const AccessDeps& deps) {
  if (auto group = exempt_group(policy, account, deps))
    return decided(Outcome::ExemptGroup, account.name,
                   "member of exempt group \"" + log_safe(*group) +
                       "\"; rhost " + rhost_text(remote_host));
  if (policy.exempt_networks.empty() && policy.grace_period_s <= 0)
    return std::nullopt;
  const auto address = remote_address(remote_host, deps.log);
  if (!address) return std::nullopt;
  if (const Network* n = exempt_network(policy, *address))
    return decided(Outcome::ExemptNetwork, account.name,
                   "rhost " + canonical_text(*address) +
                       " is in exempt network " + log_safe(n->text));
  return grace(policy, account, *address, deps);
}

void remember_approval(const PolicySettings& policy, const Account& account,
                       std::string_view remote_host, const AccessDeps& deps) {
  if (policy.grace_period_s <= 0) return;
  const auto address = parse_ip_literal(remote_host);
  if (!address) return;  // no grace without an address: terminals are reused
  auto recorded = deps.grace.record(account.name, canonical_text(*address),
                                    policy.grace_period_s);
  if (!recorded)
    deps.log.warning("grace_period_s: the grace entry cannot be written (" +
                     describe(recorded.error()) +
                     "); the next login asks for a code");
}

std::optional<gid_t> SystemGroups::group_id(const std::string& name) {
  std::vector<char> buffer(4096);
  for (int tries = 0; tries < 8; ++tries) {
    group g{};
    group* found = nullptr;
    const int rc = getgrnam_r(name.c_str(), &g, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 4);
      continue;
    }
    if (rc != 0 || found == nullptr) return std::nullopt;
    return found->gr_gid;
  }
  return std::nullopt;
}

std::optional<std::vector<gid_t>> SystemGroups::groups_of(const Account& account) {
  int count = 64;
  for (int tries = 0; tries < 8; ++tries) {
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    int n = count;
    if (getgrouplist(account.name.c_str(), account.gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<std::size_t>(n));
      return groups;
    }
    if (n <= count || n > 65536) return std::nullopt;
    count = n;
  }
  return std::nullopt;
}

}  // namespace ptv
