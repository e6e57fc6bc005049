// The PAM service files that reach the module: each file of the PAM
// directory, followed through @include and the include and substack
// controls of its auth lines, as Linux-PAM reads them.
#pragma once

#include <string>
#include <vector>

namespace ptv::admin {

inline constexpr const char* kModuleFile = "pam_twilio_verify.so";

// One auth line of the module that a service reaches.
struct ModuleUse {
  std::vector<std::string> via;  // the files included on the way, in order
  std::string conf;              // conf= ("" when not given)
  std::string helper;            // helper= ("" when not given)
};

struct ServiceStack {
  std::string service;  // the file's name
  std::vector<ModuleUse> uses;
};

struct PamScan {
  std::vector<ServiceStack> services;  // those that reach the module
  std::vector<std::string> included;   // files another file includes
  std::vector<std::string> problems;   // unreadable or missing files
};

// Every regular file of pam_dir; a file that another file includes is a
// part of stacks (common-auth), listed in `included`, not as a service.
PamScan scan_pam_dir(const std::string& pam_dir);

}  // namespace ptv::admin
