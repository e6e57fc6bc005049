// The authentication flow over a fake conversation, a fake transport and a
// capturing logger.
#include <security/pam_modules.h>

#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "core/client_flow.hpp"
#include "core/verification_flow.hpp"
#include "phone/gecos_source.hpp"
#include "phone/users_source.hpp"
#include "state/send_limit.hpp"
#include "fakes.hpp"
#include "twilio/form_encoding.hpp"
#include "twilio/message_body.hpp"
#include "twilio/rate_limits.hpp"
#include "unit_test.hpp"

using ptv::AuthResult;
using ptv::ConversationError;
using ptv::HttpResponse;
using ptv::Outcome;
using ptv::TransportError;
using ptv::TransportErrorKind;

namespace {

using namespace ptv_fakes;

// ---------------------------------------------------------------- harness

struct Harness {
  ptv::Config config;
  FakeConversation conv;
  FakeHttp http;
  CapturingLogger log;
  std::map<std::string, std::string> gecos;
  int factory_calls = 0;
  std::string user = "alice";
  // How the typed name resolves: unknown names, names NSS folds to
  // another (as sssd does for case), a failing lookup.
  std::set<std::string> unknown_users;
  std::map<std::string, std::string> canonical;
  bool account_lookup_fails = false;
  int account_lookups = 0;
  bool set_id = false;
  std::string rhost;  // PAM_RHOST
  // Records what the flow reserves and gives back (null: no limit).
  struct CountingGate final : ptv::SendGate {
    std::vector<std::string> reserved;
    std::vector<std::string> released;
    // The decisions of the reservations in turn (then Allowed).
    std::deque<ptv::SendDecision> decisions;
    ptv::SendReservation reserve(const std::string& user) override {
      reserved.push_back(user);
      ptv::SendReservation r;
      r.decision = ptv::SendDecision::Allowed;
      if (!decisions.empty()) {
        r.decision = decisions.front();
        decisions.pop_front();
      }
      r.detail = "limit of the test";
      r.stamp = 1700000000 + static_cast<std::int64_t>(reserved.size());
      return r;
    }
    std::expected<void, ptv::StateError> release(const std::string& user,
                                                 std::int64_t) override {
      released.push_back(user);
      return {};
    }
  } gate;
  bool use_gate = false;
  // A real send limit instead (its state on disk): tests of the flow's use
  // of the limit.
  ptv::SendGate* state_gate = nullptr;
  std::unique_ptr<TransportError> factory_error;
  // The answer of the "ldap" source, when the config lists it.
  Answer directory{Answer::Kind::NotFound, {}, "no entry"};
  int directory_calls = 0;
  // The Messaging backend's clock and random bytes.
  FakeClock clock;
  ptv::RandomBytes random = nullptr;

  // backend = "messaging", from kFrom, the code kGoodCode.
  void use_messaging() {
    config.twilio.backend = ptv::Backend::Messaging;
    config.twilio.service_sid.clear();
    config.twilio.messaging.from = kFrom;
    config.twilio.messaging.api_url = kMessagingBase;
    config.twilio.messaging.body = "Code for %h: %c";
    random = good_code_random;
  }

  Harness() {
    config.twilio.account_sid = kAccount;
    config.twilio.auth_token = ptv::Secret(kToken);
    config.twilio.service_sid = kService;
    config.twilio.api_url = kBase;
    config.phone.users = {{"alice", kPhone}};
    config.phone.sources = {ptv::PhoneSource::Users, ptv::PhoneSource::Gecos};
    log.set_debug(true);
  }

  // How the typed name resolves, as the fields above say.
  class Accounts final : public ptv::AccountDirectory {
   public:
    explicit Accounts(Harness& h) : h_(h) {}
    std::expected<ptv::Account, ptv::AccountError> resolve(
        const std::string& typed) override {
      ++h_.account_lookups;
      if (h_.account_lookup_fails)
        return std::unexpected(ptv::AccountError{
            ptv::AccountError::Kind::Failed, "cannot look up the account: EIO"});
      if (h_.unknown_users.count(typed) != 0)
        return std::unexpected(ptv::AccountError{
            ptv::AccountError::Kind::Unknown, "no such account"});
      ptv::Account a;
      auto folded = h_.canonical.find(typed);
      a.name = folded == h_.canonical.end() ? typed : folded->second;
      auto it = h_.gecos.find(a.name);
      if (it != h_.gecos.end()) a.gecos = it->second;
      return a;
    }

   private:
    Harness& h_;
  };

  // The configured sources: the real users and gecos sources, the
  // directory answering `directory` (counted).
  class Sources {
   public:
    Sources(Harness& h, const std::string& gecos)
        : users_(h.config.phone.users),
          gecos_(gecos, h.config.phone.gecos_field),
          ldap_("ldap", h.directory) {
      for (ptv::PhoneSource s : h.config.phone.sources) {
        if (s == ptv::PhoneSource::Users) list.push_back(&users_);
        if (s == ptv::PhoneSource::Gecos) list.push_back(&gecos_);
        if (s == ptv::PhoneSource::Ldap) list.push_back(&ldap_);
      }
    }
    std::vector<ptv::NumberSource*> list;
    int ldap_calls() const { return ldap_.calls; }

   private:
    ptv::UsersSource users_;
    ptv::GecosSource gecos_;
    FakeSource ldap_;
  };

  // The right code typed, and Twilio approving it.
  void right_code_approved() {
    conv.script = {kGoodCode};
    http.check_replies = {approved()};
  }

  AuthResult run() {
    Accounts accounts(*this);
    // The account is resolved first; its GECOS string is the gecos source's.
    const std::string typed_gecos = [this] {
      auto folded = canonical.find(user);
      auto it = gecos.find(folded == canonical.end() ? user : folded->second);
      return it == gecos.end() ? std::string() : it->second;
    }();
    Sources sources(*this, typed_gecos);
    FakeTransports transports(http);
    if (factory_error) transports.error = std::make_unique<TransportError>(*factory_error);
    NoSleep no_sleep;
    const ptv::FlowDeps deps{conv,         log,
                             accounts,     transports,
                             sources.list,
                             state_gate != nullptr ? state_gate
                                                   : (use_gate ? &gate : nullptr),
                             &no_sleep,
                             &clock,
                             random};
    const ptv::AuthRequest request{
        {config.policy, config.twilio, config.state}, deps, user, set_id, rhost};
    AuthResult r = ptv::authenticate(request);
    factory_calls += transports.calls;
    directory_calls += sources.ldap_calls();
    // The closing line the PAM entry point writes is checked too.
    ptv::log_outcome(log, user, r, 42);
    return r;
  }
};

void expect_outcome(const AuthResult& r, Outcome want, int pam, const char* file,
                    int line) {
  if (r.outcome != want) {
    print_error("outcome \"%s\" (%s), expected \"%s\"\n",
                ptv::describe(r.outcome), r.detail.c_str(),
                ptv::describe(want));
    _fail(file, line);
  }
  if (ptv::pam_result_for(r.outcome) != pam) {
    print_error("PAM result %d, expected %d\n",
                ptv::pam_result_for(r.outcome), pam);
    _fail(file, line);
  }
}
#define EXPECT_OUTCOME(r, want, pam) \
  expect_outcome((r), (want), (pam), __FILE__, __LINE__)

// Nothing secret or identifying in any captured log line.
void expect_clean_log(const Harness& h, const char* file, int line) {
  for (const auto& l : h.log.lines) {
    for (const std::string& secret :
         {kGoodCode, kBadCode, kToken, kPhone, kPhone.substr(1),
          std::string("5551234567")}) {
      if (l.text.find(secret) != std::string::npos) {
        print_error("log line \"%s\" contains \"%s\"\n", l.text.c_str(),
                    secret.c_str());
        _fail(file, line);
      }
    }
  }
}
#define EXPECT_CLEAN_LOG(h) expect_clean_log((h), __FILE__, __LINE__)

// A login with the right code: approved, the code sent by SMS to the
// (form-encoded) number.
void expect_approved_sms_to(Harness& h, const std::string& to, const char* file,
                            int line) {
  h.right_code_approved();
  expect_outcome(h.run(), Outcome::Approved, PAM_SUCCESS, file, line);
  const std::string body = h.http.requests.empty() ? "" : h.http.requests[0].body;
  ptv_test::check_equal(body, "To=" + to + "&Channel=sms", "the start's body",
                        file, line);
}
#define EXPECT_APPROVED_SMS_TO(h, to) \
  expect_approved_sms_to((h), (to), __FILE__, __LINE__)

// A start refused twice: the first attempt and its one retry.
std::deque<Reply> refused_twice() {
  return {transport_error(TransportErrorKind::Unreachable, "connection refused"),
          transport_error(TransportErrorKind::Unreachable, "connection refused")};
}

void expect_cancel_last(const Harness& h, const char* file, int line) {
  if (h.http.requests.empty() || h.http.requests.back().kind != Kind::Cancel) {
    print_error("the last request is not a cancel\n");
    _fail(file, line);
  }
  const Request& r = h.http.requests.back();
  ptv_test::check_equal(
      r.url, kBase + "/v2/Services/" + kService + "/Verifications/" + kSid,
      "cancel url", file, line);
  ptv_test::check_equal(r.body, "Status=canceled", "cancel body", file, line);
}
#define EXPECT_CANCEL_LAST(h) expect_cancel_last((h), __FILE__, __LINE__)

// ------------------------------------------------------------------ tests

void test_right_code_first_try(void**) {
  Harness h;
  h.right_code_approved();
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.requests.size(), 2);
  assert_true(h.http.requests[0].kind == Kind::Start);
  assert_str_eq(h.http.requests[0].body, "To=%2B15551234567&Channel=sms");
  assert_true(h.http.requests[1].kind == Kind::Check);
  assert_str_eq(h.http.requests[1].body,
                "VerificationSid=" + kSid + "&Code=" + kGoodCode);
  assert_int_equal(r.attempts, 1);
  assert_str_eq(r.verification_sid, kSid);
  assert_str_eq(r.masked_phone, kMasked);
  assert_int_equal(h.factory_calls, 1);
  assert_true(h.conv.errors.empty());
  assert_false(h.conv.overrun);
  EXPECT_CLEAN_LOG(h);
}

void test_prompt_text(void**) {
  Harness h;
  h.right_code_approved();
  (void)h.run();
  assert_int_equal(h.conv.prompts.size(), 1);
  // The first prompt names the words that send the code again.
  assert_str_eq(h.conv.prompts[0],
                "SMS code sent to +1******4567 (or type resend, call): ");

  Harness w;
  w.config.policy.channel = "whatsapp";
  w.right_code_approved();
  (void)w.run();
  assert_str_eq(w.conv.prompts[0],
                "WhatsApp code sent to +1******4567 (or type resend, call): ");
  assert_str_eq(w.http.requests[0].body, "To=%2B15551234567&Channel=whatsapp");
}

void test_wrong_then_right(void**) {
  Harness h;
  h.conv.script = {kBadCode, kGoodCode};
  h.http.check_replies = {pending(), approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.requests.size(), 3);
  assert_int_equal(h.http.count(Kind::Check), 2);
  assert_int_equal(h.http.count(Kind::Cancel), 0);
  assert_str_eq(h.http.requests[1].body,
                "VerificationSid=" + kSid + "&Code=" + kBadCode);
  assert_int_equal(h.conv.prompts.size(), 2);
  assert_not_contains(h.conv.prompts[0], "Wrong code");
  assert_contains(h.conv.prompts[1], "Wrong code");
  assert_contains(h.conv.prompts[1], "2 attempts left");
  assert_contains(h.conv.prompts[1], "SMS code sent to +1******4567: ");
  assert_int_equal(r.attempts, 2);
  EXPECT_CLEAN_LOG(h);
}

void test_right_code_on_last_attempt(void**) {
  Harness h;
  h.conv.script = {kBadCode, kBadCode, kGoodCode};
  h.http.check_replies = {pending(), pending(), approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(r.attempts, 3);
  assert_contains(h.conv.prompts[2], "1 attempt left");
  assert_int_equal(h.http.count(Kind::Cancel), 0);
}

void test_wrong_code_max_attempts(void**) {
  for (int max = 1; max <= 5; ++max) {
    Harness h;
    h.config.policy.max_attempts = max;
    for (int i = 0; i < max; ++i) h.conv.script.emplace_back(kBadCode);
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::WrongCode, PAM_AUTH_ERR);
    assert_int_equal(r.attempts, max);
    assert_int_equal(h.conv.prompts.size(), static_cast<std::size_t>(max));
    assert_int_equal(h.http.count(Kind::Check), static_cast<std::size_t>(max));
    assert_int_equal(h.http.requests.size(), static_cast<std::size_t>(max) + 2);
    EXPECT_CANCEL_LAST(h);
    assert_false(h.conv.overrun);
    assert_int_equal(h.conv.errors.size(), 1);
    assert_contains(h.conv.errors[0], "Wrong code");
    EXPECT_CLEAN_LOG(h);
  }
}

void test_invalid_input_counts_as_attempt(void**) {
  Harness h;
  h.conv.script = {"abcdef", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(r.attempts, 2);
  // Only the valid input reached Twilio.
  assert_int_equal(h.http.count(Kind::Check), 1);
  assert_str_eq(h.http.requests[1].body,
                "VerificationSid=" + kSid + "&Code=" + kGoodCode);
  assert_contains(h.conv.prompts[1], "4 to 10 digits");
  assert_contains(h.conv.prompts[1], "2 attempts left");
}

void test_invalid_input_never_sent(void**) {
  Harness h;
  h.config.policy.max_attempts = 3;
  h.conv.script = {"letters", "12", "\b\n\r\177INCORRECT"};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::WrongCode, PAM_AUTH_ERR);
  assert_int_equal(r.attempts, 3);
  assert_int_equal(h.http.count(Kind::Check), 0);
  assert_int_equal(h.http.requests.size(), 2);  // start and cancel
  EXPECT_CANCEL_LAST(h);
  assert_false(h.conv.overrun);
}

void test_conversation_error(void**) {
  for (ConversationError e : {ConversationError::Failed,
                              ConversationError::NoReply,
                              ConversationError::NoConversation}) {
    Harness h;
    h.conv.script = {e};
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::ConversationFailed, PAM_CONV_ERR);
    assert_int_equal(h.http.count(Kind::Check), 0);
    assert_int_equal(h.http.requests.size(), 2);
    EXPECT_CANCEL_LAST(h);
    assert_int_equal(h.conv.prompts.size(), 1);
  }
}

void test_conversation_error_after_wrong_code(void**) {
  Harness h;
  h.conv.script = {kBadCode, ConversationError::NoReply};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::ConversationFailed, PAM_CONV_ERR);
  assert_int_equal(h.http.count(Kind::Check), 1);
  EXPECT_CANCEL_LAST(h);
}

// A login with `typed` whose check Twilio answers with `reply`: denied,
// and no cancel (the verification is over).
AuthResult denied_at_check(Harness& h, const std::string& typed, Reply reply,
                           const char* file, int line) {
  h.conv.script = {typed};
  h.http.check_replies = {std::move(reply)};
  AuthResult r = h.run();
  expect_outcome(r, Outcome::Denied, PAM_AUTH_ERR, file, line);
  if (h.http.count(Kind::Cancel) != 0) {
    print_error("%zu cancels, expected none\n", h.http.count(Kind::Cancel));
    _fail(file, line);
  }
  return r;
}
#define DENIED_AT_CHECK(h, typed, reply) \
  denied_at_check((h), (typed), (reply), __FILE__, __LINE__)

void test_not_found_on_check(void**) {
  Harness h;
  const AuthResult r = DENIED_AT_CHECK(h, kGoodCode, twilio_error(404, 20404));
  assert_int_equal(h.http.requests.size(), 2);
  assert_int_equal(h.conv.errors.size(), 1);
  assert_contains(h.conv.errors[0], "expired");
  assert_contains(r.detail, "20404");
}

void test_max_checks_on_check(void**) {
  Harness h;
  DENIED_AT_CHECK(h, kBadCode, twilio_error(429, 60202));
  assert_int_equal(h.conv.prompts.size(), 1);  // no further attempt
  assert_contains(h.conv.errors[0], "Too many wrong codes");
}

void test_max_sends_on_start(void**) {
  Harness h;
  h.config.policy.failmode = ptv::FailMode::Safe;  // not an outage: still denied
  h.http.start_replies = {twilio_error(429, 60203)};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Denied, PAM_AUTH_ERR);
  assert_int_equal(h.http.requests.size(), 1);
  assert_true(h.conv.prompts.empty());
  assert_int_equal(h.conv.errors.size(), 1);
  assert_contains(h.conv.errors[0], "Too many codes");
}

void test_refusals_on_start(void**) {
  const std::vector<std::pair<long, int>> cases = {
      {403, 60205}, {403, 60410}, {403, 60605}, {400, 60200}, {400, 21211}};
  for (const auto& [status, code] : cases) {
    Harness h;
    h.config.policy.failmode = ptv::FailMode::Safe;
    h.http.start_replies = {twilio_error(status, code)};
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::Denied, PAM_AUTH_ERR);
    assert_true(h.conv.prompts.empty());
    assert_int_equal(h.http.requests.size(), 1);
  }
}

void test_check_status_canceled(void**) {
  Harness h;
  h.conv.script = {kGoodCode};
  h.http.check_replies = {canceled()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Denied, PAM_AUTH_ERR);
  EXPECT_CANCEL_LAST(h);
}

void test_no_phone_deny(void**) {
  Harness h;
  h.user = "bob";
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::NoPhoneDenied, PAM_AUTH_ERR);
  assert_int_equal(h.factory_calls, 0);
  assert_true(h.http.requests.empty());
  assert_true(h.conv.prompts.empty());
  // With a GECOS number the same user goes ahead.
  Harness g;
  g.user = "bob";
  g.gecos["bob"] = "Bob,,+1 555 000 1111";
  EXPECT_APPROVED_SMS_TO(g, "%2B15550001111");
  assert_int_equal(g.factory_calls, 1);
}

void test_no_phone_skip(void**) {
  Harness h;
  h.user = "bob";
  h.config.policy.no_phone = ptv::NoPhone::Skip;
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::NoPhoneSkipped, PAM_IGNORE);
  assert_int_equal(h.factory_calls, 0);
  assert_true(h.http.requests.empty());
  assert_true(h.conv.prompts.empty());
}

void test_invalid_phone(void**) {
  Harness h;
  h.config.policy.no_phone = ptv::NoPhone::Skip;  // invalid is not "no phone"
  h.config.phone.sources = {ptv::PhoneSource::Gecos, ptv::PhoneSource::Users};
  h.gecos["alice"] = "Alice,,ring my desk";
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::InvalidPhone, PAM_AUTH_ERR);
  assert_int_equal(h.factory_calls, 0);
  assert_true(h.http.requests.empty());
  assert_true(h.conv.prompts.empty());
  EXPECT_CLEAN_LOG(h);
}

void test_transport_factory_failure(void**) {
  Harness h;
  h.factory_error = std::make_unique<TransportError>(
      TransportError{TransportErrorKind::Internal, "no memory"});
  h.config.policy.failmode = ptv::FailMode::Safe;
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::InternalError, PAM_AUTH_ERR);
  assert_true(h.conv.prompts.empty());
}

// A login under `mode` whose start is refused twice ends as `want`
// without a prompt.
void expect_unreachable(Harness& h, ptv::FailMode mode, Outcome want, int pam,
                        const char* file, int line) {
  h.config.policy.failmode = mode;
  h.http.start_replies = refused_twice();
  expect_outcome(h.run(), want, pam, file, line);
  if (!h.conv.prompts.empty()) {
    print_error("prompted \"%s\", expected no prompt\n", h.conv.prompts[0].c_str());
    _fail(file, line);
  }
}
#define EXPECT_UNREACHABLE(h, mode, want, pam) \
  expect_unreachable((h), (mode), (want), (pam), __FILE__, __LINE__)

void test_unreachable_secure(void**) {
  Harness h;
  EXPECT_UNREACHABLE(h, ptv::FailMode::Secure, Outcome::Unavailable,
                     PAM_AUTHINFO_UNAVAIL);
  assert_false(h.log.has(LOG_WARNING, "WITHOUT"));
}

void test_unreachable_safe(void**) {
  Harness h;
  EXPECT_UNREACHABLE(h, ptv::FailMode::Safe, Outcome::FailOpen, PAM_SUCCESS);
  assert_true(h.log.has(LOG_WARNING, "failmode = safe"));
  assert_true(h.log.has(LOG_WARNING, "alice"));
  EXPECT_CLEAN_LOG(h);
}

void test_unreachable_once_is_retried(void**) {
  Harness h;
  h.http.start_replies = {
      transport_error(TransportErrorKind::Unreachable, "connection refused")};
  h.right_code_approved();
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Start), 2);
}

void test_timeout_on_check_safe_and_secure(void**) {
  Harness h;
  h.config.policy.failmode = ptv::FailMode::Safe;
  h.conv.script = {kGoodCode};
  h.http.check_replies = {transport_error(TransportErrorKind::Timeout)};
  EXPECT_OUTCOME(h.run(), Outcome::FailOpen, PAM_SUCCESS);
  Harness s;
  s.conv.script = {kGoodCode};
  s.http.check_replies = {transport_error(TransportErrorKind::Timeout)};
  EXPECT_OUTCOME(s.run(), Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
}

void test_tls_error_safe_still_denied(void**) {
  for (TransportErrorKind kind :
       {TransportErrorKind::Tls, TransportErrorKind::TooLarge,
        TransportErrorKind::Internal}) {
    Harness h;
    h.config.policy.failmode = ptv::FailMode::Safe;
    h.http.start_replies = {transport_error(kind, "certificate verify failed")};
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::TransportRejected, PAM_AUTH_ERR);
    assert_false(h.log.has(LOG_WARNING, "WITHOUT"));
    // The same failure on the check.
    Harness c;
    c.config.policy.failmode = ptv::FailMode::Safe;
    c.conv.script = {kGoodCode};
    c.http.check_replies = {transport_error(kind, "bad certificate")};
    EXPECT_OUTCOME(c.run(), Outcome::TransportRejected, PAM_AUTH_ERR);
  }
}

void test_server_error_safe_and_secure(void**) {
  for (long status : {500L, 502L, 503L}) {
    Harness h;
    h.config.policy.failmode = ptv::FailMode::Safe;
    h.http.start_replies = {json(status, "{}")};
    EXPECT_OUTCOME(h.run(), Outcome::FailOpen, PAM_SUCCESS);
    assert_true(h.log.has(LOG_WARNING, "failmode = safe"));

    Harness s;
    s.config.policy.failmode = ptv::FailMode::Secure;
    s.http.start_replies = {json(status, "{}")};
    EXPECT_OUTCOME(s.run(), Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
  }
}

void test_malformed_answer_safe_denied(void**) {
  Harness h;
  h.config.policy.failmode = ptv::FailMode::Safe;
  h.http.start_replies = {json(201, "{\"sid\":\"" + kSid + "\",")};
  EXPECT_OUTCOME(h.run(), Outcome::TransportRejected, PAM_AUTH_ERR);
  assert_true(h.conv.prompts.empty());

  Harness c;
  c.config.policy.failmode = ptv::FailMode::Safe;
  c.conv.script = {kGoodCode};
  c.http.check_replies = {
      HttpResponse{200, "text/html", "{\"status\":\"approved\"}", -1}};
  EXPECT_OUTCOME(c.run(), Outcome::TransportRejected, PAM_AUTH_ERR);
  EXPECT_CANCEL_LAST(c);

  Harness v;
  v.config.policy.failmode = ptv::FailMode::Safe;
  v.conv.script = {kGoodCode};
  v.http.check_replies = {
      json(200, "{\"status\":\"approved\",\"valid\":false}")};
  EXPECT_OUTCOME(v.run(), Outcome::TransportRejected, PAM_AUTH_ERR);

  Harness d;
  d.config.policy.failmode = ptv::FailMode::Safe;
  d.http.start_replies = {json(302, "")};
  EXPECT_OUTCOME(d.run(), Outcome::TransportRejected, PAM_AUTH_ERR);
}

void test_auth_failed_is_config_error(void**) {
  Harness h;
  h.config.policy.failmode = ptv::FailMode::Safe;
  h.http.start_replies = {twilio_error(401, 20003)};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::ConfigError, PAM_SERVICE_ERR);
  assert_true(h.conv.prompts.empty());
  assert_contains(r.detail, "20003");
  EXPECT_CLEAN_LOG(h);
}

void test_log_never_holds_secrets(void**) {
  // Every path that logs, with debug on, code and token in play.
  std::vector<std::unique_ptr<Harness>> runs;
  auto add = [&runs]() -> Harness& {
    runs.push_back(std::make_unique<Harness>());
    return *runs.back();
  };
  {
    Harness& h = add();
    h.conv.script = {kBadCode, "  " + kGoodCode + "\n"};
    h.http.check_replies = {pending(), approved()};
  }
  {
    Harness& h = add();
    h.conv.script = {kBadCode, kBadCode, kBadCode};
    h.http.cancel_replies = {transport_error(TransportErrorKind::Timeout)};
  }
  {
    Harness& h = add();
    h.config.policy.failmode = ptv::FailMode::Safe;
    h.conv.script = {kGoodCode};
    h.http.check_replies = {json(503, "")};
  }
  {
    Harness& h = add();
    h.conv.script = {kGoodCode};
    h.http.check_replies = {transport_error(TransportErrorKind::Tls)};
    h.http.cancel_replies = {twilio_error(404, 20404)};
  }
  {
    Harness& h = add();
    h.http.start_replies = {twilio_error(401, 20003)};
  }
  {
    Harness& h = add();
    h.config.phone.sources = {ptv::PhoneSource::Gecos};
    h.gecos["alice"] = "Alice,,5551234567";  // invalid: no country code
  }
  {
    Harness& h = add();
    h.conv.script = {"abc" + kGoodCode};
  }
  for (auto& h : runs) {
    (void)h->run();
    assert_false(h->log.lines.empty());
    EXPECT_CLEAN_LOG(*h);
  }
}

void test_outcome_line(void**) {
  Harness h;
  h.right_code_approved();
  (void)h.run();
  const Line& last = h.log.lines.back();
  assert_int_equal(last.priority, LOG_INFO);
  assert_contains(last.text, "user=alice");
  assert_contains(last.text, "phone=" + kMasked);
  assert_contains(last.text, "sid=" + kSid);
  assert_contains(last.text, "result=approved");
  assert_contains(last.text, "attempts=1");
}

void test_pam_result_for_every_outcome(void**) {
  const std::vector<std::pair<Outcome, int>> expected = {
      {Outcome::Approved, PAM_SUCCESS},
      {Outcome::FailOpen, PAM_SUCCESS},
      {Outcome::NoPhoneSkipped, PAM_IGNORE},
      {Outcome::NoPhoneDenied, PAM_AUTH_ERR},
      {Outcome::InvalidPhone, PAM_AUTH_ERR},
      {Outcome::WrongCode, PAM_AUTH_ERR},
      {Outcome::Denied, PAM_AUTH_ERR},
      {Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL},
      {Outcome::TransportRejected, PAM_AUTH_ERR},
      {Outcome::ConversationFailed, PAM_CONV_ERR},
      {Outcome::ConfigError, PAM_SERVICE_ERR},
      {Outcome::InternalError, PAM_AUTH_ERR},
  };
  for (const auto& [outcome, pam] : expected) {
    if (ptv::pam_result_for(outcome) != pam)
      fail_msg("%s -> %d, expected %d", ptv::describe(outcome),
               ptv::pam_result_for(outcome), pam);
    assert_non_null(ptv::describe(outcome));
  }
  // A value outside the enumeration fails closed.
  assert_int_equal(ptv::pam_result_for(static_cast<Outcome>(999)),
                   PAM_AUTH_ERR);
}

// ---------------------------------------------------- directory lookups

void test_directory_number_used(void**) {
  Harness h;
  h.config.phone.sources = {ptv::PhoneSource::Ldap};
  h.directory = {Answer::Kind::Values, {"bogus", "+1 555 000 2222"}, {}};
  EXPECT_APPROVED_SMS_TO(h, "%2B15550002222");
  assert_int_equal(h.directory_calls, 1);
}

void test_directory_unavailable_follows_failmode(void**) {
  Harness h;
  h.config.phone.sources = {ptv::PhoneSource::Ldap, ptv::PhoneSource::Users};
  h.directory = {Answer::Kind::Unavailable, {}, "cannot connect"};
  AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
  assert_contains(r.detail, "ldap: cannot connect");
  assert_int_equal(h.factory_calls, 0);
  assert_true(h.conv.prompts.empty());

  Harness s;
  s.config.phone.sources = {ptv::PhoneSource::Ldap, ptv::PhoneSource::Users};
  s.config.policy.failmode = ptv::FailMode::Safe;
  s.directory = {Answer::Kind::Unavailable, {}, "cannot connect"};
  r = s.run();
  EXPECT_OUTCOME(r, Outcome::FailOpen, PAM_SUCCESS);
  assert_true(s.log.has(LOG_WARNING, "WITHOUT the second factor"));
  assert_int_equal(s.factory_calls, 0);
}

void test_directory_failure_denies_in_both_failmodes(void**) {
  for (auto mode : {ptv::FailMode::Secure, ptv::FailMode::Safe}) {
    Harness h;
    h.config.phone.sources = {ptv::PhoneSource::Ldap, ptv::PhoneSource::Users};
    h.config.policy.failmode = mode;
    h.config.policy.no_phone = ptv::NoPhone::Skip;
    h.directory = {Answer::Kind::Failed, {}, "TLS with the directory failed"};
    AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::LookupFailed, PAM_AUTH_ERR);
    assert_true(h.log.has(LOG_ERR, "result=denied-lookup-error"));
    assert_int_equal(h.factory_calls, 0);

    Harness m;
    m.config.phone.sources = {ptv::PhoneSource::Ldap};
    m.config.policy.failmode = mode;
    m.config.policy.no_phone = ptv::NoPhone::Skip;
    m.directory = {Answer::Kind::Misconfigured, {}, "invalid credentials"};
    r = m.run();
    EXPECT_OUTCOME(r, Outcome::ConfigError, PAM_SERVICE_ERR);
    assert_int_equal(m.factory_calls, 0);
  }
}

void test_directory_without_number_is_no_phone(void**) {
  Harness h;
  h.config.phone.sources = {ptv::PhoneSource::Ldap};
  h.directory = {Answer::Kind::NotFound, {}, "no entry"};
  EXPECT_OUTCOME(h.run(), Outcome::NoPhoneDenied, PAM_AUTH_ERR);
  Harness s;
  s.config.phone.sources = {ptv::PhoneSource::Ldap};
  s.config.policy.no_phone = ptv::NoPhone::Skip;
  s.directory = {Answer::Kind::NotFound, {}, "no entry"};
  EXPECT_OUTCOME(s.run(), Outcome::NoPhoneSkipped, PAM_IGNORE);
}

}  // namespace


// ------------------------------------------------ the hostile caller

// failmode = "safe" opens on an outage, except in a set-id process (su,
// sudo), whose caller owns its signals and limits and could fake one.
void test_set_id_caller_never_fails_open(void**) {
  for (bool set_id : {false, true}) {
    Harness h;
    h.config.policy.failmode = ptv::FailMode::Safe;
    h.set_id = set_id;
    h.http.start_replies = {json(503, "{}")};
    const AuthResult r = h.run();
    if (set_id) {
      EXPECT_OUTCOME(r, Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
      assert_contains(r.detail,
                      "failmode = safe does not apply to set-id callers");
      assert_false(h.log.has(LOG_WARNING, "WITHOUT"));
    } else {
      EXPECT_OUTCOME(r, Outcome::FailOpen, PAM_SUCCESS);
    }
    // The directory being down: the same rule.
    Harness d;
    d.config.policy.failmode = ptv::FailMode::Safe;
    d.set_id = set_id;
    d.config.phone.sources = {ptv::PhoneSource::Ldap};
    d.directory = {Answer::Kind::Unavailable, {}, "server down"};
    EXPECT_OUTCOME(d.run(), set_id ? Outcome::Unavailable : Outcome::FailOpen,
                   set_id ? PAM_AUTHINFO_UNAVAIL : PAM_SUCCESS);
    assert_int_equal(d.factory_calls, 0);
  }
}

// Out of descriptors, memory or threads: a local failure, denied under
// both failmodes, and the send is not given back as "never sent".
void test_local_resource_failure_denies(void**) {
  for (auto mode : {ptv::FailMode::Secure, ptv::FailMode::Safe}) {
    Harness h;
    h.config.policy.failmode = mode;
    h.use_gate = true;
    h.http.start_replies = {transport_error(TransportErrorKind::LocalResource,
                                            "cannot open a socket")};
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::InternalError, PAM_AUTH_ERR);
    assert_contains(r.detail, "local resource failure");
    assert_int_equal(h.gate.reserved.size(), 1);
    assert_int_equal(h.gate.released.size(), 0);
    assert_false(h.log.has(LOG_WARNING, "WITHOUT"));
    // The paired case: a refused connection (nothing left the host) is an
    // outage, and the send is given back.
    Harness u;
    u.config.policy.failmode = mode;
    u.use_gate = true;
    u.http.start_replies = refused_twice();
    EXPECT_OUTCOME(u.run(),
                   mode == ptv::FailMode::Safe ? Outcome::FailOpen
                                               : Outcome::Unavailable,
                   mode == ptv::FailMode::Safe ? PAM_SUCCESS
                                               : PAM_AUTHINFO_UNAVAIL);
    assert_int_equal(u.gate.released.size(), 1);
    // A source that could not start its process: the same.
    Harness d;
    d.config.policy.failmode = mode;
    d.config.phone.sources = {ptv::PhoneSource::Ldap};
    d.directory = {Answer::Kind::Internal, {}, "fork: EAGAIN"};
    EXPECT_OUTCOME(d.run(), Outcome::InternalError, PAM_AUTH_ERR);
    assert_int_equal(d.factory_calls, 0);
  }
}

// A 429 without a rate limit named is Twilio's throttle: it is caused by
// traffic, so it never opens, under either failmode, at start or check.
void test_throttle_never_opens(void**) {
  for (auto mode : {ptv::FailMode::Secure, ptv::FailMode::Safe}) {
    Harness h;
    h.config.policy.failmode = mode;
    h.http.start_replies = {twilio_error(429, 20429)};
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
    assert_contains(r.detail, "20429");
    assert_false(h.log.has(LOG_WARNING, "WITHOUT"));
    Harness c;
    c.config.policy.failmode = mode;
    c.conv.script = {kGoodCode};
    c.http.check_replies = {twilio_error(429, 20429)};
    EXPECT_OUTCOME(c.run(), Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
    assert_int_equal(c.http.count(Kind::Cancel), 0);
  }
}

// A 429 naming one of the service's rate limits: denied-rate-limited,
// with a message for the user and the limit in the log.
void test_rate_limit_named_denies(void**) {
  for (auto mode : {ptv::FailMode::Secure, ptv::FailMode::Safe}) {
    Harness h;
    h.config.policy.failmode = mode;
    Reply limited = twilio_error(429, 20429);
    limited->reached_rate_limit = true;
    limited->rate_limit_name = "pam_account";
    h.http.start_replies = {limited};
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::RateLimited, PAM_AUTH_ERR);
    assert_contains(r.detail, "rate limit \"pam_account\"");
    assert_int_equal(h.conv.errors.size(), 1);
    assert_str_eq(h.conv.errors[0],
                  "Too many codes were requested for this account. Try again "
                  "later.");
    assert_true(h.conv.prompts.empty());
    assert_true(h.log.has(LOG_WARNING, "result=denied-rate-limited"));
  }
}

// The typed name is resolved once; the account's own name is used for the
// phone lookup, the send limit and the log line.
void test_account_name_used_everywhere(void**) {
  Harness h;
  h.user = "ALICE";
  h.canonical["ALICE"] = "alice";
  h.use_gate = true;
  h.right_code_approved();
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_str_eq(r.account, "alice");
  assert_int_equal(h.gate.reserved.size(), 1);
  assert_str_eq(h.gate.reserved[0], "alice");
  assert_contains(h.log.lines.back().text, "user=alice login_name=ALICE ");
  // The same spelling: no login_name field.
  Harness same;
  same.right_code_approved();
  (void)same.run();
  assert_not_contains(same.log.lines.back().text, "login_name=");
}

// A name that is no account is denied before any lookup or request.
void test_unknown_user_denied_first(void**) {
  Harness h;
  h.user = "mallory";
  h.unknown_users.insert("mallory");
  h.config.phone.sources = {ptv::PhoneSource::Ldap};
  h.config.policy.no_phone = ptv::NoPhone::Skip;
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::UnknownUser, PAM_USER_UNKNOWN);
  assert_int_equal(h.directory_calls, 0);
  assert_int_equal(h.factory_calls, 0);
  assert_contains(h.log.lines.back().text, "result=denied-unknown-user");
  // The lookup itself failing is not "unknown": a local failure.
  Harness f;
  f.account_lookup_fails = true;
  EXPECT_OUTCOME(f.run(), Outcome::InternalError, PAM_AUTH_ERR);
  assert_int_equal(f.factory_calls, 0);
}

void test_services_setting(void**) {
  ptv::Config c;
  assert_false(ptv::skip_service(c.policy, "imap").has_value());  // unset: all
  c.policy.services = {"sshd", "sudo"};
  c.policy.services_set = true;
  assert_false(ptv::skip_service(c.policy, "sshd").has_value());
  assert_false(ptv::skip_service(c.policy, "sudo").has_value());
  const auto skipped = ptv::skip_service(c.policy, "dovecot");
  assert_true(skipped.has_value());
  assert_true(skipped->outcome == Outcome::ServiceSkipped);
  assert_int_equal(ptv::pam_result_for(skipped->outcome), PAM_IGNORE);
  assert_str_eq(ptv::describe(skipped->outcome), "skipped-service");
  assert_contains(skipped->detail, "dovecot");
  assert_true(ptv::skip_service(c.policy, "SSHD").has_value());  // exact names
  assert_true(ptv::skip_service(c.policy, "").has_value());
  CapturingLogger log;
  ptv::log_outcome(log, "bob", *skipped, 1);
  assert_int_equal(log.lines.back().priority, LOG_NOTICE);
}

// Names in the log cannot look alike or forge a field.
void test_log_names_escaped(void**) {
  assert_str_eq(ptv::log_token("alice"), "alice");
  assert_str_eq(ptv::log_token("al ice"), "al\\x20ice");
  assert_str_eq(ptv::log_token("x result=approved"),
                "x\\x20result\\x3dapproved");
  assert_str_eq(ptv::log_safe("a\x01" "b\xff"), "a\\x01b\\xff");
  assert_str_eq(ptv::log_safe("a\\x01"), "a\\\\x01");  // not the same as \x01
  assert_str_eq(ptv::log_safe("a?b"), "a?b");
  const std::string long_name(70, 'a');
  const std::string cut = ptv::log_safe(long_name);
  assert_str_eq(cut, std::string(64, 'a') + "\\...");
  // A name that ends in the cut mark's characters is not taken for a cut.
  assert_str_eq(ptv::log_safe(std::string(60, 'a') + "\\..."),
                std::string(60, 'a') + "\\\\...");
}

// ------------------------------------------------- the send limit's state

namespace {

// A real send limit, its state in a directory of its own.
struct StateDir {
  ptv::SendLimitSettings settings;
  std::string base;
  explicit StateDir(int count) {
    char tmpl[] = "/tmp/ptv-flow-state.XXXXXX";
    base = mkdtemp(tmpl) != nullptr ? tmpl : "";
    settings.state_dir = base + "/state";
    settings.count = count;
    settings.owner = geteuid();
    settings.lock_wait_ms = 20000;
  }
  ~StateDir() {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }
};

// A login of alice through the flow, with the real send limit.
struct LimitedLogin {
  Harness h;
  ptv::StateDirSendGate gate;
  explicit LimitedLogin(const StateDir& dir) : gate(dir.settings) {
    h.state_gate = &gate;
    h.right_code_approved();
  }
};

void test_flow_denies_at_the_limit_without_a_request(void**) {
  const StateDir s(2);
  for (int i = 0; i < 2; ++i) {
    LimitedLogin f(s);
    EXPECT_OUTCOME(f.h.run(), Outcome::Approved, PAM_SUCCESS);
  }
  LimitedLogin f(s);
  f.h.config.policy.failmode = ptv::FailMode::Safe;  // never opens on a limit
  const AuthResult r = f.h.run();
  EXPECT_OUTCOME(r, Outcome::SendLimited, PAM_AUTH_ERR);
  assert_str_eq(ptv::describe(r.outcome), "denied-send-limit");
  assert_int_equal(f.h.http.requests.size(), 0);
  assert_true(f.h.conv.prompts.empty());
  assert_int_equal(f.h.conv.errors.size(), 1);
  assert_str_eq(f.h.conv.errors[0],
                "Too many codes were sent recently. Try again later.");
  assert_contains(r.detail, "send_limit.count = 2");
}

void test_flow_state_error_fails_closed(void**) {
  const StateDir s(2);
  assert_int_equal(mkdir(s.settings.state_dir.c_str(), 0700), 0);
  assert_int_equal(chmod(s.settings.state_dir.c_str(), 0777), 0);
  LimitedLogin f(s);
  f.h.config.policy.failmode = ptv::FailMode::Safe;
  // Even with Twilio down and failmode = "safe".
  f.h.http.start_replies = {transport_error(TransportErrorKind::Unreachable),
                            transport_error(TransportErrorKind::Unreachable)};
  const AuthResult r = f.h.run();
  EXPECT_OUTCOME(r, Outcome::StateError, PAM_AUTH_ERR);
  assert_str_eq(ptv::describe(r.outcome), "denied-state-error");
  assert_int_equal(f.h.http.requests.size(), 0);
  assert_contains(r.detail, s.settings.state_dir);
}

void test_flow_unreachable_start_gives_the_send_back(void**) {
  const StateDir s(1);
  for (int i = 0; i < 3; ++i) {
    LimitedLogin f(s);
    f.h.http.start_replies = {transport_error(TransportErrorKind::Unreachable),
                              transport_error(TransportErrorKind::Unreachable)};
    const AuthResult r = f.h.run();
    EXPECT_OUTCOME(r, Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
    assert_true(f.h.http.requests.size() > 0);
  }
  const auto sends = ptv::recorded_sends(s.settings, "alice");
  assert_true(sends.has_value());
  assert_true(sends->empty());
  LimitedLogin ok(s);
  EXPECT_OUTCOME(ok.h.run(), Outcome::Approved, PAM_SUCCESS);
}

void test_flow_timed_out_start_stays_counted(void**) {
  const StateDir s(1);
  LimitedLogin f(s);
  // Twilio may have sent the SMS before the timeout.
  f.h.http.start_replies = {transport_error(TransportErrorKind::Timeout)};
  EXPECT_OUTCOME(f.h.run(), Outcome::Unavailable, PAM_AUTHINFO_UNAVAIL);
  LimitedLogin again(s);
  EXPECT_OUTCOME(again.h.run(), Outcome::SendLimited, PAM_AUTH_ERR);
  assert_int_equal(again.h.http.requests.size(), 0);
}

}  // namespace

// ------------------------------------------------- resend and call, locale

const std::string kStartBody = "To=%2B15551234567&Channel=sms";

// `resend` sends the same verification's code again on the same channel:
// another start, counted by the send limit, and no attempt used.
void test_resend_sends_again_without_an_attempt(void**) {
  Harness h;
  h.use_gate = true;
  h.config.policy.max_attempts = 1;
  h.conv.script = {"resend", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Start), 2);
  assert_str_eq(h.http.requests[1].body, kStartBody);
  assert_true(h.http.requests[2].kind == Kind::Check);
  assert_int_equal(h.gate.reserved.size(), 2);
  assert_int_equal(r.attempts, 1);
  assert_int_equal(h.conv.prompts.size(), 2);
  assert_str_eq(h.conv.prompts[1], "Code sent again. SMS code sent to +1******4567: ");
  assert_true(h.log.has(LOG_INFO, "resend 1 of 2 for user alice to +1******4567 "
                                  "by sms: sent again (verification " + kSid + ")"));
  assert_str_eq(r.verification_sid, kSid);
  EXPECT_CLEAN_LOG(h);
}

// `call`, in any case and with blanks around it: the same To with
// Channel=call; the prompts that follow speak of the call.
void test_call_asks_for_a_voice_call(void**) {
  Harness h;
  h.conv.script = {" \tCaLL ", kBadCode, kGoodCode};
  h.http.check_replies = {pending(), approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Start), 2);
  assert_str_eq(h.http.requests[0].body, kStartBody);
  assert_str_eq(h.http.requests[1].body, "To=%2B15551234567&Channel=call");
  assert_str_eq(h.conv.prompts[1],
                "Calling you with the code. Code from the call to +1******4567: ");
  assert_str_eq(h.conv.prompts[2], "Wrong code; 2 attempts left. Code from the "
                                   "call to +1******4567: ");
  assert_int_equal(r.attempts, 2);
  assert_true(h.log.has(LOG_INFO, "call 1 of 2 for user alice to +1******4567 by call: sent again"));
}

// Two per login; a third is refused, says so and uses up an attempt (so
// that the prompts stay bounded); the login goes on.
void test_third_resend_refused(void**) {
  Harness h;
  h.use_gate = true;
  h.conv.script = {"resend", "call", "RESEND", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Start), 3);
  assert_int_equal(h.gate.reserved.size(), 3);
  assert_str_eq(h.conv.prompts[3], "No more codes can be sent in this login; 2 "
                                   "attempts left. Code from the call to +1******4567: ");
  assert_int_equal(r.attempts, 2);
  assert_true(h.log.has(LOG_NOTICE, "resend refused: 2 already asked in this login"));

  // With one attempt, words after the two end the login as wrong input does.
  Harness one;
  one.config.policy.max_attempts = 1;
  one.conv.script = {"resend", "resend", "resend"};
  EXPECT_OUTCOME(one.run(), Outcome::WrongCode, PAM_AUTH_ERR);
  assert_int_equal(one.http.count(Kind::Start), 3);
  assert_int_equal(one.http.count(Kind::Check), 0);
  assert_int_equal(one.conv.prompts.size(), 3);
  assert_false(one.conv.overrun);
  EXPECT_CANCEL_LAST(one);
}

// Refused by the send limit: nothing sent, the login goes on with the
// code already sent, and the prompt says why.
void test_resend_refused_by_the_send_limit(void**) {
  Harness h;
  h.use_gate = true;
  h.gate.decisions = {ptv::SendDecision::Allowed, ptv::SendDecision::LimitReached,
                      ptv::SendDecision::Error};
  h.conv.script = {"resend", "call", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Start), 1);
  assert_str_eq(h.conv.prompts[1], "Too many codes were sent recently; use the code "
                                   "already sent. SMS code sent to +1******4567: ");
  assert_str_eq(h.conv.prompts[2], "No code can be sent right now; use the code "
                                   "already sent. SMS code sent to +1******4567: ");
  assert_true(h.log.has(LOG_NOTICE, "resend 1 of 2 for user alice to +1******4567 by "
                                    "sms: refused by the send limit: limit of the test"));
  assert_true(h.log.has(LOG_WARNING, "call 2 of 2"));
  assert_int_equal(r.attempts, 1);
}

// Refused by Twilio (60203, any 429) or failing: the login goes on with
// the code already sent; a resend that never left gives its send back.
void test_resend_refused_by_twilio(void**) {
  struct Case {
    Reply reply;
    const char* note;
    bool given_back;
  };
  const std::vector<Case> cases = {
      {twilio_error(429, 60203), "Too many codes were sent to your phone; use the "
                                 "code already sent. ", false},
      {twilio_error(429, 20429), "Too many codes were requested; use the code "
                                 "already sent. ", false},
      {twilio_error(503, 20503), "The code could not be sent again; use the code "
                                 "already sent. ", false},
      {transport_error(TransportErrorKind::Unreachable),
       "The code could not be sent again; use the code already sent. ", true},
  };
  for (const Case& c : cases) {
    Harness h;
    h.use_gate = true;
    h.config.policy.failmode = ptv::FailMode::Safe;  // never opens here
    h.http.start_replies = {started(), c.reply, c.reply};
    h.conv.script = {"resend", kGoodCode};
    h.http.check_replies = {approved()};
    const AuthResult r = h.run();
    EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
    assert_str_eq(h.conv.prompts[1], std::string(c.note) + "SMS code sent to +1******4567: ");
    assert_int_equal(h.gate.released.size(), c.given_back ? 1 : 0);
    assert_true(h.log.has(LOG_NOTICE, "resend 1 of 2 for user alice to +1******4567 "
                                      "by sms: not sent: "));
    assert_int_equal(r.attempts, 1);
    assert_true(h.conv.errors.empty());
  }
}

// Twilio started a new verification (the first one had expired): its SID
// is the one checked.
void test_resend_follows_a_new_verification(void**) {
  const std::string other = "VEffeeddccbbaa99887766554433221100";
  Harness h;
  h.http.start_replies = {started(),
                          json(201, "{\"sid\":\"" + other + "\",\"status\":\"pending\"}")};
  h.conv.script = {"resend", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_str_eq(r.verification_sid, other);
  assert_str_eq(h.http.requests[2].body, "VerificationSid=" + other + "&Code=" + kGoodCode);
}

// The words are checked where they are typed: the password (sshd answers
// every prompt with it) is never taken for one, and other words are
// invalid input.
void test_words_at_the_prompt(void**) {
  Harness h;
  h.conv.password = "Resend";
  h.conv.script = {"Resend", "re send", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Start), 1);
  assert_int_equal(r.attempts, 3);
  assert_contains(h.conv.prompts[1], "Codes are 4 to 10 digits; 2 attempts left. ");
  assert_true(h.log.has(LOG_DEBUG, "attempt 1: input equals the password"));
  // The same word from someone whose password is another one is a resend.
  Harness o;
  o.conv.password = "hunter2";
  o.conv.script = {"Resend", kGoodCode};
  o.http.check_replies = {approved()};
  EXPECT_OUTCOME(o.run(), Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(o.http.count(Kind::Start), 2);
}

// locale: sent as Locale on every create, resends too.
void test_locale_sent(void**) {
  Harness h;
  h.config.policy.locale = "pt-BR";
  h.conv.script = {"call", kGoodCode};
  h.http.check_replies = {approved()};
  EXPECT_OUTCOME(h.run(), Outcome::Approved, PAM_SUCCESS);
  assert_str_eq(h.http.requests[0].body, kStartBody + "&Locale=pt-BR");
  assert_str_eq(h.http.requests[1].body, "To=%2B15551234567&Channel=call&Locale=pt-BR");
  // Unset: no Locale at all.
  Harness n;
  n.conv.script = {kGoodCode};
  n.http.check_replies = {approved()};
  EXPECT_OUTCOME(n.run(), Outcome::Approved, PAM_SUCCESS);
  assert_str_eq(n.http.requests[0].body, kStartBody);
}

// A 404 to a start with Locale is tried once more without it, and the log
// says so; the resends then go without it too. A second 404 is the
// unknown service, as without locale (where a 404 is never retried).
void test_locale_404_retried_without_locale(void**) {
  Harness h;
  h.use_gate = true;
  h.config.policy.locale = "xx-YY";
  h.http.start_replies = {twilio_error(404, 20404)};
  h.conv.script = {"resend", kGoodCode};
  h.http.check_replies = {approved()};
  EXPECT_OUTCOME(h.run(), Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Start), 3);
  assert_str_eq(h.http.requests[0].body, kStartBody + "&Locale=xx-YY");
  assert_str_eq(h.http.requests[1].body, kStartBody);
  assert_str_eq(h.http.requests[2].body, kStartBody);
  assert_int_equal(h.gate.reserved.size(), 2);  // the 404 sent nothing more
  assert_true(h.log.has(LOG_NOTICE, "starting the verification: Twilio answered "
                                    "verification not found"));
  assert_true(h.log.has(LOG_NOTICE, "with Locale=xx-YY; trying once more without Locale"));

  Harness twice;
  twice.config.policy.locale = "fr";
  twice.http.start_replies = {twilio_error(404, 20404), twilio_error(404, 20404)};
  const AuthResult r = twice.run();
  EXPECT_OUTCOME(r, Outcome::ConfigError, PAM_SERVICE_ERR);
  assert_int_equal(twice.http.count(Kind::Start), 2);
  assert_contains(r.detail, "Twilio knows no service " + kService + " (20404)");
  assert_true(twice.conv.prompts.empty());

  Harness none;
  none.http.start_replies = {twilio_error(404, 20404), started()};
  EXPECT_OUTCOME(none.run(), Outcome::ConfigError, PAM_SERVICE_ERR);
  assert_int_equal(none.http.count(Kind::Start), 1);
  assert_false(none.log.has(LOG_NOTICE, "without Locale"));

  // Another refusal with Locale is not retried.
  Harness other;
  other.config.policy.locale = "fr";
  other.http.start_replies = {twilio_error(400, 60200), started()};
  EXPECT_OUTCOME(other.run(), Outcome::Denied, PAM_AUTH_ERR);
  assert_int_equal(other.http.count(Kind::Start), 1);
}

// With rate_limits declared, every create (the first send and each resend)
// carries RateLimits: the account's pseudonym, and the address when
// PAM_RHOST is one; a resend refused by a rate limit keeps the login going
// with the code already sent, and the log names the limit.
void test_rate_limits_on_every_create(void**) {
  Harness h;
  h.config.twilio.rate_limits.account = {"pam_account", {{10, 3600}}};
  h.config.twilio.rate_limits.client_ip = {"pam_client_ip", {{5, 60}}};
  h.rhost = "::ffff:192.0.2.7";
  Reply limited = twilio_error(429, 20429);
  limited->reached_rate_limit = true;
  limited->rate_limit_name = "pam_client_ip";
  h.http.start_replies = {started(), limited};
  h.conv.script = {"resend", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  std::string json;
  ptv::append_encoded(json,
                      "{\"pam_account\":\"" + ptv::account_pseudonym(h.config.twilio, "alice") +
                          "\",\"pam_client_ip\":\"192.0.2.7\"}",
                      true);
  assert_int_equal(h.http.count(Kind::Start), 2);
  for (const auto& q : h.http.requests)
    if (q.kind == Kind::Start) assert_contains(q.body, "&RateLimits=" + json);
  assert_str_eq(h.conv.prompts[1], "Too many codes were requested for this account; "
                                   "use the code already sent. SMS code sent to "
                                   "+1******4567: ");
  assert_true(h.log.has(LOG_NOTICE, "rate limit \"pam_client_ip\""));
  assert_true(h.conv.errors.empty());
  // A host name: the account's key only; nothing declared: no RateLimits.
  Harness n;
  n.config.twilio.rate_limits.client_ip = {"pam_client_ip", {{5, 60}}};
  n.rhost = "alice.example.com";
  n.right_code_approved();
  EXPECT_OUTCOME(n.run(), Outcome::Approved, PAM_SUCCESS);
  assert_true(n.http.requests[0].body.find("RateLimits") == std::string::npos);
}

// ------------------------------------------------------- backend messaging

void expect_outcome_only(const AuthResult& r, Outcome want, const char* file, int line) {
  expect_outcome(r, want, ptv::pam_result_for(want), file, line);
}
#define EXPECT_OUTCOME_ONLY(r, want) expect_outcome_only((r), (want), __FILE__, __LINE__)

// The message's form body: the To, the code in the Body, the sender and
// the code's lifetime.
std::string message_body(const std::string& code) {
  return ptv::form_encode({{"To", kPhone},
                           {"Body", "Code for " + ptv::short_host_name() + ": " + code},
                           {"From", kFrom},
                           {"ValidityPeriod", "300"}})
      .c_str();
}

void test_messaging_right_code(void**) {
  Harness h;
  h.use_messaging();
  h.conv.script = {kGoodCode};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.requests.size(), 1);  // checked here, not at Twilio
  assert_int_equal(h.http.requests[0].kind, Kind::Message);
  assert_string_equal(h.http.requests[0].body.c_str(), message_body(kGoodCode).c_str());
  assert_string_equal(h.conv.prompts[0].c_str(),
                      ("SMS code sent to " + kMasked + " (or type resend): ").c_str());
  assert_string_equal(r.verification_sid.c_str(), kMessageSid.c_str());
  EXPECT_CLEAN_LOG(h);
}

void test_messaging_service_sid_sender(void**) {
  Harness h;
  h.use_messaging();
  h.config.twilio.messaging.from.clear();
  h.config.twilio.messaging.messaging_service_sid = "MG0123456789abcdef0123456789abcdef";
  h.config.twilio.messaging.code_ttl_s = 60;
  h.conv.script = {kGoodCode};
  EXPECT_OUTCOME(h.run(), Outcome::Approved, PAM_SUCCESS);
  assert_contains(h.http.requests[0].body,
                  "&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&ValidityPeriod=60");
  assert_false(h.http.requests[0].body.find("From=") != std::string::npos);
}

void test_messaging_wrong_then_right_and_all_wrong(void**) {
  Harness h;
  h.use_messaging();
  h.conv.script = {kBadCode, kGoodCode};
  const AuthResult r = h.run();
  EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(r.attempts, 2);
  assert_string_equal(h.conv.prompts[1].c_str(),
                      ("Wrong code; 2 attempts left. SMS code sent to " + kMasked + ": ").c_str());
  Harness w;
  w.use_messaging();
  w.conv.script = {kBadCode, "918274", "018273"};  // last and first digit wrong
  EXPECT_OUTCOME_ONLY(w.run(), Outcome::WrongCode);
  assert_int_equal(w.http.requests.size(), 1);
  assert_false(w.conv.overrun);
  EXPECT_CLEAN_LOG(w);
}

// The code is refused once code_ttl_s has passed on the monotonic clock.
void test_messaging_expired(void**) {
  for (int step : {299, 300}) {
    Harness h;
    h.use_messaging();
    h.clock.step = std::chrono::seconds(step);  // from the send to the check
    h.conv.script = {kGoodCode};
    const AuthResult r = h.run();
    if (step == 299) {
      EXPECT_OUTCOME(r, Outcome::Approved, PAM_SUCCESS);
      continue;
    }
    EXPECT_OUTCOME_ONLY(r, Outcome::Denied);
    assert_contains(r.detail, "the code has expired (code_ttl_s)");
    assert_true(h.http.requests.size() == 1);  // nothing asked of Twilio
    assert_string_equal(h.conv.errors.at(0).c_str(),
                        "The code has expired or was already used. Log in "
                        "again to get a new one.");
  }
}

void test_messaging_resend_same_code_no_call(void**) {
  Harness h;
  h.use_messaging();
  h.conv.script = {"resend", "call", kGoodCode};
  EXPECT_OUTCOME(h.run(), Outcome::Approved, PAM_SUCCESS);
  assert_int_equal(h.http.count(Kind::Message), 2);  // call sent nothing
  assert_string_equal(h.http.requests[1].body.c_str(), message_body(kGoodCode).c_str());
  assert_true(h.conv.prompts[1].starts_with("Code sent again. SMS code sent to "));
  assert_string_equal(h.conv.prompts[2].c_str(),
                      ("Codes are 4 to 10 digits; 2 attempts left. SMS code sent to " +
                       kMasked + ": ").c_str());
  EXPECT_CLEAN_LOG(h);
}

void test_messaging_error_mapping(void**) {
  struct Case {
    long status;
    int code;
    Outcome want;
  };
  const Case cases[] = {
      {401, 20003, Outcome::ConfigError}, {400, 21211, Outcome::Denied},
      {400, 21614, Outcome::Denied},      {400, 21610, Outcome::Denied},
      {400, 21408, Outcome::Denied},      {400, 21606, Outcome::ConfigError},
      {400, 21659, Outcome::ConfigError}, {429, 20429, Outcome::Unavailable},
      {404, 20404, Outcome::ConfigError},
  };
  for (const Case& c : cases) {
    for (ptv::FailMode mode : {ptv::FailMode::Secure, ptv::FailMode::Safe}) {
      Harness h;
      h.use_messaging();
      h.config.policy.failmode = mode;  // plays no part in a refusal
      h.http.message_replies = {twilio_error(c.status, c.code)};
      const AuthResult r = h.run();
      EXPECT_OUTCOME_ONLY(r, c.want);
      assert_true(h.conv.prompts.empty());
      if (c.code != 20404) assert_contains(r.detail, std::to_string(c.code));
      if (c.want == Outcome::Denied)
        assert_string_equal(h.conv.errors.at(0).c_str(),
                            "A code cannot be sent to your phone number. "
                            "Contact your administrator.");
    }
  }
  Harness m;  // a 2xx that is not a queued message
  m.use_messaging();
  m.http.message_replies = {json(201, "{\"sid\":\"" + kMessageSid + "\",\"status\":\"failed\"}")};
  EXPECT_OUTCOME_ONLY(m.run(), Outcome::TransportRejected);
  Harness g;  // getrandom failing: an internal error, nothing sent
  g.use_messaging();
  g.random = failing_random;
  EXPECT_OUTCOME_ONLY(g.run(), Outcome::InternalError);
  assert_true(g.http.requests.empty());
}

// An outage follows failmode, never opening for a set-id caller.
void test_messaging_outage(void**) {
  for (bool set_id : {false, true}) {
    for (ptv::FailMode mode : {ptv::FailMode::Secure, ptv::FailMode::Safe}) {
      for (int outage = 0; outage < 2; ++outage) {
        Harness h;
        h.use_messaging();
        h.set_id = set_id;
        h.config.policy.failmode = mode;
        h.http.message_replies =
            outage == 0 ? std::deque<Reply>{json(503, "{}")} : refused_twice();
        const bool open = mode == ptv::FailMode::Safe && !set_id;
        EXPECT_OUTCOME_ONLY(h.run(), open ? Outcome::FailOpen : Outcome::Unavailable);
        assert_true(h.conv.prompts.empty());
      }
    }
  }
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_messaging_right_code),
      cmocka_unit_test(test_messaging_service_sid_sender),
      cmocka_unit_test(test_messaging_wrong_then_right_and_all_wrong),
      cmocka_unit_test(test_messaging_expired),
      cmocka_unit_test(test_messaging_resend_same_code_no_call),
      cmocka_unit_test(test_messaging_error_mapping),
      cmocka_unit_test(test_messaging_outage),
      cmocka_unit_test(test_set_id_caller_never_fails_open),
      cmocka_unit_test(test_local_resource_failure_denies),
      cmocka_unit_test(test_throttle_never_opens),
      cmocka_unit_test(test_rate_limit_named_denies),
      cmocka_unit_test(test_rate_limits_on_every_create),
      cmocka_unit_test(test_account_name_used_everywhere),
      cmocka_unit_test(test_unknown_user_denied_first),
      cmocka_unit_test(test_services_setting),
      cmocka_unit_test(test_log_names_escaped),
      cmocka_unit_test(test_right_code_first_try),
      cmocka_unit_test(test_directory_number_used),
      cmocka_unit_test(test_directory_unavailable_follows_failmode),
      cmocka_unit_test(test_directory_failure_denies_in_both_failmodes),
      cmocka_unit_test(test_directory_without_number_is_no_phone),
      cmocka_unit_test(test_prompt_text),
      cmocka_unit_test(test_resend_sends_again_without_an_attempt),
      cmocka_unit_test(test_call_asks_for_a_voice_call),
      cmocka_unit_test(test_third_resend_refused),
      cmocka_unit_test(test_resend_refused_by_the_send_limit),
      cmocka_unit_test(test_resend_refused_by_twilio),
      cmocka_unit_test(test_resend_follows_a_new_verification),
      cmocka_unit_test(test_words_at_the_prompt),
      cmocka_unit_test(test_locale_sent),
      cmocka_unit_test(test_locale_404_retried_without_locale),
      cmocka_unit_test(test_wrong_then_right),
      cmocka_unit_test(test_right_code_on_last_attempt),
      cmocka_unit_test(test_wrong_code_max_attempts),
      cmocka_unit_test(test_invalid_input_counts_as_attempt),
      cmocka_unit_test(test_invalid_input_never_sent),
      cmocka_unit_test(test_conversation_error),
      cmocka_unit_test(test_conversation_error_after_wrong_code),
      cmocka_unit_test(test_not_found_on_check),
      cmocka_unit_test(test_max_checks_on_check),
      cmocka_unit_test(test_max_sends_on_start),
      cmocka_unit_test(test_refusals_on_start),
      cmocka_unit_test(test_check_status_canceled),
      cmocka_unit_test(test_no_phone_deny),
      cmocka_unit_test(test_no_phone_skip),
      cmocka_unit_test(test_invalid_phone),
      cmocka_unit_test(test_transport_factory_failure),
      cmocka_unit_test(test_unreachable_secure),
      cmocka_unit_test(test_unreachable_safe),
      cmocka_unit_test(test_unreachable_once_is_retried),
      cmocka_unit_test(test_timeout_on_check_safe_and_secure),
      cmocka_unit_test(test_tls_error_safe_still_denied),
      cmocka_unit_test(test_server_error_safe_and_secure),
      cmocka_unit_test(test_malformed_answer_safe_denied),
      cmocka_unit_test(test_auth_failed_is_config_error),
      cmocka_unit_test(test_log_never_holds_secrets),
      cmocka_unit_test(test_outcome_line),
      cmocka_unit_test(test_pam_result_for_every_outcome),
      cmocka_unit_test(test_flow_denies_at_the_limit_without_a_request),
      cmocka_unit_test(test_flow_state_error_fails_closed),
      cmocka_unit_test(test_flow_unreachable_start_gives_the_send_back),
      cmocka_unit_test(test_flow_timed_out_start_stays_counted),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
