// The configuration file (libconfig syntax): safe opening, parsing and
// validation into a Config made of the parts its consumers take (the
// Twilio connection, the policy, the phone sources, the state). Every
// problem is an error value that names the file, the line where libconfig
// knows it, and the setting.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "core/policy.hpp"
#include "phone/settings.hpp"
#include "state/settings.hpp"
#include "twilio/settings.hpp"
#include "twilio/sid.hpp"

namespace ptv {

struct Config {
  TwilioSettings twilio;
  PolicySettings policy;
  PhoneSettings phone;
  StateSettings state;
};

struct ConfigError {
  std::string message;  // complete, safe to log; never holds a secret
};
std::string describe(const ConfigError& e);

// Limits the loader enforces on the file itself.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;
// The longest name the services setting accepts.
inline constexpr std::size_t kMaxServiceNameLength = 64;

// Opens the file safely (O_NOFOLLOW, regular file, owned by root, no group
// or other permission bits), reads and parses it.
std::expected<Config, ConfigError> load_config_file(const std::string& path);

// Parses and validates configuration text; `name` labels error messages.
std::expected<Config, ConfigError> parse_config_text(std::string_view text,
                                                     std::string_view name);

}  // namespace ptv
