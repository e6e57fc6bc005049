// The whole login: the module's side (ptv::authenticate_client: the
// account, the local phone sources, the decision to start the helper, what
// it takes from the helper's answer) against the helper's real session in a
// thread of its own (ptv::serve_login: the verification flow), over a real
// socket pair, with a scripted fake conversation, a scripted fake transport,
// fuzzed directory and command answers and a capturing logger, all driven
// by the fuzzer's input.
//
// Input layout (FuzzedDataProvider: the one-byte choices are read from the
// end of the input backwards, free text from its front; an exhausted input
// reads as zeros, which always means the plain success path):
//   3 bytes   failmode, no_phone, channel, phone sources, max_attempts,
//             user, GECOS answer, credentials, debug, transport setup
//   1 byte    the caller: set-id or not; how the typed name resolves (the
//             same account, an account spelled otherwise, no account, a
//             failing lookup); the access policy (none, exempt_groups,
//             exempt_networks, grace_period_s) and its case: membership and
//             a group that does not resolve, or the PAM_RHOST

//   then, in the order the flow asks for them: per conversation call a
//   reply choice (a code, a wrong code, the password, fuzzed text, an
//   error), per HTTP request an answer choice (a transport error, or one of
//   the realistic Twilio answers below) and a mutation of it.
// The seeds in corpus/fuzz_authenticate follow this layout.
#include <fuzzer/FuzzedDataProvider.h>
#include <security/pam_modules.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "core/verification_flow.hpp"
#include "core/client_flow.hpp"
#include "fakes.hpp"
#include "core/code_input.hpp"
#include "config/config.hpp"
#include "fuzz_common.hpp"
#include "util/log.hpp"
#include "phone/phone.hpp"
#include "twilio/verify_response.hpp"

namespace {

using ptv::HttpResponse;
using ptv::TransportError;
using ptv::TransportErrorKind;

constexpr std::string_view kAccount = "AC0123456789abcdef0123456789abcdef";
constexpr std::string_view kService = "VA0123456789abcdef0123456789abcdef";
constexpr std::string_view kApiKeySid = "SKfedcba9876543210fedcba9876543210";
constexpr std::string_view kToken = "authTOKENvalue_7c1e5a9b3d";
constexpr std::string_view kApiSecret = "apiSECRETvalue_4f2d8c6a1e";
constexpr std::string_view kBase = "https://verify.example.test";
constexpr std::string_view kSid = "VE00112233445566778899aabbccddeeff";
constexpr std::string_view kGoodCode = "918273";
constexpr std::string_view kWrongCode = "564738";
// Digits, so that it is a well-formed code: it must still never be sent.
constexpr std::string_view kPassword = "20240607";
constexpr std::string_view kTransportDetail = "fake transport failure";

const char* const kUsers[] = {"alice", "bob", "carol", "dave", "eve"};
const char* const kChannels[] = {"sms", "call", "whatsapp"};
const char* const kSources[] = {"\"users\"", "\"gecos\"", "\"users\", \"gecos\"",
                                "\"gecos\", \"users\"", "\"ldap\", \"users\"",
                                "\"command\", \"gecos\""};
// What the directory or the lookup command may hold, raw.
const char* const kSourceValues[] = {"+1 555 010 0001", "not a number",
                                     "+44 7700 900003", "555-0104", ""};
// Numbers in the configuration, as the file writes them and normalised.
const char* const kFileNumbers[][2] = {
    {"alice", "+1 (555) 123-4567"},
    {"bob", "+44 20 7946 0958"},
    {"dave", "+4915112345678"},
};
const char* const kGecos[] = {
    "Alice Example,Room 1,+1 555 123 4567,",
    "Carol Example,,+33 6 12 34 56 78",
    "Bob Example,,not a number",
    "Dave Example,,,",
    "Eve Example,Room 2,+7",
};

// The access policy under test (bits 4-5 of the caller byte), its variant
// (bits 6-7), and the PAM_RHOST the variants give.
enum class Policy { None, Groups, Networks, Grace };
const char* const kRemoteHosts[] = {"10.1.2.3", "::ffff:10.1.2.3", "192.0.2.7",
                                    "host.example.org"};
constexpr std::string_view kGraceAddress = "10.1.2.3";  // the entry held

std::string policy_text(Policy policy, int variant) {
  switch (policy) {
    case Policy::None:
      return "";
    case Policy::Groups:  // bit 1 of the variant: a typo listed first
      return variant & 2 ? "exempt_groups = [ \"typo\", \"deploy\" ];\n"
                         : "exempt_groups = [ \"deploy\" ];\n";
    case Policy::Networks:
      return "exempt_networks = [ \"10.0.0.0/8\", \"2001:db8::/32\" ];\n";
    case Policy::Grace:
      return "grace_period_s = 600;\n";
  }
  return "";
}

std::string config_text(bool safe, bool skip, int channel, int sources,
                        int max_attempts, bool api_key, const std::string& policy) {
  std::string t = "twilio = {\n  account_sid = \"" + std::string(kAccount) +
                  "\";\n";
  if (api_key) {
    t += "  api_key_sid = \"" + std::string(kApiKeySid) + "\";\n";
    t += "  api_key_secret = \"" + std::string(kApiSecret) + "\";\n";
  } else {
    t += "  auth_token = \"" + std::string(kToken) + "\";\n";
  }
  t += "  service_sid = \"" + std::string(kService) + "\";\n";
  t += "  api_url = \"" + std::string(kBase) + "/\";\n";
  t += "  connect_timeout_ms = 1000;\n  timeout_ms = 5000;\n};\n";
  t += "channel = \"" + std::string(kChannels[channel]) + "\";\n";
  t += std::string("failmode = \"") + (safe ? "safe" : "secure") + "\";\n";
  t += std::string("no_phone = \"") + (skip ? "skip" : "deny") + "\";\n";
  t += "max_attempts = " + std::to_string(max_attempts) + ";\n";
  t += "phone_sources = [ " + std::string(kSources[sources]) + " ];\n";
  // The settings of the external sources (their answers are fuzzed).
  t += "ldap = {\n  uri = \"ldaps://directory.example.com\";\n"
       "  base = \"ou=people,dc=example,dc=com\";\n};\n";
  t += "lookup_command = \"/usr/local/sbin/phone-for-user\";\n";
  t += "gecos_field = 3;\nusers = (\n";
  for (std::size_t i = 0; i < std::size(kFileNumbers); ++i) {
    t += std::string("  (\"") + kFileNumbers[i][0] + "\", \"" +
         kFileNumbers[i][1] + "\")";
    t += i + 1 < std::size(kFileNumbers) ? ",\n" : "\n";
  }
  t += ");\n";
  return t + policy;
}

// Parsed once per combination: the text is constant and must be valid.
const ptv::Config& config_for(bool safe, bool skip, int channel, int sources,
                              int max_attempts, bool api_key,
                              const std::string& policy) {
  using Key = std::tuple<bool, bool, int, int, int, bool, std::string>;
  static std::map<Key, std::unique_ptr<ptv::Config>> cache;
  const Key key{safe, skip, channel, sources, max_attempts, api_key, policy};
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  auto parsed = ptv::parse_config_text(
      config_text(safe, skip, channel, sources, max_attempts, api_key, policy),
      "fuzz.conf");
  if (!parsed) {
    std::fprintf(stderr, "constant configuration rejected: %s\n",
                 parsed.error().message.c_str());
    __builtin_trap();
  }
  auto owned = std::make_unique<ptv::Config>(std::move(*parsed));
  return *cache.emplace(key, std::move(owned)).first->second;
}

// ------------------------------------------------------------ Twilio answers

std::string error_body(long status, int code, const char* message) {
  return "{\"code\":" + std::to_string(code) + ",\"message\":\"" + message +
         "\",\"more_info\":\"https://www.twilio.com/docs/errors/" +
         std::to_string(code) + "\",\"status\":" + std::to_string(status) +
         "}";
}

std::string verification_body(std::string_view status, const char* valid) {
  return "{\"sid\":\"" + std::string(kSid) + "\",\"service_sid\":\"" +
         std::string(kService) + "\",\"account_sid\":\"" +
         std::string(kAccount) +
         "\",\"to\":\"+15551234567\",\"channel\":\"sms\",\"status\":\"" +
         std::string(status) + "\",\"valid\":" + valid +
         ",\"amount\":null,\"payee\":null,\"date_created\":"
         "\"2024-06-07T10:00:00Z\",\"date_updated\":\"2024-06-07T10:00:05Z\"}";
}

enum class Kind { Start, Check, Cancel };

HttpResponse json(long status, std::string body) {
  return HttpResponse{status, "application/json; charset=utf-8",
                      std::move(body), -1};
}

constexpr long kStatuses[] = {200, 201, 204, 301, 302, 400, 401, 403,
                              404, 429, 500, 502, 503, 0,   99,  600};
const char* const kContentTypes[] = {"application/json",
                                     "application/json; charset=utf-8",
                                     "text/html", ""};

HttpResponse twilio_answer(Kind kind, unsigned pick) {
  switch (pick) {
    case 0:  // the plain success answer for this request
      if (kind == Kind::Start)
        return json(201, verification_body("pending", "false"));
      if (kind == Kind::Check)
        return json(200, verification_body("approved", "true"));
      return json(200, verification_body("canceled", "false"));
    case 1: return json(201, verification_body("pending", "false"));
    case 2: return json(200, verification_body("approved", "true"));
    case 3: return json(200, verification_body("pending", "false"));
    case 4: return json(200, verification_body("approved", "false"));
    case 5: return json(200, verification_body("canceled", "false"));
    case 6: return json(200, verification_body("expired", "false"));
    case 7: return json(200, verification_body("max_attempts_reached", "false"));
    case 8: return json(401, error_body(401, 20003, "Authenticate"));
    case 9: return json(404, error_body(404, 20404, "The requested resource was not found"));
    case 10: return json(400, error_body(400, 60200, "Invalid parameter"));
    case 11: return json(429, error_body(429, 60202, "Max check attempts reached"));
    case 12: return json(429, error_body(429, 60203, "Max send attempts reached"));
    case 13: return json(403, error_body(403, 60205, "SMS is not supported by landline phone number"));
    case 14: return json(403, error_body(403, 60410, "Verification delivery attempt blocked"));
    case 15: return json(403, error_body(403, 60605, "Verification delivery attempt blocked (geo permissions)"));
    case 16: return json(429, error_body(429, 20429, "Too Many Requests"));
    case 17: return json(500, error_body(500, 20500, "Internal Server Error"));
    case 18: return HttpResponse{503, "text/html", "<html><body>Service Unavailable</body></html>", -1};
    case 19: return HttpResponse{502, "", "", -1};
    case 20: return HttpResponse{200, "text/html", "<html>approved</html>", -1};
    case 21: return json(200, "{\"status\":\"approved\"");
    case 22: return HttpResponse{204, "", "", -1};
    case 23: return HttpResponse{302, "text/html", "Moved", -1};
    case 24: return json(200, "[{\"status\":\"approved\",\"valid\":true}]");
    case 25: return json(200, "{\"status\":\"approved\",\"valid\":true} x");
    case 26: return json(200, "{\"status\":\"APPROVED\",\"valid\":true}");
    case 27: return json(200, "{\"sid\":\"VE0011\",\"status\":\"pending\"}");
    case 28: {
      HttpResponse r = json(429, error_body(429, 20429, "Too Many Requests"));
      r.retry_after_s = 1;
      return r;
    }
    case 29: {  // a rate limit of the service, Retry-After or not
      HttpResponse r = json(429, error_body(429, 20429, "Too Many Requests"));
      r.reached_rate_limit = true;
      r.rate_limit_name = "pam_account";
      r.retry_after_s = kind == Kind::Start ? 1 : -1;
      return r;
    }
    default: return json(200, "{}");
  }
}
constexpr unsigned kNumAnswers = 31;

using Reply = std::variant<TransportError, HttpResponse>;

struct Request {
  Kind kind;
  std::string url;
  std::string body;
  Reply reply;
};

// Everything the fakes saw, for the invariants.
struct Record {
  std::vector<Request> requests;
  std::vector<std::string> replies;  // what the conversation typed
  std::vector<std::string> prompts;
  std::vector<std::string> shown;
  std::vector<std::string> log_lines;
  std::vector<std::string> gecos_answers;
  int asks = 0;
  int factory_calls = 0;
  // The external source (ldap or command) that was asked, and its answer.
  int source_calls = 0;
  ptv_fakes::Answer::Kind source_kind = ptv_fakes::Answer::Kind::NotFound;
  std::vector<std::string> source_values;
  // The caller and the account behind the typed name.
  bool set_id = false;
  int account_lookups = 0;
  bool account_unknown = false;
  bool account_fails = false;
  std::string account;  // the canonical name, when resolved
  int helper_starts = 0;
  // The access policy: which one, its variant, and what the fakes saw.
  Policy policy = Policy::None;
  int variant = 0;
  std::string remote_host;
  int grace_records = 0;
};

class FuzzTransport final : public ptv::HttpTransport {
 public:
  FuzzTransport(FuzzedDataProvider& in, Record& rec) : in_(in), rec_(rec) {}

  std::expected<HttpResponse, TransportError> post_form(
      const std::string& url, const ptv::Secret& body,
      std::chrono::milliseconds /*budget*/) override {
    const std::string service =
        std::string(kBase) + "/v2/Services/" + std::string(kService);
    Kind kind;
    if (url == service + "/Verifications") {
      kind = Kind::Start;
    } else if (url == service + "/VerificationCheck") {
      kind = Kind::Check;
    } else if (url.starts_with(service + "/Verifications/")) {
      kind = Kind::Cancel;
    } else {
      ptv_fuzz::fail("request to an unexpected URL", __FILE__, __LINE__);
    }
    Reply reply = answer(kind);
    rec_.requests.push_back({kind, url, std::string(body.view()), reply});
    if (auto* e = std::get_if<TransportError>(&reply))
      return std::unexpected(*e);
    return std::get<HttpResponse>(reply);
  }

 private:
  Reply answer(Kind kind) {
    const auto pick = in_.ConsumeIntegral<uint8_t>();
    if (pick >= 250) {
      constexpr TransportErrorKind kinds[] = {
          TransportErrorKind::Unreachable, TransportErrorKind::Timeout,
          TransportErrorKind::Tls,         TransportErrorKind::Protocol,
          TransportErrorKind::TooLarge,    TransportErrorKind::LocalResource};
      return TransportError{kinds[pick - 250], std::string(kTransportDetail)};
    }
    HttpResponse r = twilio_answer(kind, pick % kNumAnswers);
    const auto mutation = in_.ConsumeIntegral<uint8_t>();
    switch (mutation % 16) {
      case 8:  // a body of the fuzzer's own
        r.body = in_.ConsumeRandomLengthString(512);
        break;
      case 9:  // truncated
        r.body.resize(in_.ConsumeIntegralInRange<std::size_t>(0, r.body.size()));
        break;
      case 10: {  // one byte replaced
        if (r.body.empty()) break;
        const auto at = in_.ConsumeIntegralInRange<std::size_t>(0, r.body.size() - 1);
        r.body[at] = static_cast<char>(in_.ConsumeIntegral<uint8_t>());
        break;
      }
      case 11: {  // fuzzed text inserted
        const auto at = in_.ConsumeIntegralInRange<std::size_t>(0, r.body.size());
        r.body.insert(at, in_.ConsumeRandomLengthString(64));
        break;
      }
      case 12:  // another status
        r.status = kStatuses[in_.ConsumeIntegral<uint8_t>() % std::size(kStatuses)];
        break;
      case 13:  // another content type
        r.content_type =
            kContentTypes[in_.ConsumeIntegral<uint8_t>() % std::size(kContentTypes)];
        break;
      case 14:  // a raw status
        r.status = in_.ConsumeIntegralInRange<long>(-1, 1000);
        break;
      default:  // as Twilio sends it
        break;
    }
    return r;
  }

  FuzzedDataProvider& in_;
  Record& rec_;
};

class FuzzConversation final : public ptv::Conversation {
 public:
  FuzzConversation(FuzzedDataProvider& in, Record& rec) : in_(in), rec_(rec) {}

  std::expected<ptv::Secret, ptv::ConversationError> ask_hidden(
      std::string_view prompt) override {
    rec_.prompts.emplace_back(prompt);
    ++rec_.asks;
    std::string reply;
    const auto pick = in_.ConsumeIntegral<uint8_t>();
    switch (pick % 16) {
      case 0: case 1: case 2: reply = kGoodCode; break;
      case 3: case 4: reply = kWrongCode; break;
      case 5: reply = " " + std::string(kGoodCode) + "\r\n"; break;
      case 6: reply = kPassword; break;
      case 7: reply = "\t" + std::string(kPassword) + " "; break;
      case 8: reply = "123"; break;
      case 9: reply = "12345678901"; break;
      case 10: reply = ""; break;
      case 11: case 12: reply = in_.ConsumeRandomLengthString(24); break;
      case 13: return std::unexpected(ptv::ConversationError::Failed);
      case 14: return std::unexpected(ptv::ConversationError::NoReply);
      default: return std::unexpected(ptv::ConversationError::NoConversation);
    }
    rec_.replies.push_back(reply);
    return ptv::Secret(reply);
  }
  void show_error(std::string_view message) override {
    rec_.shown.emplace_back(message);
  }
  bool is_password(std::string_view reply) override {
    return reply == kPassword;
  }

 private:
  FuzzedDataProvider& in_;
  Record& rec_;
};

class CapturingLogger final : public ptv::Logger {
 public:
  explicit CapturingLogger(Record& rec) : rec_(rec) {}
  void log(int /*priority*/, std::string_view message) override {
    rec_.log_lines.emplace_back(message);
  }

 private:
  Record& rec_;
};

// ------------------------------------------------------------- invariants

std::string_view trim(std::string_view s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// A 429 (other than 60202 and 60203, which mean something about the
// verification): never an outage.
bool is_429_refusal(const HttpResponse& r) {
  if (r.status != 429) return false;
  const auto started = ptv::interpret_start(r);
  const int code = started ? 0 : started.error().twilio_code;
  return code != 60202 && code != 60203;
}

bool transport_unavailable(TransportErrorKind k) {
  return k == TransportErrorKind::Unreachable ||
         k == TransportErrorKind::Timeout || k == TransportErrorKind::Protocol;
}

// Removes every occurrence of `what` from `s`.
void scrub(std::string& s, std::string_view what) {
  if (what.empty()) return;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p))
    s.replace(p, what.size(), "#");
}

// "name=value&..." -> value of name, undecoded.
std::optional<std::string> form_value(std::string_view body,
                                      std::string_view name) {
  std::size_t pos = 0;
  while (pos <= body.size()) {
    std::size_t end = body.find('&', pos);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view field = body.substr(pos, end - pos);
    if (field.size() > name.size() && field.starts_with(name) &&
        field[name.size()] == '=')
      return std::string(field.substr(name.size() + 1));
    pos = end + 1;
  }
  return std::nullopt;
}

using ptv::Outcome;

bool allowed_by_policy(Outcome o) {
  return o == Outcome::ExemptGroup || o == Outcome::ExemptNetwork ||
         o == Outcome::Grace;
}

// The policy's outcomes come exactly from their cause, before any lookup,
// helper or request; grace is recorded only after an approval from an IP
// literal.
void check_policy(const Record& rec, const ptv::AuthResult& r) {
  const bool resolved =
      !rec.account_unknown && !rec.account_fails && !rec.account.empty();
  const bool inside = rec.remote_host == "10.1.2.3" ||
                      rec.remote_host == "::ffff:10.1.2.3";
  const bool member = rec.policy == Policy::Groups && (rec.variant & 1);
  FUZZ_CHECK((r.outcome == Outcome::ExemptGroup) == (resolved && member));
  FUZZ_CHECK((r.outcome == Outcome::ExemptNetwork) ==
             (resolved && rec.policy == Policy::Networks && inside));
  FUZZ_CHECK((r.outcome == Outcome::Grace) ==
             (resolved && rec.policy == Policy::Grace && inside));
  if (allowed_by_policy(r.outcome))
    FUZZ_CHECK(rec.requests.empty() && rec.helper_starts == 0 &&
               rec.source_calls == 0 && rec.asks == 0);
  const bool recordable = rec.policy == Policy::Grace &&
                          rec.remote_host == "192.0.2.7";
  FUZZ_CHECK(rec.grace_records ==
             (recordable && r.outcome == Outcome::Approved ? 1 : 0));
}

void check_invariants(const ptv::Config& cfg, const std::string& user,
                      const Record& rec, const ptv::AuthResult& r,
                      bool factory_fails) {
  using ptv::Outcome;
  const auto& reqs = rec.requests;

  // The external sources: asked at most once; a failure stops everything
  // before the transport is set up.
  using SK = ptv_fakes::Answer::Kind;
  // The helper is started at most once, and only when a code is to be
  // sent or a directory or command must be asked: never for a name that is
  // no account, nor for what the file's list and GECOS decide alone.
  FUZZ_CHECK(rec.helper_starts <= 1);
  if (rec.helper_starts == 0)
    FUZZ_CHECK(reqs.empty() && rec.factory_calls == 0 && rec.source_calls == 0);
  if (rec.source_calls == 0 &&
      (r.outcome == Outcome::NoPhoneSkipped || r.outcome == Outcome::NoPhoneDenied ||
       r.outcome == Outcome::InvalidPhone || r.outcome == Outcome::UnknownUser))
    FUZZ_CHECK(rec.helper_starts == 0);

  // The typed name is resolved once, before anything else; a name that is
  // no account (or a failing lookup) stops there.
  FUZZ_CHECK(rec.account_lookups == 1);
  if (rec.account_unknown || rec.account_fails) {
    FUZZ_CHECK(r.outcome == (rec.account_unknown ? Outcome::UnknownUser
                                                 : Outcome::InternalError));
    FUZZ_CHECK(rec.source_calls == 0 && rec.factory_calls == 0 && reqs.empty() &&
               rec.gecos_answers.empty());
  }
  if (r.outcome == Outcome::UnknownUser) FUZZ_CHECK(rec.account_unknown);
  FUZZ_CHECK(rec.source_calls <= 1);
  if (rec.source_calls == 1 && rec.source_kind != SK::Values &&
      rec.source_kind != SK::NotFound) {
    FUZZ_CHECK(rec.factory_calls == 0 && rec.asks == 0);
    if (rec.source_kind == SK::Failed) FUZZ_CHECK(r.outcome == Outcome::LookupFailed);
    if (rec.source_kind == SK::Misconfigured) FUZZ_CHECK(r.outcome == Outcome::ConfigError);
    if (rec.source_kind == SK::Internal) FUZZ_CHECK(r.outcome == Outcome::InternalError);
    if (rec.source_kind == SK::Unavailable)
      FUZZ_CHECK(r.outcome == (cfg.policy.failmode == ptv::FailMode::Safe && !rec.set_id
                                   ? Outcome::FailOpen
                                   : Outcome::Unavailable));
  }
  if (r.outcome == Outcome::LookupFailed)
    FUZZ_CHECK(rec.source_calls == 1 && rec.source_kind == SK::Failed);
  // A number from the source is its first valid value, normalised.
  if (rec.source_calls == 1 && rec.source_kind == SK::Values && !reqs.empty()) {
    std::string first;
    for (const auto& v : rec.source_values)
      if (first.empty() && ptv::is_e164(ptv::normalise_phone(v)))
        first = ptv::normalise_phone(v);
    FUZZ_CHECK(!first.empty());
    FUZZ_CHECK(form_value(reqs.front().body, "To") == "%2B" + first.substr(1));
  }

  // Only an approval, failmode = safe, or the policy the administrator
  // wrote (by name: an exempt group, an exempt network, grace) lets anyone
  // in.
  const int pam = ptv::pam_result_for(r.outcome);
  FUZZ_CHECK((pam == PAM_SUCCESS) ==
             (r.outcome == Outcome::Approved || r.outcome == Outcome::FailOpen ||
              allowed_by_policy(r.outcome)));
  check_policy(rec, r);

  // Approved only right after a check that Twilio approved.
  if (r.outcome == Outcome::Approved) {
    FUZZ_CHECK(!reqs.empty() && reqs.back().kind == Kind::Check);
    const auto* resp = std::get_if<HttpResponse>(&reqs.back().reply);
    FUZZ_CHECK(resp != nullptr);
    FUZZ_CHECK(ptv_fuzz::reference_may_approve(resp->status,
                                               resp->content_type, resp->body));
    FUZZ_CHECK(ptv_fuzz::reference_valid_not_false(resp->body));
    const auto c = ptv::interpret_check(*resp);
    FUZZ_CHECK(c.has_value() && *c == ptv::CheckStatus::Approved);
  }

  // FailOpen only with failmode = safe, outside set-id callers, right after
  // evidence that Twilio (or a source) was unavailable.
  if (r.outcome == Outcome::FailOpen) FUZZ_CHECK(!rec.set_id);
  if (r.outcome == Outcome::FailOpen && reqs.empty()) {
    // Before any request: only a phone source that was unavailable.
    FUZZ_CHECK(cfg.policy.failmode == ptv::FailMode::Safe);
    FUZZ_CHECK(rec.source_calls == 1 &&
               rec.source_kind == SK::Unavailable);
  } else if (r.outcome == Outcome::FailOpen) {
    FUZZ_CHECK(cfg.policy.failmode == ptv::FailMode::Safe);
    FUZZ_CHECK(!reqs.empty() && reqs.back().kind != Kind::Cancel);
    if (const auto* e = std::get_if<TransportError>(&reqs.back().reply)) {
      FUZZ_CHECK(transport_unavailable(e->kind));
    } else {
      const long s = std::get<HttpResponse>(reqs.back().reply).status;
      FUZZ_CHECK(s >= 500 && s <= 599);  // a 429 never opens
    }
  }
  // Denied as unavailable under failmode safe: a set-id caller, or a 429.
  if (r.outcome == Outcome::Unavailable && cfg.policy.failmode == ptv::FailMode::Safe) {
    const HttpResponse* last =
        reqs.empty() ? nullptr : std::get_if<HttpResponse>(&reqs.back().reply);
    FUZZ_CHECK(rec.set_id || (last != nullptr && is_429_refusal(*last)));
  }
  // A local failure (out of descriptors...) never opens and is not an
  // outage: denied-internal-error.
  if (!reqs.empty())
    if (const auto* e = std::get_if<TransportError>(&reqs.back().reply);
        e != nullptr && e->kind == TransportErrorKind::LocalResource &&
        reqs.back().kind != Kind::Cancel)
      FUZZ_CHECK(r.outcome == Outcome::InternalError);
  // A rate limit of the service denies, named, and only after its 429.
  if (r.outcome == Outcome::RateLimited) {
    const HttpResponse* last =
        reqs.empty() ? nullptr : std::get_if<HttpResponse>(&reqs.back().reply);
    FUZZ_CHECK(last != nullptr && last->status == 429 && last->reached_rate_limit);
    FUZZ_CHECK(r.detail.find("pam_account") != std::string::npos);
  }

  // The transport is set up only once a number is known, and used only then.
  FUZZ_CHECK(rec.factory_calls <= 1);
  if (rec.factory_calls == 0) FUZZ_CHECK(reqs.empty() && rec.asks == 0);
  if (factory_fails) FUZZ_CHECK(reqs.empty());
  if (r.outcome == Outcome::NoPhoneSkipped || r.outcome == Outcome::NoPhoneDenied ||
      r.outcome == Outcome::InvalidPhone)
    FUZZ_CHECK(rec.factory_calls == 0);

  // A request is retried at most once, and only when nothing reached Twilio
  // (the connection failed) or Twilio throttled it with a Retry-After; the
  // retry repeats it exactly. Retries are folded away below.
  std::vector<Request> logical;
  bool previous_was_retried = false;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    const Request& q = reqs[i];
    const bool repeated_next = i + 1 < reqs.size() &&
                               reqs[i + 1].kind == q.kind &&
                               reqs[i + 1].url == q.url &&
                               reqs[i + 1].body == q.body;
    // Two checks of the same code in a row can also be two attempts at
    // which the user typed the same code: only a retry-eligible answer
    // in between makes it a retry.
    bool eligible = false;
    if (const auto* e = std::get_if<TransportError>(&q.reply))
      eligible = e->kind == TransportErrorKind::Unreachable;
    if (const auto* h = std::get_if<HttpResponse>(&q.reply))
      eligible = h->status == 429 && h->retry_after_s >= 0 &&
                 !h->reached_rate_limit;
    if (repeated_next && eligible && !previous_was_retried) {
      previous_was_retried = true;
      continue;  // the retry that follows stands for both
    }
    FUZZ_CHECK(!(repeated_next && eligible && previous_was_retried &&
                 q.kind != Kind::Check));  // never a second retry
    previous_was_retried = false;
    logical.push_back(q);
  }

  // Shape of the exchange: one start first, checks, at most one cancel last.
  int starts = 0, checks = 0, cancels = 0;
  std::string started_sid;
  for (std::size_t i = 0; i < logical.size(); ++i) {
    const Request& q = logical[i];
    switch (q.kind) {
      case Kind::Start: {
        ++starts;
        FUZZ_CHECK(i == 0);
        const auto to = form_value(q.body, "To");
        FUZZ_CHECK(to && to->starts_with("%2B") &&
                   ptv_fuzz::all_digits(std::string_view(*to).substr(3)));
        FUZZ_CHECK(ptv::is_e164("+" + to->substr(3)));
        FUZZ_CHECK(form_value(q.body, "Channel") == cfg.policy.channel);
        if (const auto* resp = std::get_if<HttpResponse>(&q.reply))
          started_sid = ptv::interpret_start(*resp).value_or("");
        break;
      }
      case Kind::Check: {
        ++checks;
        FUZZ_CHECK(i > 0);
        FUZZ_CHECK(!started_sid.empty());
        FUZZ_CHECK(form_value(q.body, "VerificationSid") == started_sid);
        const auto code = form_value(q.body, "Code");
        FUZZ_CHECK(code.has_value());
        FUZZ_CHECK(code->size() >= ptv::kMinCodeLength &&
                   code->size() <= ptv::kMaxCodeLength);
        FUZZ_CHECK(ptv_fuzz::all_digits(*code));
        FUZZ_CHECK(*code != kPassword);
        bool typed = false;  // the code is one the user typed
        for (const auto& reply : rec.replies) typed |= trim(reply) == *code;
        FUZZ_CHECK(typed);
        break;
      }
      case Kind::Cancel:
        ++cancels;
        FUZZ_CHECK(i == logical.size() - 1 && i > 0);
        FUZZ_CHECK(q.url.ends_with("/Verifications/" + started_sid));
        FUZZ_CHECK(q.body == "Status=canceled");
        break;
    }
  }
  FUZZ_CHECK(starts <= 1 && cancels <= 1);
  FUZZ_CHECK(checks <= cfg.policy.max_attempts);
  FUZZ_CHECK(rec.asks <= cfg.policy.max_attempts);
  FUZZ_CHECK(checks <= rec.asks);
  FUZZ_CHECK(r.attempts >= 0 && r.attempts <= cfg.policy.max_attempts);
  if (r.outcome == Outcome::WrongCode) FUZZ_CHECK(r.attempts == cfg.policy.max_attempts);

  // Nothing secret reaches the log, a prompt or a message: not the
  // credentials, not a full phone number, not a code the user typed.
  std::vector<std::string> secrets = {std::string(kToken),
                                      std::string(kApiSecret),
                                      std::string(kPassword)};
  std::vector<std::string> numbers;
  for (const auto& [u, n] : cfg.phone.users) numbers.push_back(n);
  for (const auto& g : rec.gecos_answers) {
    const std::string n =
        ptv::normalise_phone(ptv::gecos_field(g, cfg.phone.gecos_field));
    if (ptv::is_e164(n)) numbers.push_back(n);
  }
  for (const auto& v : rec.source_values) {  // from the ldap or command source
    const std::string n = ptv::normalise_phone(v);
    if (ptv::is_e164(n)) numbers.push_back(n);
  }
  for (const auto& n : numbers) {
    secrets.push_back(n);
    secrets.push_back(n.substr(1));
  }
  for (const auto& reply : rec.replies) {
    const std::string_view t = trim(reply);
    if (t.size() >= 4 && ptv_fuzz::all_digits(t)) secrets.emplace_back(t);
  }
  // What may be shown, even when a secret happens to be a part of it.
  std::vector<std::string> shown_ok = {
      started_sid,           std::string(kSid),       std::string(kAccount),
      std::string(kService), std::string(kApiKeySid), ptv::log_token(user),
      ptv::log_token(rec.account), "pam_account"};
  for (const auto& n : numbers) shown_ok.push_back(ptv::mask_phone(n));
  for (const char* c : {"20003", "20404", "60200", "60202", "60203", "60205",
                        "60410", "60605"})
    shown_ok.emplace_back(c);
  for (const auto& q : reqs) {
    if (const auto* resp = std::get_if<HttpResponse>(&q.reply)) {
      const auto checked = ptv::interpret_check(*resp);
      const auto started = ptv::interpret_start(*resp);
      shown_ok.push_back(std::to_string(checked ? 0 : checked.error().twilio_code));
      shown_ok.push_back(std::to_string(started ? 0 : started.error().twilio_code));
    }
  }
  auto check_clean = [&](std::string text) {
    for (const auto& ok : shown_ok)
      if (ok.size() >= 4) scrub(text, ok);
    for (const auto& s : secrets) {
      if (text.find(s) != std::string::npos) {
        std::fprintf(stderr, "\nsecret \"%s\" in \"%s\"\n", s.c_str(),
                     text.c_str());
        ptv_fuzz::fail("a secret reached a log line, prompt or message",
                       __FILE__, __LINE__);
      }
    }
  };
  // Log lines and prompts are plain printable ASCII: nothing the user or
  // Twilio sent can inject control characters into them.
  auto printable = [](std::string_view text) {
    for (char c : text)
      if (static_cast<unsigned char>(c) < 0x20 ||
          static_cast<unsigned char>(c) > 0x7e)
        return false;
    return true;
  };
  for (const auto& l : rec.log_lines) FUZZ_CHECK(printable(l));
  for (const auto& p : rec.prompts) FUZZ_CHECK(printable(p));
  // Typed replies are checked when they look like codes (4 or more
  // digits); other text could occur in the module's fixed wording.
  for (const auto& l : rec.log_lines) check_clean(l);
  for (const auto& p : rec.prompts) check_clean(p);
  for (const auto& m : rec.shown) check_clean(m);
  check_clean(r.detail);

  FUZZ_CHECK(r.masked_phone == "-" || r.masked_phone.find('*') != std::string::npos);
  FUZZ_CHECK(r.verification_sid == "-" || r.verification_sid == started_sid);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const auto b0 = in.ConsumeIntegral<uint8_t>();
  const auto b1 = in.ConsumeIntegral<uint8_t>();
  const auto b2 = in.ConsumeIntegral<uint8_t>();
  const auto b3 = in.ConsumeIntegral<uint8_t>();

  const bool safe = b0 & 1;
  const bool skip = b0 & 2;
  const int channel = (b0 >> 2) % 3;
  const int sources = (b0 >> 4) % 6;
  // 0 (an exhausted input) reads as the default, 3.
  const int max_attempts = static_cast<int>((b1 + 2) % 5) + 1;
  const unsigned user_pick = (b1 >> 3) % 8;  // 5..7: a name of the fuzzer's
  const int gecos_pick = b2 % 8;  // 0..4 fixed, 5 nobody, 6..7 fuzzed
  const bool api_key = b2 & 0x08;
  const bool debug = !(b2 & 0x10);
  const bool factory_fails = (b2 >> 5) == 7;
  const bool set_id = b3 & 1;
  const int account_mode = (b3 >> 1) % 8;  // 0..4 as typed, 5 spelled
                                           // otherwise, 6 none, 7 failing
  const auto policy = static_cast<Policy>((b3 >> 4) & 3);
  const int variant = b3 >> 6;
  const std::string policy_config = policy_text(policy, variant);

  const ptv::Config& cfg = config_for(safe, skip, channel, sources,
                                      max_attempts, api_key, policy_config);

  const std::string account_name = user_pick < std::size(kUsers)
                                       ? std::string(kUsers[user_pick])
                                       : in.ConsumeRandomLengthString(16);
  // Spelled otherwise: what a case-insensitive NSS (sssd) folds back.
  std::string user = account_name;
  if (account_mode == 5)
    for (char& c : user)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');

  // The helper's end (the transport, the directory and command sources)
  // reads its own part of the input: it runs in a thread of its own while
  // the module's end reads the rest (the conversation).
  const auto helper_part = in.ConsumeBytes<std::uint8_t>(
      in.ConsumeIntegralInRange<std::size_t>(0, in.remaining_bytes()));
  FuzzedDataProvider helper_in(helper_part.data(), helper_part.size());

  Record rec;
  rec.set_id = set_id;
  rec.policy = policy;
  rec.variant = variant;
  // Groups: bit 0 of the variant makes the account a member of deploy.
  // Networks and grace: the variant picks PAM_RHOST; the grace store holds
  // an entry for the account from kGraceAddress.
  ptv_fakes::FakeGroups groups;
  groups.gids = {{"deploy", 2000}};
  groups.member_of = {1000};
  if (variant & 1) groups.member_of.push_back(2000);
  ptv_fakes::FakeGrace grace;
  if (policy == Policy::Networks || policy == Policy::Grace)
    rec.remote_host = kRemoteHosts[variant];
  FuzzConversation conv(in, rec);
  CapturingLogger log(rec);
  log.set_debug(debug);
  std::string fuzzed_gecos;
  if (gecos_pick >= 6) fuzzed_gecos = in.ConsumeRandomLengthString(64);
  // The account behind the typed name, with its GECOS field (recorded
  // when the gecos source reads it: the phone lookup asks for the account).
  class Accounts final : public ptv::AccountDirectory {
   public:
    explicit Accounts(std::function<std::expected<ptv::Account, ptv::AccountError>(
                          const std::string&)> f)
        : f_(std::move(f)) {}
    std::expected<ptv::Account, ptv::AccountError> resolve(const std::string& t) override {
      return f_(t);
    }

   private:
    std::function<std::expected<ptv::Account, ptv::AccountError>(const std::string&)> f_;
  } accounts([&](const std::string& typed)
                 -> std::expected<ptv::Account, ptv::AccountError> {
    ++rec.account_lookups;
    if (typed != user) ptv_fuzz::fail("resolved another name", __FILE__, __LINE__);
    if (account_mode == 6) {
      rec.account_unknown = true;
      return std::unexpected(
          ptv::AccountError{ptv::AccountError::Kind::Unknown, "no such account"});
    }
    if (account_mode == 7) {
      rec.account_fails = true;
      return std::unexpected(ptv::AccountError{ptv::AccountError::Kind::Failed,
                                               "cannot look up the account"});
    }
    ptv::Account a;
    a.name = account_name;
    if (gecos_pick < 5) a.gecos = kGecos[gecos_pick];
    else if (gecos_pick >= 6) a.gecos = fuzzed_gecos;
    if (gecos_pick != 5) rec.gecos_answers.push_back(a.gecos);
    rec.account = a.name;
    return a;
  });
  // The helper's world: the configuration, the transport and the ldap and
  // command sources answer what the input says (a 429's Retry-After is
  // not waited out while fuzzing).
  const auto make_world = [&]() {
    auto world = std::make_unique<ptv_fakes::FakeWorld>();
    world->config = [&](const std::string& path) {
      return ptv::parse_config_text(
          config_text(safe, skip, channel, sources, max_attempts, api_key,
                      policy_config),
          path);
    };
    world->transport = [&]()
        -> std::expected<std::unique_ptr<ptv::HttpTransport>, TransportError> {
      ++rec.factory_calls;
      if (factory_fails)
        return std::unexpected(
            TransportError{TransportErrorKind::Internal, std::string(kTransportDetail)});
      return std::make_unique<FuzzTransport>(helper_in, rec);
    };
    world->answer = [&](ptv::PhoneSource, const std::string& u) {
      if (u != account_name)
        ptv_fuzz::fail("source asked for another name than the account's",
                       __FILE__, __LINE__);
      ++rec.source_calls;
      ptv_fakes::Answer a;
      a.kind = static_cast<ptv_fakes::Answer::Kind>(helper_in.ConsumeIntegralInRange(0, 5));
      a.problem = "fuzzed source answer";
      if (a.kind == ptv_fakes::Answer::Kind::Values) {
        const int n = helper_in.ConsumeIntegralInRange(1, 3);
        for (int i = 0; i < n; ++i) {
          const auto pick =
              helper_in.ConsumeIntegralInRange<std::size_t>(0, std::size(kSourceValues));
          a.values.push_back(pick < std::size(kSourceValues)
                                 ? std::string(kSourceValues[pick])
                                 : helper_in.ConsumeRandomLengthString(24));
        }
      }
      rec.source_kind = a.kind;
      rec.source_values = a.values;
      return a;
    };
    return world;
  };
  // The module's end against the helper's real session in a thread.
  ptv_fakes::FakeStarter start;
  start.make = [&]() -> std::expected<std::unique_ptr<ptv::HelperLink>, std::string> {
    ++rec.helper_starts;
    return std::make_unique<ptv_fakes::ThreadHelper>(make_world());
  };
  const std::string path = "/fuzz/ptv.conf";
  ptv::HelperVerifier helper({start, path, ptv::helper_wait_bound(cfg.twilio, cfg.phone), conv, log,
                              nullptr});
  grace.until[account_name + " " + std::string(kGraceAddress)] = grace.now + 300;
  const ptv::ClientRequest request{{cfg.policy, cfg.phone},
                                   {log, accounts, helper, groups, grace},
                                   user, set_id, rec.remote_host};
  const ptv::AuthResult result = ptv::authenticate_client(request);
  rec.grace_records = grace.records;
  ptv::log_outcome(log, user, result, 42);

  // PTV_FUZZ_VERBOSE=1 describes each run (to check what a seed does).
  static const bool verbose = std::getenv("PTV_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::string kinds;
    for (const auto& q : rec.requests)
      kinds += q.kind == Kind::Start ? 'S' : q.kind == Kind::Check ? 'C' : 'X';
    std::fprintf(stderr, "user=%s max=%d failmode=%s requests=%s asks=%d "
                 "outcome=%s (%s)\n", user.c_str(), cfg.policy.max_attempts,
                 safe ? "safe" : "secure", kinds.c_str(), rec.asks,
                 ptv::describe(result.outcome), result.detail.c_str());
  }

  check_invariants(cfg, user, rec, result, factory_fails);
  return 0;
}
