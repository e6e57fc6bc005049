// The state part of the configuration: the per-user limit on verification
// starts and the directory that keeps the counts across logins.
#pragma once

#include <string>

namespace ptv {

inline constexpr const char* kDefaultStateDir = "/var/lib/pam_twilio_verify";

// At most send_limit_count starts (each may send an SMS) within any
// send_limit_window_s seconds, per user.
struct StateSettings {
  int send_limit_count = 5;
  long send_limit_window_s = 3600;
  std::string state_dir = kDefaultStateDir;
};

}  // namespace ptv
