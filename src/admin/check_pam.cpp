// check (d): the PAM side: the services that reach the module, which of
// them `services` leaves out, and whether each helper they name is
// present and safe.
#include <algorithm>
#include <set>

#include "admin/pam_stack.hpp"
#include "admin/setup.hpp"
#include "util/safe_path.hpp"

namespace ptv::admin {

namespace {

std::string route_text(const ModuleUse& use) {
  return use.via.empty() ? std::string("directly") : "through " + joined(use.via, " > ");
}

void report_service(const ServiceStack& s, const Options& options,
                    const PolicySettings& policy, Report& report) {
  const ModuleUse& use = s.uses.front();
  const bool asks = !policy.services_set ||
                    std::find(policy.services.begin(), policy.services.end(),
                              s.service) != policy.services.end();
  report.ok("pam: service " + s.service + " reaches the module " +
            route_text(use) +
            (asks ? "; it asks for a code"
                  : "; services leaves it out (PAM_IGNORE: the rest of its "
                    "stack decides)"));
  for (const ModuleUse& u : s.uses) {
    const std::string conf = u.conf.empty() ? kDefaultConfigPath : u.conf;
    if (conf != options.conf)
      report.warning("pam: service " + s.service + " uses conf=" + log_safe(conf, 200) +
                     ", not the file checked here (" + options.conf + ")");
  }
}

void check_helpers(const std::set<std::string>& helpers, Report& report) {
  for (const std::string& helper : helpers) {
    const auto safe = check_safe_executable(helper, "helper");
    if (safe)
      report.ok("pam: helper " + log_safe(helper, 200) + " is present and safe");
    else
      report.problem("pam: " + safe.error() +
                     "; every login that needs it would be denied "
                     "(denied-internal-error); fix the file or helper=");
  }
}

}  // namespace

void check_pam(const Options& options, const Config& config, Report& report) {
  const PamScan scan = scan_pam_dir(options.pam_dir);
  for (const std::string& p : scan.problems) report.warning(p);
  if (scan.services.empty()) {
    report.problem("pam: no service in " + options.pam_dir + " reaches " +
                   kModuleFile + " (add its auth line to a stack, such as "
                   "common-auth or sshd)");
    return;
  }
  std::set<std::string> helpers;
  for (const ServiceStack& s : scan.services) {
    report_service(s, options, config.policy, report);
    for (const ModuleUse& u : s.uses)
      helpers.insert(u.helper.empty() ? kDefaultHelperPath : u.helper);
  }
  if (config.policy.services_set)
    for (const std::string& name : config.policy.services)
      if (std::none_of(scan.services.begin(), scan.services.end(),
                       [&](const ServiceStack& s) { return s.service == name; }))
        report.warning("pam: services lists \"" + log_safe(name) +
                       "\", which does not reach the module in " + options.pam_dir);
  check_helpers(helpers, report);
}

}  // namespace ptv::admin
