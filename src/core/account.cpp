#include "core/account.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace ptv {

std::expected<Account, AccountError> resolve_account(const std::string& name) {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  if (size <= 0) size = 16384;
  std::vector<char> buffer(static_cast<std::size_t>(size));
  for (;;) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    const int rc =
        getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (found != nullptr) {
      Account a;
      a.name = pw.pw_name != nullptr ? pw.pw_name : "";
      a.gecos = pw.pw_gecos != nullptr ? pw.pw_gecos : "";
      a.uid = pw.pw_uid;
      a.gid = pw.pw_gid;
      if (a.name.empty())
        return std::unexpected(AccountError{AccountError::Kind::Failed,
                                            "the account has an empty name"});
      return a;
    }
    // getpwnam_r(3): "not found" may also come as one of these.
    if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
      return std::unexpected(AccountError{AccountError::Kind::Unknown,
                                          "no such account"});
    return std::unexpected(AccountError{
        AccountError::Kind::Failed,
        std::string("cannot look up the account: ") + std::strerror(rc)});
  }
}

}  // namespace ptv
