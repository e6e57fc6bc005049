// twilio-verify-admin: proves a setup (check), shows what a login would do
// for one user (lookup), runs one real login on the terminal (test), and
// shows or clears a user's send-limit and grace state (status, reset),
// keeps the Verify service's rate limits as configured (rate-limits),
// all through the module's own libraries so that it cannot disagree with
// the module.
#pragma once

#include <string>

#include "config/options.hpp"

namespace ptv::admin {

// Exit statuses of every command.
inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;
inline constexpr int kUsage = 2;
inline constexpr int kNotRoot = 3;

inline constexpr const char* kDefaultPamDir = "/etc/pam.d";

// The command line, parsed (admin_main.cpp).
struct Options {
  std::string command;
  std::string conf = kDefaultConfigPath;
  std::string user;     // check --user, or the USER argument
  std::string pam_dir = kDefaultPamDir;
  std::string helper;   // empty: the PAM line's helper=, else the default
  bool quiet = false;   // check: problems only
  bool yes = false;     // test: no confirmation question
  bool apply = false;   // rate-limits: make what is missing, update what differs
  bool prune = false;   // rate-limits: delete what is not declared
};

int run_check(const Options& options);
int run_lookup(const Options& options);
int run_test(const Options& options);
int run_status(const Options& options);
int run_reset(const Options& options);
int run_rate_limits(const Options& options);

}  // namespace ptv::admin
