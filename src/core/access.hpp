// Who is asked for a code: the access policy step between the account and
// the phone lookup. Exempt groups, exempt networks, then grace after an
// approved code. No lookup, no send, no request: only what the
// administrator wrote, the account's groups and PAM_RHOST.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/account.hpp"
#include "core/outcome.hpp"
#include "core/policy.hpp"
#include "core/send_gate.hpp"
#include "util/log.hpp"

namespace ptv {

// Group names and memberships through NSS (getgrnam_r, getgrouplist), or a
// fake.
class GroupDirectory {
 public:
  virtual ~GroupDirectory() = default;
  // The group's id; nothing when the name does not resolve (a typo, or the
  // directory behind NSS is down).
  virtual std::optional<gid_t> group_id(const std::string& name) = 0;
  // Every group of the account, primary and supplementary; nothing when the
  // list cannot be read.
  virtual std::optional<std::vector<gid_t>> groups_of(const Account& account) = 0;
};

class SystemGroups final : public GroupDirectory {
 public:
  std::optional<gid_t> group_id(const std::string& name) override;
  std::optional<std::vector<gid_t>> groups_of(const Account& account) override;
};

// Grace entries in the state store (state/send_limit.hpp), or a fake.
// `address` is the canonical text of an IP address.
class GraceStore {
 public:
  virtual ~GraceStore() = default;
  virtual std::expected<std::optional<std::int64_t>, StateError> find(
      const std::string& account, const std::string& address) = 0;
  virtual std::expected<void, StateError> record(const std::string& account,
                                                 const std::string& address,
                                                 std::int64_t period_s) = 0;
};

struct AccessDeps {
  Logger& log;
  GroupDirectory& groups;
  GraceStore& grace;
};

// The exemptions and grace, in that order: a result (allowed-exempt-group,
// allowed-exempt-network, allowed-grace) when one applies, else nothing and
// the code is asked for. `remote_host` is PAM_RHOST as the application set
// it ("" when there is none).
std::optional<AuthResult> exempt_or_grace(const PolicySettings& policy,
                                          const Account& account,
                                          std::string_view remote_host,
                                          const AccessDeps& deps);

// After an approved code: the account from this address may skip the code
// for grace_period_s. Only with an IP literal; a failure is logged.
void remember_approval(const PolicySettings& policy, const Account& account,
                       std::string_view remote_host, const AccessDeps& deps);

}  // namespace ptv
