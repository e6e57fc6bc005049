// The "command" phone source, modelled on sshd's AuthorizedKeysCommand: the
// administrator's program is run as "lookup_command USER", without a shell,
// as lookup_command_user, with an empty environment (PATH only), stdin from
// /dev/null, its output capped and the whole run bounded by
// lookup_timeout_ms. The first line of its output is the number.
//
// Exit status 0 with a number: found. Exit 0 with no output: the user has
// no number (no_phone decides). Exit 75 (EX_TEMPFAIL): the service behind
// the command is unavailable (failmode decides). Anything else, including
// a timeout, is a failure and denies.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "phone/settings.hpp"
#include "phone/source.hpp"

namespace ptv {

inline constexpr std::size_t kMaxCommandOutput = 1024;  // bytes of stdout
inline constexpr int kCommandTempFail = 75;            // EX_TEMPFAIL

// Like sshd's safe_path(): the command, after resolving symbolic links,
// must be a regular file owned by root, not writable by group or others,
// in directories that are all owned by root and not writable by group or
// others. Returns the resolved path, or the problem.
std::expected<std::string, std::string> check_command_file(
    const std::string& path);

// Reads the command's stdout: the first line, trimmed, is the one value;
// no output at all is "no number".
SourceValues interpret_command_output(std::string_view output);

SourceValues run_lookup_command(const CommandSettings& settings,
                                const std::string& user);

class CommandSource final : public NumberSource {
 public:
  explicit CommandSource(const CommandSettings& settings) : settings_(settings) {}
  [[nodiscard]] std::string_view name() const override { return "command"; }
  SourceValues values(const std::string& account) override {
    return run_lookup_command(settings_, account);
  }

 private:
  const CommandSettings& settings_;
};

}  // namespace ptv
