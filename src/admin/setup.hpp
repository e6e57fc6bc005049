// What the commands share: the configuration loaded as the module loads
// it, a logger that prints what the module would write to syslog, and the
// checks of each part of a setup (check_*.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "admin/admin.hpp"
#include "admin/report.hpp"
#include "config/config.hpp"
#include "core/account.hpp"
#include "phone/source.hpp"
#include "state/send_limit.hpp"
#include "util/log.hpp"

namespace ptv::admin {

// load_config_file, as the module calls it; the error is the module's
// own message (file, line, setting) as a problem.
std::optional<Config> load_setup(const std::string& path, Report& report);

// Prints each line the module would log, with its priority.
class PrintLogger final : public Logger {
 public:
  void log(int priority, std::string_view message) override;
};

// The checks of "check", in their order; each reports its lines.
void check_configuration(const std::string& path, const Config& config,
                         Report& report);
void check_state(const StateSettings& state, Report& report);
void check_twilio(const TwilioSettings& twilio, Report& report);
// The service's rate limits against rate_limits = { ... } (when declared).
void check_rate_limits(const TwilioSettings& twilio, Report& report);
void check_phone_sources(const Config& config, const std::string& user,
                         Report& report);
void check_pam(const Options& options, const Config& config, Report& report);

// The number source a login would ask for `which`.
std::unique_ptr<NumberSource> phone_source(PhoneSource which, const Config& config,
                                           const Account& account, Logger& log);

// Text helpers.
std::string joined(const auto& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace ptv::admin
