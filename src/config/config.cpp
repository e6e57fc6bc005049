#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config/config_strings.hpp"
#include "config/reader.hpp"
#include "config/settings.hpp"
#include "util/file_descriptor.hpp"
#include "util/handles.hpp"

namespace ptv {

namespace {

// libconfig would open any file named by @include, bypassing the owner and
// mode checks of the main file, so the directive is refused outright.
bool has_include_directive(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    if (line.starts_with("@include")) return true;
    pos = end + 1;
  }
  return false;
}

ConfigError file_error(const std::string& path, const std::string& what) {
  return ConfigError{path + ": " + what};
}

// The file may hold credentials: a regular file, root's, no access for
// group or others, and not too large.
std::expected<std::size_t, ConfigError> check_file(const std::string& path,
                                                   int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0)
    return std::unexpected(
        file_error(path, std::string("cannot stat: ") + std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return std::unexpected(file_error(path, "is not a regular file"));
  if (st.st_uid != 0)
    return std::unexpected(file_error(
        path, "must be owned by root (it is owned by uid " +
                  std::to_string(st.st_uid) + ")"));
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return std::unexpected(file_error(
        path, std::string("holds a credential, so group and others must have "
                          "no access (mode is ") +
                  mode + "; run chmod 600 " + path + ")"));
  }
  if (st.st_size > static_cast<off_t>(kMaxConfigBytes))
    return std::unexpected(file_error(path, "is larger than 1 MiB"));
  return static_cast<std::size_t>(st.st_size);
}

// Reads into room reserved once: an append that reallocated would leave an
// unwiped copy of what was read so far.
std::expected<Secret, ConfigError> read_text(const std::string& path, int fd,
                                             std::size_t room) {
  Secret text;
  text.reserve(room + 1);
  char buffer[4096];
  struct Wipe {
    char* p;
    ~Wipe() { wipe_memory(p, 4096); }
  } wipe{buffer};
  for (;;) {
    const ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      return std::unexpected(
          file_error(path, std::string("read error: ") + std::strerror(errno)));
    if (got == 0) return text;
    const auto size = text.size() + static_cast<std::size_t>(got);
    if (size > kMaxConfigBytes)
      return std::unexpected(file_error(path, "is larger than 1 MiB"));
    // The file grew after fstat: it is being rewritten, and what was read
    // is no configuration anyone wrote.
    if (size > room)
      return std::unexpected(file_error(path, "changed while it was being read"));
    text.append(std::string_view(buffer, static_cast<std::size_t>(got)));
  }
}

}  // namespace

std::string describe(const ConfigError& e) { return e.message; }

std::expected<Config, ConfigError> parse_config_text(std::string_view text,
                                                     std::string_view name) {
  if (text.find('\0') != std::string_view::npos)
    return std::unexpected(
        ConfigError{std::string(name) + ": the file contains a NUL byte"});
  if (has_include_directive(text))
    return std::unexpected(ConfigError{
        std::string(name) + ": @include is not supported (every setting "
                            "must be in this one protected file)"});
  // libconfig copies the text it parses into its scanner's buffers and
  // builds string tokens in growing buffers, and frees all of them without
  // wiping; wiping the parse tree afterwards could not reach those copies.
  // So it never sees a string value: it parses the masked text, whose
  // literals are placeholders naming entries of our table of Secrets, and
  // whose comments are blank (config_strings.hpp). Its parse tree then holds
  // nothing to wipe, and is freed as it is. The masked text is itself a
  // NUL-terminated Secret, wiped on every path.
  const ConfigStrings strings = ConfigStrings::mask(text);
  ConfigHandle cfg(new config_t);
  config_init(cfg.get());
  if (config_read_string(cfg.get(), strings.masked_text().c_str()) !=
      CONFIG_TRUE) {
    const char* what = config_error_text(cfg.get());
    return std::unexpected(ConfigError{
        std::string(name) + ":" + std::to_string(config_error_line(cfg.get())) +
        ": parse error: " + (what != nullptr ? what : "unknown")});
  }
  Config config;
  const Reader reader(name, strings);
  if (auto ok = read_settings(reader, config_root_setting(cfg.get()), config); !ok)
    return std::unexpected(ok.error());
  return config;
}

std::expected<Config, ConfigError> load_config_file(const std::string& path) {
  const FileDescriptor fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                                                 O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    return std::unexpected(file_error(
        path, "cannot open: " +
                  (err == ELOOP ? std::string("it is a symbolic link, which is refused")
                                : std::string(std::strerror(err)))));
  }
  const auto size = check_file(path, fd.get());
  if (!size) return std::unexpected(size.error());
  const auto text = read_text(path, fd.get(), *size);
  if (!text) return std::unexpected(text.error());
  return parse_config_text(text->view(), path);
}

}  // namespace ptv
