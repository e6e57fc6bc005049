// Module arguments from the /etc/pam.d line: conf=PATH, helper=PATH and
// debug.
#pragma once

#include <expected>
#include <string>

namespace ptv {

inline constexpr const char* kDefaultConfigPath =
    "/etc/security/pam_twilio_verify.conf";

#ifndef PTV_HELPER_PATH
#define PTV_HELPER_PATH "/usr/libexec/pam_twilio_verify/twilio-verify-helper"
#endif
inline constexpr const char* kDefaultHelperPath = PTV_HELPER_PATH;

struct ModuleOptions {
  std::string config_path = kDefaultConfigPath;
  std::string helper_path = kDefaultHelperPath;
  bool debug = false;
};

// Parses argv. An unknown or malformed argument is an error whose message
// names it; the module then fails closed.
std::expected<ModuleOptions, std::string> parse_module_options(
    int argc, const char** argv);

}  // namespace ptv
