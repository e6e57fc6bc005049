// What applies to one user now, as a login would find it, with no SMS and
// no request to Twilio: the exemption by group, the grace entries, the
// send limit's count and the phone lookup (lookup, and the first steps of
// test).
#pragma once

#include <optional>

#include "admin/setup.hpp"
#include "phone/lookup.hpp"

namespace ptv::admin {

struct UserView {
  bool exempt = false;             // a group exempts the account
  std::optional<FoundPhone> phone; // the number a login would use
  bool lookup_failed = false;      // a source failed or the entry is invalid
  bool limit_reached = false;      // no send is allowed now
};

UserView view_user(const Config& config, const Account& account, Report& report);

// The account, or the problem reported.
std::optional<Account> account_for(const std::string& user, Report& report);

// "2031-01-02 03:04:05" (local time).
std::string time_text(std::int64_t t);

}  // namespace ptv::admin
