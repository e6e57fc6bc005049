// The PAM entry points, and nothing else: arguments, configuration,
// services and the user, then the module's side of the login with the real
// conversation, syslog, state store and helper; the outcome mapped to a PAM
// result and logged. No exception leaves this file.
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include <chrono>
#include <new>

#include "config/config.hpp"
#include "config/options.hpp"
#include "core/account.hpp"
#include "core/client_flow.hpp"
#include "core/policy.hpp"
#include "pam/helper_client.hpp"
#include "pam/pam_io.hpp"
#include "state/send_limit.hpp"

#define PTV_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// Usernames longer than this are refused before any lookup.
constexpr std::size_t kMaxUserLength = 256;

// The user name the application already set, without prompting for one:
// for the log line of an outcome decided before pam_get_user.
std::string user_item(pam_handle_t* pamh) {
  const void* item = nullptr;
  if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || item == nullptr)
    return "?";
  return static_cast<const char*>(item);
}

// A string item (PAM_SERVICE, PAM_RHOST), "" when it is not set.
std::string string_item(pam_handle_t* pamh, int type) {
  const void* item = nullptr;
  if (pam_get_item(pamh, type, &item) != PAM_SUCCESS || item == nullptr)
    return {};
  return static_cast<const char*>(item);
}

// The module's side of the login with the real conversation, accounts,
// send limit and helper.
ptv::AuthResult run_login(pam_handle_t* pamh, int flags,
                          const ptv::ModuleOptions& options,
                          const ptv::Config& config, const std::string& user_name,
                          ptv::PamLogger& log) {
  ptv::PamConversation conversation(pamh, (flags & PAM_SILENT) != 0);
  ptv::SystemAccounts accounts;
  ptv::HelperProgram program(options.helper_path);
  ptv::StateDirSendGate send_gate(ptv::send_limit_settings(config.state));
  ptv::StateDirGrace grace(ptv::send_limit_settings(config.state));
  ptv::SystemGroups groups;
  const std::string remote_host = string_item(pamh, PAM_RHOST);
  ptv::HelperVerifier helper({program, options.config_path,
                              ptv::helper_wait_bound(config.twilio, config.phone),
                              conversation, log, &send_gate});
  const ptv::ClientRequest request{{config.policy, config.phone},
                                   {log, accounts, helper, groups, grace},
                                   user_name,
                                   ptv::running_set_id(),
                                   remote_host};
  return ptv::authenticate_client(request);
}

// The steps in the order the README's flow section states: module
// arguments, configuration, services, the user, then the flow (account,
// phone lookup, send limit, start, code).
int authenticate(pam_handle_t* pamh, int flags, int argc, const char** argv) {
  const auto started = std::chrono::steady_clock::now();
  ptv::PamLogger log(pamh);
  std::string user_name = user_item(pamh);
  auto finish = [&](const ptv::AuthResult& r) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    ptv::log_outcome(log, user_name, r, static_cast<long>(elapsed.count()));
    return ptv::pam_result_for(r.outcome);
  };
  using ptv::Outcome;
  auto options = ptv::parse_module_options(argc, argv);
  if (!options) return finish(ptv::decided(Outcome::ConfigError, {}, options.error()));
  log.set_debug(options->debug);
  auto config = ptv::load_config_file(options->config_path);
  if (!config)
    return finish(ptv::decided(Outcome::ConfigError, {}, config.error().message));
  if (auto skipped = ptv::skip_service(config->policy, string_item(pamh, PAM_SERVICE)))
    return finish(*skipped);

  const char* user = nullptr;
  const int user_rc = pam_get_user(pamh, &user, nullptr);
  if (user_rc != PAM_SUCCESS || user == nullptr || user[0] == '\0') {
    (void)finish(ptv::decided(Outcome::InternalError, {}, "cannot get the user name"));
    // pam_get_user's own failure (a conversation error, say) is passed on.
    return user_rc != PAM_SUCCESS ? user_rc : PAM_USER_UNKNOWN;
  }
  user_name = user;
  if (user_name.size() > kMaxUserLength)
    return finish(ptv::decided(Outcome::InternalError, {},
                               "user name longer than 256 characters"));
  return finish(run_login(pamh, flags, *options, *config, user_name, log));
}

}  // namespace

PTV_EXPORT int pam_sm_authenticate(pam_handle_t* pamh, int flags, int argc,
                                   const char** argv) {
  try {
    return authenticate(pamh, flags, argc, argv);
  } catch (const std::bad_alloc&) {
    pam_syslog(pamh, LOG_CRIT, "out of memory; denying");
    return PAM_BUF_ERR;
  } catch (...) {
    pam_syslog(pamh, LOG_CRIT, "unexpected internal error; denying");
    return PAM_SERVICE_ERR;
  }
}

// The module sets no credentials. It answers PAM_SUCCESS, as pam_u2f and
// google-authenticator do: sshd treats a failing pam_setcred after a
// successful authentication as fatal.
PTV_EXPORT int pam_sm_setcred(pam_handle_t* /*pamh*/, int /*flags*/,
                              int /*argc*/, const char** /*argv*/) {
  return PAM_SUCCESS;
}
