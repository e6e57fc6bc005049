// Programs the module or the helper runs as root must be safe to run as
// root would judge them, as sshd requires of AuthorizedKeysCommand: after
// resolving symbolic links, a regular executable file owned by root and not
// writable by group or others, in directories that are all owned by root
// and not writable by group or others. Whoever could write any of them
// could put their own program in its place.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace ptv {

// The resolved path, or the problem (naming `what`, the file or the
// directory, safe to log).
std::expected<std::string, std::string> check_safe_executable(
    const std::string& path, std::string_view what);

}  // namespace ptv
