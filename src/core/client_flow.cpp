#include "core/client_flow.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "phone/gecos_source.hpp"
#include "phone/lookup.hpp"
#include "phone/users_source.hpp"

namespace ptv {

namespace {

bool is_remote(PhoneSource s) {
  return s == PhoneSource::Ldap || s == PhoneSource::Command;
}

// The sources the module reads itself, up to the first one only the
// helper can ask: what they decide, or the index where the helper goes on.
struct LocalLookup {
  std::optional<AuthResult> decided;  // no code to send: the outcome
  std::uint32_t helper_from = 0;      // otherwise: the helper's first source
  bool found = false;                 // a local source holds the number
};

LocalLookup look_up_locally(const ClientSettings& s, const Account& account) {
  const auto& all = s.phone.sources;
  const auto remote = std::find_if(all.begin(), all.end(), is_remote);
  UsersSource users(s.phone.users);
  GecosSource gecos(account.gecos, s.phone.gecos_field);
  std::vector<NumberSource*> local;
  for (auto it = all.begin(); it != remote; ++it)
    local.push_back(*it == PhoneSource::Users ? static_cast<NumberSource*>(&users)
                                              : &gecos);
  const PhoneLookup found = lookup_phone(local, account.name);
  if (found && found->has_value())  // the helper reads the same entry again
    return {std::nullopt, static_cast<std::uint32_t>((*found)->index), true};
  if (!found)  // only Invalid: the local sources cannot fail otherwise
    return {decided(Outcome::InvalidPhone, account.name, found.error().detail), 0};
  if (remote != all.end())
    return {std::nullopt, static_cast<std::uint32_t>(remote - all.begin())};
  if (s.policy.no_phone == NoPhone::Skip)
    return {decided(Outcome::NoPhoneSkipped, account.name,
                    "no phone number; no_phone = skip"),
            0};
  return {decided(Outcome::NoPhoneDenied, account.name,
                  "no phone number; no_phone = deny"),
          0};
}

// The helper reads the configuration itself. An outcome that depends on
// the policy stands only if the module's own reading of it allows it too
// (the file may have changed between the two readings, or the helper be
// wrong): otherwise the stricter outcome.
AuthResult hold_to_policy(AuthResult r, const PolicySettings& policy,
                          bool found_locally) {
  if (r.outcome == Outcome::FailOpen && policy.failmode != FailMode::Safe) {
    r.outcome = Outcome::Unavailable;
    r.detail += "; the helper answered allowed-unavailable, but failmode is "
                "not safe in the configuration the module read";
  }
  if (r.outcome == Outcome::NoPhoneSkipped && found_locally)
    return decided(Outcome::InternalError, {},
                   "helper: it answered skipped-no-phone for a number the "
                   "module found");
  if (r.outcome == Outcome::NoPhoneSkipped && policy.no_phone != NoPhone::Skip) {
    r.outcome = Outcome::NoPhoneDenied;
    r.detail += "; the helper answered skipped-no-phone, but no_phone is not "
                "skip in the configuration the module read";
  }
  return r;
}

}  // namespace

AuthResult authenticate_client(const ClientRequest& r) {
  auto account = r.deps.accounts.resolve(r.login_name);
  if (!account)
    return decided(account.error().kind == AccountError::Kind::Unknown
                       ? Outcome::UnknownUser
                       : Outcome::InternalError,
                   {}, account.error().detail);
  if (account->name.empty())
    return decided(Outcome::InternalError, {}, "the account has no name");
  const AccessDeps access{r.deps.log, r.deps.groups, r.deps.grace};
  if (auto allowed = exempt_or_grace(r.settings.policy, *account,
                                     r.remote_host, access))
    return std::move(*allowed);
  LocalLookup local = look_up_locally(r.settings, *account);
  if (local.decided) return std::move(*local.decided);
  AuthResult result = hold_to_policy(
      r.deps.remote.verify(*account, local.helper_from, r.set_id_caller,
                           r.remote_host),
      r.settings.policy, local.found);
  result.account = account->name;
  if (result.outcome == Outcome::Approved)
    remember_approval(r.settings.policy, *account, r.remote_host, access);
  return result;
}

}  // namespace ptv
