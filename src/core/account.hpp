// The account behind the user name the client typed. PAM_USER is whatever
// the client sent: with sssd or winbind (case-insensitive by default)
// "ALICE" and "alice" are one account. The module resolves the name once,
// and the account's own name (pw_name) is what every phone source, the
// send limit and the log use from then on.
#pragma once

#include <sys/types.h>

#include <expected>
#include <string>

namespace ptv {

struct Account {
  std::string name;   // pw_name: the account's canonical name
  std::string gecos;  // pw_gecos, for the "gecos" phone source
  uid_t uid = 0;
  gid_t gid = 0;
};

struct AccountError {
  enum class Kind {
    Unknown,  // no such account: denied before any lookup or request
    Failed,   // the lookup itself failed (NSS error, out of memory)
  };
  Kind kind = Kind::Failed;
  std::string detail;  // safe to log
};

// Turns the name as typed into the account.
class AccountDirectory {
 public:
  virtual ~AccountDirectory() = default;
  virtual std::expected<Account, AccountError> resolve(const std::string& typed) = 0;
};

// getpwnam_r through NSS.
std::expected<Account, AccountError> resolve_account(const std::string& name);

class SystemAccounts final : public AccountDirectory {
 public:
  std::expected<Account, AccountError> resolve(const std::string& typed) override {
    return resolve_account(typed);
  }
};

}  // namespace ptv
