#include "core/policy.hpp"

#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>

namespace ptv {

std::optional<AuthResult> skip_service(const PolicySettings& policy,
                                       std::string_view service) {
  if (policy.services.empty()) return std::nullopt;  // unset: every service
  if (std::find(policy.services.begin(), policy.services.end(), service) !=
      policy.services.end())
    return std::nullopt;
  return decided(Outcome::ServiceSkipped, {},
                 "service " + log_token(service) +
                     " is not in services: the code is not asked for");
}

bool running_set_id() {
  return getauxval(AT_SECURE) != 0 || getuid() != geteuid() ||
         getgid() != getegid();
}

AuthResult unavailable(const PolicySettings& policy, bool set_id_caller,
                       const std::string& account, std::string detail,
                       Logger& log) {
  if (policy.failmode != FailMode::Safe)
    return decided(Outcome::Unavailable, account, std::move(detail));
  if (set_id_caller)
    return decided(Outcome::Unavailable, account,
                   detail + "; failmode = safe does not apply to set-id "
                            "callers (su, sudo): denied as with failmode = "
                            "secure");
  log.warning("failmode = safe: letting user " + log_safe(account) +
              " in WITHOUT the second factor because a service it needs is "
              "unavailable (" + detail + ")");
  return decided(Outcome::FailOpen, account, std::move(detail));
}

}  // namespace ptv
