// twilio-verify-state: creates the send limit's state file ahead of time
// (the Debian postinst runs "create", so that the first login does not
// need a free inode or 8 MiB of free blocks), clears one user's entries,
// and shows what is recorded for a user.
//
//   twilio-verify-state create [STATE_DIR]
//   twilio-verify-state reset USER [STATE_DIR]
//   twilio-verify-state show USER [STATE_DIR]
//
// STATE_DIR defaults to /var/lib/pam_twilio_verify (the module's default
// state_dir). Exit status 0 on success, 1 on a problem (printed), 2 on a
// usage error.
#include <cstdio>
#include <exception>
#include <expected>
#include <string>
#include <string_view>

#include "state/settings.hpp"
#include "state/send_limit.hpp"

namespace {

constexpr int kUsageError = 2;

int usage() {
  std::fprintf(stderr,
               "usage: twilio-verify-state create [STATE_DIR]\n"
               "       twilio-verify-state reset USER [STATE_DIR]\n"
               "       twilio-verify-state show USER [STATE_DIR]\n"
               "STATE_DIR defaults to %s\n",
               ptv::kDefaultStateDir);
  return kUsageError;
}

int report_problem(const std::string& problem) {
  std::fprintf(stderr, "twilio-verify-state: %s\n", problem.c_str());
  return 1;
}

int report(const std::expected<void, ptv::StateError>& result) {
  return result ? 0 : report_problem(describe(result.error()));
}

int show(const ptv::SendLimitSettings& settings, std::string_view user) {
  const auto sends = ptv::recorded_sends(settings, user);
  if (!sends) return report_problem(describe(sends.error()));
  for (const std::int64_t stamp : *sends)
    std::printf("%lld\n", static_cast<long long>(stamp));
  return std::fflush(stdout) == 0 ? 0 : 1;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string_view command = argv[1];
  const bool takes_user = command == "reset" || command == "show";
  if (command != "create" && !takes_user) return usage();
  const int first_optional = takes_user ? 3 : 2;
  if (argc < first_optional || argc > first_optional + 1) return usage();
  ptv::SendLimitSettings settings;  // owner root, the default table
  settings.state_dir = argc > first_optional ? argv[first_optional]
                                             : std::string(ptv::kDefaultStateDir);
  if (command == "create") return report(ptv::ensure_state_file(settings));
  const std::string_view user = argv[2];
  if (command == "reset") return report(ptv::reset_account(settings, user));
  return show(settings, user);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return report_problem(e.what());
  } catch (...) {
    return report_problem("unexpected error");
  }
}
