// Module arguments from the /etc/pam.d line: conf=PATH and debug.
#pragma once

#include <expected>
#include <string>

namespace ptv {

inline constexpr const char* kDefaultConfigPath =
    "/etc/security/pam_twilio_verify.conf";

struct ModuleOptions {
  std::string config_path = kDefaultConfigPath;
  bool debug = false;
};

// Parses argv. An unknown or malformed argument is an error whose message
// names it; the module then fails closed.
std::expected<ModuleOptions, std::string> parse_module_options(
    int argc, const char** argv);

}  // namespace ptv
