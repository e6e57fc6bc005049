// check (c): each configured phone source works: the directory connects,
// binds and finds its base; the lookup command passes the safety checks;
// with --user, each source is asked for that user as a login would.
#include <pwd.h>

#include <memory>

#include "admin/setup.hpp"
#include "core/account.hpp"
#include "phone/command_source.hpp"
#include "phone/gecos_source.hpp"
#include "phone/ldap_source.hpp"
#include "phone/lookup.hpp"
#include "phone/phone.hpp"
#include "phone/users_source.hpp"

namespace ptv::admin {

namespace {

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The ldap settings a failure points at.
std::string ldap_setting(const PhoneError& e) {
  const std::string& d = e.detail;
  if (contains(d, "cannot connect") || contains(d, "uri is not usable"))
    return "ldap.uri";
  if (contains(d, "TLS")) return "ldap.ca_file and ldap.starttls";
  if (contains(d, "bind")) return "ldap.bind_dn and ldap.bind_password";
  if (contains(d, "search base")) return "ldap.base";
  if (contains(d, "filter")) return "ldap.filter";
  return "ldap.uri and ldap.timeout_ms";
}

std::string tls_mode(const LdapSettings& s) {
  if (s.uri.starts_with("ldaps://")) return "ldaps";
  if (s.uri.starts_with("ldap://")) return s.starttls ? "StartTLS" : "no TLS";
  return "local socket";
}

void check_ldap(const LdapSettings& s, Report& report) {
  const SourceValues probed = probe_ldap(s);
  if (!probed) {
    report.problem("phone source ldap: " + probed.error().detail + "; check " +
                   ldap_setting(probed.error()));
    return;
  }
  report.ok("phone source ldap: " + log_safe(s.uri, 200) + " connected (" +
            tls_mode(s) + "), bound " +
            (s.bind_dn.empty() ? std::string("anonymously")
                               : "as " + log_safe(s.bind_dn, 200)) +
            ", base \"" + log_safe(s.base, 200) + "\" found");
  if (tls_mode(s) == "no TLS")
    report.warning("phone source ldap: ldap:// with starttls = false: anyone "
                   "on the network path can change the number");
}

void check_command(const CommandSettings& c, Report& report) {
  const auto safe = check_command_file(c.path);
  if (!safe) {
    report.problem("phone source command: " + safe.error() +
                   "; check lookup_command");
    return;
  }
  report.ok("phone source command: lookup_command " + log_safe(c.path, 200) +
            " passes the safety checks");
  if (getpwnam(c.user.c_str()) == nullptr)
    report.problem("phone source command: lookup_command_user \"" +
                   log_safe(c.user) + "\" is no account");
}

// One source asked for the user, as the ordered lookup would ask it.
void ask_for(NumberSource& source, const std::string& user, Report& report) {
  NumberSource* one[] = {&source};
  const PhoneLookup found = lookup_phone(one, user);
  const std::string name = "phone source " + std::string(source.name());
  if (!found)
    report.problem(name + " for user " + log_safe(user) + ": " + found.error().detail);
  else if (!found->has_value())
    report.ok(name + " for user " + log_safe(user) + ": no number");
  else
    report.ok(name + " for user " + log_safe(user) + ": " +
              mask_phone((*found)->number));
}

void check_for_user(const Config& config, const std::string& user,
                    Report& report) {
  const auto account = resolve_account(user);
  if (!account) {
    report.problem("--user " + log_safe(user) + ": " + account.error().detail);
    return;
  }
  PrintLogger log;
  for (PhoneSource which : config.phone.sources)
    if (auto source = phone_source(which, config, *account, log))
      ask_for(*source, account->name, report);
}

}  // namespace

std::unique_ptr<NumberSource> phone_source(PhoneSource which, const Config& c,
                                           const Account& account, Logger& log) {
  switch (which) {
    case PhoneSource::Users:
      return std::make_unique<UsersSource>(c.phone.users);
    case PhoneSource::Gecos:
      return std::make_unique<GecosSource>(account.gecos, c.phone.gecos_field);
    case PhoneSource::Ldap:
      return std::make_unique<LdapSource>(c.phone.ldap, log);
    case PhoneSource::Command:
      return std::make_unique<CommandSource>(c.phone.command);
  }
  return nullptr;
}

void check_phone_sources(const Config& config, const std::string& user,
                         Report& report) {
  for (PhoneSource which : config.phone.sources) {
    if (which == PhoneSource::Users)
      report.ok("phone source users: " +
                std::to_string(config.phone.users.size()) + " entries");
    if (which == PhoneSource::Gecos)
      report.ok("phone source gecos: field " +
                std::to_string(config.phone.gecos_field) + " of the GECOS string");
    if (which == PhoneSource::Ldap) check_ldap(config.phone.ldap, report);
    if (which == PhoneSource::Command) check_command(config.phone.command, report);
  }
  if (!user.empty()) check_for_user(config, user, report);
}

}  // namespace ptv::admin
