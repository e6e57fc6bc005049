#include "config/settings.hpp"

#include <algorithm>
#include <set>

#include "config/checks.hpp"
#include "config/table.hpp"
#include "phone/phone.hpp"
#include "twilio/message_body.hpp"
#include "util/log.hpp"

namespace ptv {

namespace {

using namespace table;

bool is_list(const config_setting_t* s) {
  const int type = config_setting_type(s);
  return type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY;
}

// users = ( ("alice", "+15551234567"), ... ): distinct names, E.164 numbers.
ConfigResult users(const Reader& r, const config_setting_t* list,
                   PhoneSettings& phone) {
  if (!is_list(list))
    return std::unexpected(r.error(
        list, "must be a list of pairs: ( (\"user\", \"+15551234567\"), ... )"));
  std::set<std::string> seen;
  const int n = config_setting_length(list);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* pair = config_setting_get_elem(list, i);
    const std::string entry = "entry " + std::to_string(i + 1);
    if (!is_list(pair) || config_setting_length(pair) != 2)
      return std::unexpected(r.error(
          pair, entry + " must be a pair (\"user\", \"+15551234567\")"));
    auto user = r.string(config_setting_get_elem(pair, 0));
    if (!user) return std::unexpected(user.error());
    auto number = r.string(config_setting_get_elem(pair, 1));
    if (!number) return std::unexpected(number.error());
    if (user->empty())
      return std::unexpected(r.error(pair, entry + " has an empty user name"));
    std::string normalised = normalise_phone(*number);
    if (!is_e164(normalised))
      return std::unexpected(r.error(
          pair, "the number of user \"" + log_safe(*user) +
                    "\" is not E.164 (\"+\", 7 to 15 digits, no leading "
                    "zero)"));
    if (!seen.insert(*user).second)
      return std::unexpected(r.error(
          pair, "user \"" + log_safe(*user) + "\" is listed twice"));
    phone.users.emplace_back(std::move(*user), std::move(normalised));
  }
  return {};
}

constexpr Choice<PhoneSource> kSources[] = {
    {"users", PhoneSource::Users},
    {"gecos", PhoneSource::Gecos},
    {"ldap", PhoneSource::Ldap},
    {"command", PhoneSource::Command},
};

// phone_sources = [ "users", "gecos" ]: known, distinct, at least one.
ConfigResult sources(const Reader& r, const config_setting_t* s,
                     PhoneSettings& phone) {
  if (!is_list(s))
    return std::unexpected(
        r.error(s, "must be a list such as [ \"users\", \"gecos\" ]"));
  phone.sources.clear();
  const int n = config_setting_length(s);
  if (n == 0) return std::unexpected(r.error(s, "must name at least one source"));
  for (int i = 0; i < n; ++i) {
    auto v = r.string(config_setting_get_elem(s, i));
    if (!v) return std::unexpected(v.error());
    const auto* known = std::find_if(std::begin(kSources), std::end(kSources),
                                     [&v](const auto& c) { return c.word == *v; });
    if (known == std::end(kSources))
      return std::unexpected(r.error(
          s, "unknown source \"" + log_safe(*v) + "\" (use \"users\", "
             "\"gecos\", \"ldap\" or \"command\")"));
    if (std::find(phone.sources.begin(), phone.sources.end(), known->value) !=
        phone.sources.end())
      return std::unexpected(
          r.error(s, "source \"" + *v + "\" is listed twice"));
    phone.sources.push_back(known->value);
  }
  return {};
}

// A list of distinct strings, each checked by `check` (its index and value):
// the values, or the first error. `noun` names one entry in the "listed
// twice" error.
using EntryCheck = ConfigResult (*)(const Reader&, const config_setting_t*,
                                    int, std::string_view);

std::expected<std::vector<std::string>, ConfigError> distinct_strings(
    const Reader& r, const config_setting_t* s, std::string_view example,
    std::string_view noun, EntryCheck check) {
  if (!is_list(s))
    return std::unexpected(
        r.error(s, "must be a list such as " + std::string(example)));
  std::vector<std::string> values;
  const int n = config_setting_length(s);
  for (int i = 0; i < n; ++i) {
    const config_setting_t* e = config_setting_get_elem(s, i);
    auto v = r.string(e);
    if (!v) return std::unexpected(v.error());
    if (auto ok = check(r, e, i, *v); !ok) return std::unexpected(ok.error());
    if (std::find(values.begin(), values.end(), *v) != values.end())
      return std::unexpected(r.error(e, std::string(noun) + " \"" +
                                            log_safe(*v) + "\" is listed twice"));
    values.push_back(std::move(*v));
  }
  return values;
}

// The PAM services that ask for the code. An empty list would mean "no
// service", which is what leaving the module out of the stack means:
// refused, so that it cannot be mistaken for "every service".
ConfigResult services(const Reader& r, const config_setting_t* s,
                      PolicySettings& policy) {
  if (is_list(s) && config_setting_length(s) == 0)
    return std::unexpected(
        r.error(s, "must name at least one service; leave the setting out "
                   "to cover every service"));
  auto names = distinct_strings(r, s, "[ \"sshd\", \"login\" ]", "service",
                                service_name);
  if (!names) return std::unexpected(names.error());
  policy.services = std::move(*names);
  policy.services_set = true;
  return {};
}

// A list of distinct strings stored as they are, or as what they parse to.
void store(std::vector<std::string>& to, std::vector<std::string> values) {
  to = std::move(values);
}
void store(std::vector<Network>& to, const std::vector<std::string>& texts) {
  to.clear();
  for (const std::string& text : texts)
    to.push_back(*parse_network(text));  // checked by network_text
}

struct ListShape {
  std::string_view example;
  std::string_view noun;
  EntryCheck check;
};

template <const ListShape& shape, auto member>
ConfigResult string_list(const Reader& r, const config_setting_t* s,
                         PolicySettings& policy) {
  auto values = distinct_strings(r, s, shape.example, shape.noun, shape.check);
  if (!values) return std::unexpected(values.error());
  store(policy.*member, std::move(*values));
  return {};
}

// exempt_groups: group names, resolved at each login (a name that does not
// resolve then exempts no one); exempt_networks: CIDR networks.
constexpr ListShape kGroupList{"[ \"deploy\", \"breakglass\" ]", "group",
                               group_name};
constexpr ListShape kNetworkList{"[ \"10.0.0.0/8\", \"2001:db8::/32\" ]",
                                 "network", network_text};

// ------------------------------------------------------------- twilio = {}

ConfigResult twilio_check(const Reader& r, const config_setting_t* group,
                          TwilioSettings& t) {
  const auto refuse = [&](const char* what) {
    return ConfigResult(std::unexpected(r.error(group, what)));
  };
  if (!t.api_key_sid.empty() && t.api_key_secret.empty())
    return refuse("api_key_sid is set but api_key_secret is missing");
  if (t.api_key_sid.empty() && !t.api_key_secret.empty())
    return refuse("api_key_secret is set but api_key_sid is missing");
  if (t.api_key_sid.empty() && t.auth_token.empty())
    return refuse("no credential: set auth_token, or api_key_sid and "
                  "api_key_secret");
  if (t.connect_timeout_ms > t.timeout_ms)
    return refuse("connect_timeout_ms must not be larger than timeout_ms");
  return {};
}

constexpr Row<TwilioSettings> kTwilioRows[] = {
    {"account_sid", sid<&TwilioSettings::account_sid, 'A', 'C'>},
    {"auth_token", secret<&TwilioSettings::auth_token>},
    {"api_key_sid", sid<&TwilioSettings::api_key_sid, 'S', 'K'>},
    {"api_key_secret", secret<&TwilioSettings::api_key_secret>},
    {"service_sid", sid<&TwilioSettings::service_sid, 'V', 'A'>},
    {"api_url", text<&TwilioSettings::api_url, https_url>},
    {"ca_file", text<&TwilioSettings::ca_file, readable_file>},
    {"proxy", text<&TwilioSettings::proxy, proxy_url>},
    {"connect_timeout_ms", integer<&TwilioSettings::connect_timeout_ms, 100, 60000>},
    {"timeout_ms", integer<&TwilioSettings::timeout_ms, 500, 60000>},
};
// service_sid is required with backend = "verify" only (backend_check).
constexpr std::string_view kTwilioRequired[] = {"account_sid"};
constexpr Group<TwilioSettings> kTwilio{
    kTwilioRows, "must be a group: twilio = { ... };", kTwilioRequired,
    twilio_check};

// ---------------------------------------------------------- messaging = {}

// from: the Twilio number the SMS comes from, exactly E.164.
ConfigResult e164_number(const Reader& r, const config_setting_t* s,
                         std::string& v) {
  if (is_e164(v)) return {};
  return std::unexpected(r.error(
      s, "must be a Twilio number in E.164 form (\"+\", 7 to 15 digits, no "
         "leading zero), such as \"+15550100001\""));
}

// One sender, and a body that fits one SMS with the code in it.
ConfigResult messaging_check(const Reader& r, const config_setting_t* group,
                             MessagingSettings& m) {
  if (!m.from.empty() && !m.messaging_service_sid.empty())
    return std::unexpected(r.error(
        group, "sets both from and messaging_service_sid; set one of the two"));
  if (m.from.empty() && m.messaging_service_sid.empty())
    return std::unexpected(r.error(
        group, "from or messaging_service_sid is missing (set one of the two)"));
  if (auto problem = body_problem(m.body, static_cast<std::size_t>(m.code_length))) {
    const config_setting_t* body = config_setting_get_member(group, "body");
    return std::unexpected(r.error(
        body != nullptr ? body : group,
        (body != nullptr ? "" : "the default body ") + *problem));
  }
  return {};
}

constexpr Row<MessagingSettings> kMessagingRows[] = {
    {"from", text<&MessagingSettings::from, e164_number>},
    {"messaging_service_sid",
     sid<&MessagingSettings::messaging_service_sid, 'M', 'G'>},
    {"api_url", text<&MessagingSettings::api_url, https_url>},
    {"code_length", integer<&MessagingSettings::code_length, 6, 10>},
    {"code_ttl_s", integer<&MessagingSettings::code_ttl_s, 60, 900>},
    {"body", text<&MessagingSettings::body>},
};
constexpr Group<MessagingSettings> kMessaging{
    kMessagingRows,
    "must be a group: messaging = { from = \"+15550100001\"; };", {},
    messaging_check};

// --------------------------------------------------------------- ldap = {}

ConfigResult ldap_check(const Reader& r, const config_setting_t* group,
                        LdapSettings& l) {
  if (!l.bind_dn.empty() && l.bind_password.empty())
    return std::unexpected(
        r.error(group, "bind_dn is set but bind_password is missing"));
  if (l.bind_dn.empty() && !l.bind_password.empty())
    return std::unexpected(
        r.error(group, "bind_password is set but bind_dn is missing"));
  const config_setting_t* starttls = config_setting_get_member(group, "starttls");
  if (starttls != nullptr && l.starttls && !l.uri.starts_with("ldap://"))
    return std::unexpected(r.error(
        starttls, "applies to ldap:// URIs only (ldaps:// is TLS from the "
                  "start; ldapi:// is a local socket)"));
  if (!l.uri.starts_with("ldap://")) l.starttls = false;
  return {};
}

constexpr Row<LdapSettings> kLdapRows[] = {
    {"uri", text<&LdapSettings::uri, ldap_uris>},
    {"starttls", boolean<&LdapSettings::starttls>},
    {"ca_file", text<&LdapSettings::ca_file, readable_file>},
    {"base", text<&LdapSettings::base, not_empty>},
    {"filter", text<&LdapSettings::filter, ldap_filter>},
    {"attribute", text<&LdapSettings::attribute, ldap_attribute>},
    {"bind_dn", text<&LdapSettings::bind_dn, bind_dn>},
    {"bind_password", secret<&LdapSettings::bind_password, SecretKind::Password>},
    {"timeout_ms", integer<&LdapSettings::timeout_ms, 100, 60000>},
};
constexpr std::string_view kLdapRequired[] = {"uri", "base"};
constexpr Group<LdapSettings> kLdap{
    kLdapRows,
    "must be a group: ldap = { uri = \"ldaps://...\"; base = \"...\"; };",
    kLdapRequired, ldap_check};

ConfigResult ldap(const Reader& r, const config_setting_t* s, PhoneSettings& p) {
  if (auto ok = group<kLdap>(r, s, p.ldap); !ok) return ok;
  p.has_ldap = true;
  return {};
}

// --------------------------------------------------------- send_limit = {}

constexpr Row<StateSettings> kSendLimitRows[] = {
    {"count", integer<&StateSettings::send_limit_count, 1, 100>},
    {"window_s", integer<&StateSettings::send_limit_window_s, 60, 86400>},
};
constexpr Group<StateSettings> kSendLimit{
    kSendLimitRows,
    "must be a group: send_limit = { count = 5; window_s = 3600; };", {}, nullptr};

// -------------------------------------------------------- rate_limits = {}

// A rate limit's unique name: Twilio's document sets no rule beyond "no
// PII"; letters, digits, "_" and "-", so that it is the same word in the
// file, the RateLimits JSON and the service.
ConfigResult rate_limit_name(const Reader& r, const config_setting_t* s,
                             std::string& v) {
  const bool ok = !v.empty() && v.size() <= kMaxRateLimitNameLength &&
                  std::all_of(v.begin(), v.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '_' || c == '-';
                  });
  if (ok) return {};
  return std::unexpected(r.error(
      s, "must be 1 to 64 letters, digits, \"_\" or \"-\" (such as "
         "\"pam_account\")"));
}

constexpr Row<RateLimitBucket> kBucketRows[] = {
    {"max", integer<&RateLimitBucket::max, 1, kMaxBucketMax>},
    {"interval_s", integer<&RateLimitBucket::interval_s, 1, kMaxBucketIntervalS>},
};
constexpr std::string_view kBucketRequired[] = {"max", "interval_s"};
constexpr Group<RateLimitBucket> kBucket{
    kBucketRows, "", kBucketRequired, nullptr};

// buckets = ( { max = 10; interval_s = 3600; }, ... ): at least one, each
// a group with both keys, no two with the same interval.
ConfigResult buckets(const Reader& r, const config_setting_t* s, RateLimit& limit) {
  constexpr const char* kShape =
      "must be a list of groups: ( { max = 10; interval_s = 3600; } )";
  if (config_setting_type(s) != CONFIG_TYPE_LIST)
    return std::unexpected(r.error(s, kShape));
  const int n = config_setting_length(s);
  if (n == 0) return std::unexpected(r.error(s, "must hold at least one bucket"));
  limit.buckets.clear();
  for (int i = 0; i < n; ++i) {
    const config_setting_t* e = config_setting_get_elem(s, i);
    const std::string entry = "bucket " + std::to_string(i + 1);
    if (config_setting_type(e) != CONFIG_TYPE_GROUP)
      return std::unexpected(r.error(
          e, entry + " must be a group: { max = 10; interval_s = 3600; }"));
    RateLimitBucket b;
    if (auto ok = read_group(r, e, kBucket, b); !ok) return ok;
    for (std::size_t j = 0; j < limit.buckets.size(); ++j)
      if (limit.buckets[j].interval_s == b.interval_s)
        return std::unexpected(r.error(
            e, entry + " has the same interval_s (" +
                   std::to_string(b.interval_s) + ") as bucket " +
                   std::to_string(j + 1)));
    limit.buckets.push_back(b);
  }
  return {};
}

constexpr Row<RateLimit> kRateLimitRows[] = {
    {"unique_name", text<&RateLimit::unique_name, rate_limit_name>},
    {"buckets", buckets},
};
constexpr std::string_view kRateLimitRequired[] = {"unique_name", "buckets"};
constexpr Group<RateLimit> kRateLimit{
    kRateLimitRows,
    "must be a group: { unique_name = \"pam_account\"; buckets = ( { max = "
    "10; interval_s = 3600; } ); }",
    kRateLimitRequired, nullptr};

// The two names must differ: one key per rate limit in RateLimits.
ConfigResult rate_limits_check(const Reader& r, const config_setting_t* group,
                               RateLimitSettings& l) {
  if (!l.account.declared() || l.account.unique_name != l.client_ip.unique_name)
    return {};
  const config_setting_t* ip = config_setting_get_member(group, "client_ip");
  const config_setting_t* name =
      ip != nullptr ? config_setting_get_member(ip, "unique_name") : nullptr;
  return std::unexpected(r.error(
      name != nullptr ? name : group,
      "is the same as rate_limits.account.unique_name; the two rate limits "
      "need distinct names"));
}

constexpr Row<RateLimitSettings> kRateLimitsRows[] = {
    {"account", in<&RateLimitSettings::account, group<kRateLimit>>},
    {"client_ip", in<&RateLimitSettings::client_ip, group<kRateLimit>>},
};
constexpr Group<RateLimitSettings> kRateLimits{
    kRateLimitsRows,
    "must be a group: rate_limits = { account = { ... }; client_ip = { ... }; };",
    {}, rate_limits_check};

// -------------------------------------------------------------- the root

constexpr Choice<std::string_view> kChannels[] = {
    {"sms", "sms"}, {"call", "call"}, {"whatsapp", "whatsapp"}};
constexpr Choice<Backend> kBackends[] = {{"verify", Backend::Verify},
                                         {"messaging", Backend::Messaging}};
constexpr Choice<FailMode> kFailModes[] = {{"secure", FailMode::Secure},
                                           {"safe", FailMode::Safe}};
constexpr Choice<NoPhone> kNoPhone[] = {{"deny", NoPhone::Deny},
                                        {"skip", NoPhone::Skip}};

// What the backend needs: Verify its service_sid; Messaging its group, and
// none of the settings only Verify can honour (rate_limits, locale, a
// channel other than "sms").
ConfigResult backend_check(const Reader& r, const config_setting_t* root,
                           const Config& c) {
  const auto member = [root](const char* name) {
    return config_setting_get_member(root, name);
  };
  const bool messaging = c.twilio.backend == Backend::Messaging;
  if (!messaging && c.twilio.service_sid.empty())
    return std::unexpected(r.error(member("twilio"), "service_sid is missing"));
  if (!messaging) {
    if (const config_setting_t* m = member("messaging"))
      return std::unexpected(
          r.error(m, "applies to backend = \"messaging\" only"));
    return {};
  }
  if (member("messaging") == nullptr)
    return std::unexpected(r.file_error(
        "backend = \"messaging\" but the messaging = { ... }; group is "
        "missing"));
  for (const char* name : {"rate_limits", "locale"})
    if (const config_setting_t* s = member(name))
      return std::unexpected(r.error(
          s, "applies to backend = \"verify\" only; Programmable Messaging "
             "cannot honour it"));
  if (c.policy.channel != "sms")
    return std::unexpected(r.error(
        member("channel"), "must be \"sms\" with backend = \"messaging\""));
  return {};
}

// The twilio group is required, and the sources that need settings have them.
ConfigResult root_check(const Reader& r, const config_setting_t* root,
                        Config& c) {
  if (config_setting_get_member(root, "twilio") == nullptr)
    return std::unexpected(r.file_error("the twilio = { ... }; group is missing"));
  if (auto ok = backend_check(r, root, c); !ok) return ok;
  for (PhoneSource source : c.phone.sources) {
    if (source == PhoneSource::Ldap && !c.phone.has_ldap)
      return std::unexpected(r.file_error(
          "phone_sources lists \"ldap\" but the ldap = { ... }; group is "
          "missing"));
    if (source == PhoneSource::Command && c.phone.command.path.empty())
      return std::unexpected(r.file_error(
          "phone_sources lists \"command\" but lookup_command is not set"));
  }
  return {};
}

using Phone = PhoneSettings;
using Command = CommandSettings;
using Policy = PolicySettings;

constexpr Row<Config> kRootRows[] = {
    {"twilio", in<&Config::twilio, group<kTwilio>>},
    {"backend", in<&Config::twilio, choice<&TwilioSettings::backend, kBackends>>},
    {"messaging",
     in<&Config::twilio, in<&TwilioSettings::messaging, group<kMessaging>>>},
    {"rate_limits", in<&Config::twilio, in<&TwilioSettings::rate_limits, group<kRateLimits>>>},
    {"channel", in<&Config::policy, choice<&Policy::channel, kChannels>>},
    {"locale", in<&Config::policy, text<&Policy::locale, language_tag>>},
    {"failmode", in<&Config::policy, choice<&Policy::failmode, kFailModes>>},
    {"no_phone", in<&Config::policy, choice<&Policy::no_phone, kNoPhone>>},
    {"max_attempts", in<&Config::policy, integer<&Policy::max_attempts, 1, 5>>},
    {"services", in<&Config::policy, services>},
    {"exempt_groups",
     in<&Config::policy, string_list<kGroupList, &Policy::exempt_groups>>},
    {"exempt_networks",
     in<&Config::policy, string_list<kNetworkList, &Policy::exempt_networks>>},
    {"grace_period_s", in<&Config::policy, integer<&Policy::grace_period_s, 0, 86400>>},
    {"phone_sources", in<&Config::phone, sources>},
    {"gecos_field", in<&Config::phone, integer<&Phone::gecos_field, 1, 5>>},
    {"users", in<&Config::phone, users>},
    {"ldap", in<&Config::phone, ldap>},
    {"lookup_command",
     in<&Config::phone, in<&Phone::command, text<&Command::path, command_path>>>},
    {"lookup_command_user",
     in<&Config::phone, in<&Phone::command, text<&Command::user, command_user>>>},
    {"lookup_timeout_ms",
     in<&Config::phone, in<&Phone::command, integer<&Command::timeout_ms, 100, 60000>>>},
    {"send_limit", in<&Config::state, group<kSendLimit>>},
    {"state_dir", in<&Config::state, text<&StateSettings::state_dir, state_directory>>},
};
constexpr Group<Config> kRoot{kRootRows, "", {}, root_check};

}  // namespace

ConfigResult read_settings(const Reader& r, const config_setting_t* root,
                           Config& config) {
  return read_group(r, root, kRoot, config);
}

}  // namespace ptv
