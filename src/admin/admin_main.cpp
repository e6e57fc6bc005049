// twilio-verify-admin: the command line, the root check and the commands
// (admin/admin.hpp). Exit status 0 success, 1 a check or the operation
// failed, 2 a usage error, 3 not run as root.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "admin/admin.hpp"
#include "config/config.hpp"

namespace {

using ptv::admin::Options;

constexpr const char* kUsage =
    "usage: twilio-verify-admin check [--conf PATH] [--user USER] [--pam-dir DIR] [--quiet]\n"
    "       twilio-verify-admin lookup USER [--conf PATH]\n"
    "       twilio-verify-admin test USER [--yes] [--helper PATH] [--conf PATH]\n"
    "       twilio-verify-admin status [USER] [--conf PATH]\n"
    "       twilio-verify-admin reset USER [--conf PATH]\n"
    "       twilio-verify-admin rate-limits [--apply] [--prune] [--conf PATH]\n"
    "       twilio-verify-admin COMMAND --help\n"
    "PATH defaults to /etc/security/pam_twilio_verify.conf. Exit status: 0 success,\n"
    "1 a check or the operation failed, 2 usage error, 3 not run as root.\n";

struct Command {
  const char* name;
  const char* options;  // the options it takes, space-separated
  int min_args, max_args;  // positional USER arguments
  int (*run)(const Options&);
};

constexpr Command kCommands[] = {
    {"check", " --conf --user --pam-dir --quiet ", 0, 0, ptv::admin::run_check},
    {"lookup", " --conf ", 1, 1, ptv::admin::run_lookup},
    {"test", " --conf --yes --helper ", 1, 1, ptv::admin::run_test},
    {"status", " --conf ", 0, 1, ptv::admin::run_status},
    {"reset", " --conf ", 1, 1, ptv::admin::run_reset},
    {"rate-limits", " --conf --apply --prune ", 0, 0, ptv::admin::run_rate_limits},
};

int usage_error(const std::string& why) {
  std::fprintf(stderr, "twilio-verify-admin: %s\n%s", why.c_str(), kUsage);
  return ptv::admin::kUsage;
}

bool takes(const Command& c, std::string_view option) {
  return std::strstr(c.options, (" " + std::string(option) + " ").c_str()) != nullptr;
}

// Sets one option; false for an option the command does not take.
bool set_option(Options& o, std::string_view name, const std::string& value) {
  if (name == "--conf") o.conf = value;
  else if (name == "--user") o.user = value;
  else if (name == "--pam-dir") o.pam_dir = value;
  else if (name == "--helper") o.helper = value;
  else if (name == "--quiet") o.quiet = true;
  else if (name == "--yes") o.yes = true;
  else if (name == "--apply") o.apply = true;
  else if (name == "--prune") o.prune = true;
  else return false;
  return true;
}

bool takes_value(std::string_view name) {
  return name == "--conf" || name == "--user" || name == "--pam-dir" ||
         name == "--helper";
}

// The options and arguments after the command; an error text, or nothing.
std::optional<std::string> parse(const Command& c, int argc, char** argv,
                                  Options& o, int& positional) {
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.starts_with("--")) {
      if (++positional > c.max_args) return "too many arguments";
      o.user = arg;
      continue;
    }
    std::string value;
    bool inline_value = false;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.erase(eq);
      inline_value = true;
    }
    if (!takes(c, arg)) return "unknown option " + arg + " for " + c.name;
    if (takes_value(arg) && !inline_value) {
      if (i + 1 >= argc) return arg + " needs a value";
      value = argv[++i];
    }
    if ((takes_value(arg) && value.empty()) || (!takes_value(arg) && inline_value))
      return "bad value for " + arg;
    set_option(o, arg, value);
  }
  if (positional < c.min_args) return std::string(c.name) + " needs USER";
  return std::nullopt;
}

bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h")
      return true;
  return false;
}

int run(int argc, char** argv) {
  if (wants_help(argc, argv)) {
    std::fputs(kUsage, stdout);
    return ptv::admin::kOk;
  }
  if (argc < 2) return usage_error("no command");
  const Command* command = nullptr;
  for (const Command& c : kCommands)
    if (std::string_view(argv[1]) == c.name) command = &c;
  if (command == nullptr) return usage_error(std::string("unknown command ") + argv[1]);
  Options options;
  options.command = command->name;
  int positional = 0;
  if (auto error = parse(*command, argc, argv, options, positional))
    return usage_error(*error);
  if (!options.conf.starts_with("/"))
    return usage_error("--conf needs an absolute path, as conf= does");
  if (geteuid() != 0) {
    std::fprintf(stderr, "twilio-verify-admin: must be run as root\n");
    return ptv::admin::kNotRoot;
  }
  return command->run(options);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "twilio-verify-admin: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "twilio-verify-admin: unexpected error\n");
  }
  return ptv::admin::kFailed;
}
