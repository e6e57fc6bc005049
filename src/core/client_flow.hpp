// The module's side of a login: every decision that needs no network. The
// account, the access policy (exemptions, grace), the phone sources the module can read itself (the file's users
// list, GECOS), the no_phone decision, and only when a code is to be sent
// or a directory or command must be asked, the remote part (the helper),
// whose result it takes. A login that needs no code never starts the
// helper.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/access.hpp"
#include "core/account.hpp"
#include "core/outcome.hpp"
#include "core/policy.hpp"
#include "phone/settings.hpp"
#include "util/log.hpp"

namespace ptv {

// Where a login goes on when it needs the network: the helper
// (pam/helper_client.hpp), or a fake.
class RemoteVerifier {
 public:
  virtual ~RemoteVerifier() = default;
  // The rest of the login, from phone source `first_source` on;
  // remote_host is PAM_RHOST (the client_ip rate limit's key).
  virtual AuthResult verify(const Account& account, std::uint32_t first_source,
                            bool set_id_caller, std::string_view remote_host) = 0;
};

struct ClientSettings {
  const PolicySettings& policy;
  const PhoneSettings& phone;
};

struct ClientDeps {
  Logger& log;
  AccountDirectory& accounts;
  RemoteVerifier& remote;
  GroupDirectory& groups;
  GraceStore& grace;
};

struct ClientRequest {
  ClientSettings settings;
  ClientDeps deps;
  const std::string& login_name;  // as the client typed it (PAM_USER)
  bool set_id_caller = false;     // the process runs set-id (su, sudo)
  std::string_view remote_host;   // PAM_RHOST as the application set it
};

// The result starts as a failure; only the helper's approval (or failmode
// = "safe" on an outage, never for a set-id caller) or the policy the
// administrator wrote (an exemption, a grace period) changes that. The
// order: the account, exemptions and grace, the phone lookup, the helper.
AuthResult authenticate_client(const ClientRequest& request);

}  // namespace ptv
