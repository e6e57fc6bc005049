#include "util/safe_path.hpp"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/log.hpp"

namespace ptv {

namespace {

// Owned by root, not writable by group or others.
std::string unsafe_owner_or_mode(const struct stat& st, std::string_view what,
                                 const std::string& path) {
  const std::string name = std::string(what) + " " + log_safe(path, 200);
  if (st.st_uid != 0)
    return name + " must be owned by root (uid " + std::to_string(st.st_uid) +
           ")";
  if ((st.st_mode & 022) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return name + " must not be writable by group or others (mode " + mode +
           ")";
  }
  return {};
}

}  // namespace

std::expected<std::string, std::string> check_safe_executable(
    const std::string& path, std::string_view what) {
  const std::string name(what);
  if (path.empty() || path.front() != '/')
    return std::unexpected(name + " must be an absolute path");
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr)
    return std::unexpected(name + " " + log_safe(path, 200) + ": " +
                           std::strerror(errno));
  const std::string file(resolved);
  struct stat st {};
  if (stat(file.c_str(), &st) != 0)
    return std::unexpected(name + " " + log_safe(file, 200) + ": " +
                           std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return std::unexpected(name + " " + log_safe(file, 200) +
                           " is not a regular file");
  if (std::string p = unsafe_owner_or_mode(st, what, file); !p.empty())
    return std::unexpected(p);
  if ((st.st_mode & 0111) == 0)
    return std::unexpected(name + " " + log_safe(file, 200) +
                           " is not executable");
  // Every directory up to the root.
  std::string dir = file;
  while (dir.size() > 1) {
    dir.erase(dir.find_last_of('/'));
    if (dir.empty()) dir = "/";
    if (stat(dir.c_str(), &st) != 0)
      return std::unexpected("directory " + log_safe(dir, 200) + ": " +
                             std::strerror(errno));
    if (std::string p = unsafe_owner_or_mode(st, "directory", dir); !p.empty())
      return std::unexpected(p + ", so " + name + " is not safe to run");
  }
  return file;
}

}  // namespace ptv
