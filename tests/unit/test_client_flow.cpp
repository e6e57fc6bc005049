// The module's side of a login, with the helper's real session running in a
// thread at the other end of a socket pair (fake Twilio behind it): which
// logins start the helper at all, what crosses, and what the module takes
// from the helper's answer.
#include <security/pam_modules.h>
#include <sys/socket.h>

#include <functional>
#include <thread>

#include "core/client_flow.hpp"
#include "fakes.hpp"
#include "util/file_descriptor.hpp"
#include "helper/helper_session.hpp"
#include "unit_test.hpp"

using ptv::AuthResult;
using ptv::Outcome;

namespace {

using namespace ptv_fakes;

std::string config_text(const std::string& extra) {
  return "twilio = {\n  account_sid = \"" + kAccount + "\";\n  auth_token = \"" +
         kToken + "\";\n  service_sid = \"" + kService + "\";\n  api_url = \"" +
         kBase + "\";\n};\nusers = ( (\"alice\", \"" + kPhone + "\") );\n" + extra;
}

// What a login of the module's side runs with.
struct Sides {
  const ptv::Config& config;
  ptv::HelperStarter& starter;
  ptv::Conversation& conv;
  ptv::Logger& log;
  ptv::AccountDirectory& accounts;
  ptv::GroupDirectory& groups;
  ptv::GraceStore& grace;
  std::string_view rhost = {};  // PAM_RHOST
};

// One login of the module's side, the helper started by `s.starter`.
AuthResult login(const Sides& s, const std::string& user, bool set_id) {
  const std::string path = "/test/ptv.conf";
  ptv::HelperVerifier helper({s.starter, path,
                              ptv::helper_wait_bound(s.config.twilio, s.config.phone),
                              s.conv, s.log, nullptr});
  const ptv::ClientRequest request{{s.config.policy, s.config.phone},
                                   {s.log, s.accounts, helper, s.groups, s.grace},
                                   user,
                                   set_id,
                                   s.rhost};
  return ptv::authenticate_client(request);
}

// A helper that answers from a script, for what a broken one may say.
class ScriptedHelper final : public ptv::HelperLink {
 public:
  explicit ScriptedHelper(const std::vector<ptv::Message>& says) {
    int fds[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    ours_ = ptv::FileDescriptor(fds[0]);
    theirs_ = ptv::FileDescriptor(fds[1]);
    channel_ = std::make_unique<ptv::MessageChannel>(ours_.get());
    ptv::MessageChannel them(theirs_.get());
    for (const auto& m : says) (void)them.send(m);
    // Then it says nothing more (the module reads the end), while what the
    // module sends still goes in.
    shutdown(theirs_.get(), SHUT_WR);
  }
  ptv::MessageChannel& channel() override { return *channel_; }

 private:
  ptv::FileDescriptor ours_, theirs_;
  std::unique_ptr<ptv::MessageChannel> channel_;
};

struct Harness {
  std::string extra;
  std::string user = "alice";
  FakeConversation conv;
  CapturingLogger log;
  FakeHttp http;
  std::string gecos;
  bool set_id = false;
  std::string rhost;  // PAM_RHOST
  FakeGroups groups;
  FakeGrace grace;
  int helper_starts = 0;
  std::vector<ptv::Message> scripted;  // non-empty: a scripted helper
  void say(ptv::Message m) { scripted.push_back(std::move(m)); }
  std::vector<std::string> helper_users;  // whom the sources were asked for

  class Accounts final : public ptv::AccountDirectory {
   public:
    explicit Accounts(const std::string& gecos) : gecos_(gecos) {}
    std::expected<ptv::Account, ptv::AccountError> resolve(const std::string& u) override {
      if (u == "nobody-here")
        return std::unexpected(ptv::AccountError{ptv::AccountError::Kind::Unknown,
                                                 "no such account"});
      return ptv::Account{u, gecos_, 1000, 1000};
    }

   private:
    std::string gecos_;
  };

  AuthResult run() {
    auto config = ptv::parse_config_text(config_text(extra), "/test/ptv.conf");
    if (!config) fail_msg("config: %s", config.error().message.c_str());
    Accounts accounts(gecos);
    FakeStarter start;
    start.make = [this]() -> std::expected<std::unique_ptr<ptv::HelperLink>, std::string> {
      if (!scripted.empty()) return std::make_unique<ScriptedHelper>(scripted);
      return std::make_unique<ThreadHelper>(world());
    };
    AuthResult r = login({*config, start, conv, log, accounts, groups, grace, rhost},
                         user, set_id);
    helper_starts += start.starts;
    return r;
  }

  std::unique_ptr<ptv::HelperWorld> world() {
    auto w = std::make_unique<FakeWorld>();
    w->config = [this](const std::string& path) {
      return ptv::parse_config_text(config_text(extra), path);
    };
    w->transport = [this]()
        -> std::expected<std::unique_ptr<ptv::HttpTransport>, TransportError> {
      return std::make_unique<ForwardingTransport>(http);
    };
    w->answer = [this](ptv::PhoneSource, const std::string& u) {
      helper_users.push_back(u);
      return Answer{Answer::Kind::Values, {kPhone}, {}};
    };
    return w;
  }
};

void expect(const AuthResult& r, Outcome want) {
  if (r.outcome != want)
    fail_msg("outcome %s (%s), expected %s", ptv::describe(r.outcome),
             r.detail.c_str(), ptv::describe(want));
}

// A login that needs no code never starts the helper.
void test_no_code_no_helper(void**) {
  struct Case {
    const char* user;
    const char* gecos;
    const char* extra;
    Outcome want;
  };
  const Case cases[] = {
      {"bob", "", "no_phone = \"skip\";\n", Outcome::NoPhoneSkipped},
      {"bob", "", "", Outcome::NoPhoneDenied},
      {"bob", "Bob,,555-0100,,",
       "phone_sources = [ \"gecos\", \"ldap\" ];\n"
       "ldap = { uri = \"ldaps://d.example\"; base = \"dc=x\"; };\n",
       Outcome::InvalidPhone},
      {"nobody-here", "", "", Outcome::UnknownUser},
  };
  for (const Case& c : cases) {
    Harness h;
    h.user = c.user;
    h.gecos = c.gecos;
    h.extra = c.extra;
    expect(h.run(), c.want);
    assert_int_equal(h.helper_starts, 0);
  }
}

// A code to send: the helper does the Twilio part, the code typed here
// crosses once, and the result comes back.
void test_code_login_through_the_helper(void**) {
  Harness h;
  h.conv.script = {kBadCode, kGoodCode};
  h.http.check_replies = {pending(), approved()};
  const AuthResult r = h.run();
  expect(r, Outcome::Approved);
  assert_int_equal(h.helper_starts, 1);
  assert_str_eq(r.account, "alice");
  assert_str_eq(r.masked_phone, kMasked);
  assert_str_eq(r.verification_sid, kSid);
  assert_int_equal(r.attempts, 2);
  assert_int_equal(h.conv.prompts.size(), 2);
  assert_contains(h.conv.prompts[1], "Wrong code; 2 attempts left.");
  assert_int_equal(h.http.count(Kind::Check), 2);
}

// The password an earlier module stored never crosses to the helper, let
// alone to Twilio: the module reports it as such.
// Nor is it taken for one of the words at the prompt, even when it is one.
void test_password_never_crosses(void**) {
  for (const std::string password : {"20240607", "call"}) {
    Harness h;
    h.conv.password = password;
    h.conv.script = {password, kGoodCode};
    h.http.check_replies = {approved()};
    expect(h.run(), Outcome::Approved);
    assert_int_equal(h.http.count(Kind::Check), 1);
    assert_int_equal(h.http.count(Kind::Start), 1);
    for (const auto& q : h.http.requests)
      assert_not_contains(q.body, "20240607");
  }
}

// resend and call are recognised where they are typed and cross as a
// request: the helper sends the code again; nothing typed reaches Twilio
// but the code.
void test_resend_crosses_as_a_request(void**) {
  Harness h;
  h.conv.script = {" Resend ", "call", kGoodCode};
  h.http.check_replies = {approved()};
  const AuthResult r = h.run();
  expect(r, Outcome::Approved);
  assert_int_equal(h.http.count(Kind::Start), 3);
  assert_contains(h.http.requests[1].body, "Channel=sms");
  assert_contains(h.http.requests[2].body, "Channel=call");
  assert_int_equal(h.http.count(Kind::Check), 1);
  assert_int_equal(r.attempts, 1);
  assert_str_eq(h.conv.prompts[0], "SMS code sent to +1******4567 (or type resend, call): ");
  assert_str_eq(h.conv.prompts[2],
                "Calling you with the code. Code from the call to +1******4567: ");
  for (const auto& q : h.http.requests) {
    assert_not_contains(q.body, "Resend");
    assert_not_contains(q.body, "resend");
  }
}

// The directory is the helper's: asked for the account's own name, from
// the first source the module could not answer.
void test_remote_source_in_the_helper(void**) {
  Harness h;
  h.user = "bob";
  h.extra = "phone_sources = [ \"users\", \"ldap\" ];\n"
            "ldap = { uri = \"ldaps://d.example\"; base = \"dc=x\"; };\n";
  h.conv.script = {kGoodCode};
  h.http.check_replies = {approved()};
  expect(h.run(), Outcome::Approved);
  assert_int_equal(h.helper_users.size(), 1);
  assert_str_eq(h.helper_users[0], "bob");
  // Found in the file's list first: the directory is not asked.
  Harness local;
  local.extra = h.extra;
  local.conv.script = {kGoodCode};
  local.http.check_replies = {approved()};
  expect(local.run(), Outcome::Approved);
  assert_true(local.helper_users.empty());
  // A source the module cannot read comes first: the module never decides
  // past it from a later source (alice is in the file's list); the helper
  // goes on from there.
  Harness remote_first;
  remote_first.extra = "phone_sources = [ \"command\", \"users\" ];\n"
                       "lookup_command = \"/usr/local/bin/phone-of\";\n";
  remote_first.conv.script = {kGoodCode};
  remote_first.http.check_replies = {approved()};
  expect(remote_first.run(), Outcome::Approved);
  assert_int_equal(remote_first.helper_starts, 1);
  assert_int_equal(remote_first.helper_users.size(), 1);
  assert_str_eq(remote_first.helper_users[0], "alice");
}

// failmode safe does not open for a set-id caller, even if a helper said
// so; outcomes only the module decides, malformed fields, garbage, a helper
// that ends: internal errors.
void test_what_the_module_takes_from_the_helper(void**) {
  ptv::AuthResult open;
  open.outcome = Outcome::FailOpen;
  open.detail = "starting the verification: service unavailable";
  Harness setid;
  setid.set_id = true;
  setid.say(ptv::ResultMsg{open});
  const AuthResult r = setid.run();
  expect(r, Outcome::Unavailable);
  assert_contains(r.detail, "does not apply to set-id callers");
  Harness plain;
  plain.extra = "failmode = \"safe\";\n";
  plain.say(ptv::ResultMsg{open});
  expect(plain.run(), Outcome::FailOpen);
  // The module's own reading of the policy holds: failmode secure there
  // turns a helper's fail-open into a denial.
  Harness secure;
  secure.say(ptv::ResultMsg{open});
  const AuthResult sr = secure.run();
  expect(sr, Outcome::Unavailable);
  assert_contains(sr.detail, "failmode is not safe in the configuration the module read");

  // skipped-no-phone stands only where the module could not know better:
  // no_phone skip in its own reading, no number found locally, no send or
  // prompt before it.
  ptv::AuthResult no_phone;
  no_phone.outcome = Outcome::NoPhoneSkipped;
  const auto skipped_by_helper = [&](const std::string& user, const std::string& extra,
                                     bool prompt_first) {
    Harness h;
    h.user = user;
    h.extra = "phone_sources = [ \"users\", \"command\" ];\n"
              "lookup_command = \"/usr/local/bin/phone-of\";\n" + extra;
    if (prompt_first) h.say(ptv::PromptMsg{"SMS code sent to +1******4567: "});
    h.say(ptv::ResultMsg{no_phone});
    h.conv.script = {kGoodCode};
    return h.run().outcome;
  };
  const std::string skip = "no_phone = \"skip\";\n";
  assert_int_equal(skipped_by_helper("bob", skip, false), Outcome::NoPhoneSkipped);
  assert_int_equal(skipped_by_helper("bob", "", false), Outcome::NoPhoneDenied);
  assert_int_equal(skipped_by_helper("bob", skip, true), Outcome::InternalError);
  assert_int_equal(skipped_by_helper("alice", skip, false), Outcome::InternalError);

  ptv::AuthResult skipped;
  skipped.outcome = Outcome::ServiceSkipped;
  Harness only_module;
  only_module.say(ptv::ResultMsg{skipped});
  expect(only_module.run(), Outcome::InternalError);

  ptv::AuthResult forged;
  forged.outcome = Outcome::Approved;
  forged.masked_phone = "+15551234567 user=root";
  Harness malformed;
  malformed.say(ptv::ResultMsg{forged});
  expect(malformed.run(), Outcome::InternalError);

  Harness out_of_turn;
  out_of_turn.say(ptv::RequestMsg{});
  const AuthResult t = out_of_turn.run();
  expect(t, Outcome::InternalError);

  Harness silent;  // says nothing and ends
  silent.say(ptv::LogMsg{6, "a line"});
  const AuthResult s = silent.run();
  expect(s, Outcome::InternalError);
  assert_contains(s.detail, "helper: it ended without an answer");
  assert_true(silent.log.has(LOG_INFO, "a line"));
}

void test_helper_that_cannot_start(void**) {
  auto config = ptv::parse_config_text(config_text(""), "/test/ptv.conf");
  FakeConversation conv;
  CapturingLogger log;
  Harness::Accounts accounts("");
  ptv::HelperProgram program("/nonexistent/twilio-verify-helper");
  FakeGroups groups;
  FakeGrace grace;
  const AuthResult r =
      login({*config, program, conv, log, accounts, groups, grace}, "alice", false);
  expect(r, Outcome::InternalError);
  assert_contains(r.detail, "cannot start the helper: helper /nonexistent");
}


// ------------------------------------------------------- who is asked for a code

// The outcome line as the module logs it.
std::string logged(const AuthResult& r) {
  CapturingLogger log;
  ptv::log_outcome(log, r.account, r, 1);
  return log.lines.empty() ? std::string() : log.lines.back().text;
}

// A login that must ask for the code: the helper starts and approves.
void expect_code(Harness& h) {
  h.conv.script = {kGoodCode};
  h.http.check_replies = {approved()};
  expect(h.run(), Outcome::Approved);
  assert_int_equal(h.helper_starts, 1);
}

// Members of an exempt group (primary or supplementary: the directory's
// list) skip the code without a lookup or the helper; others do not; a
// group that does not resolve exempts no one and is a warning.
void test_exempt_groups(void**) {
  Harness member;
  member.extra = "exempt_groups = [ \"typo\", \"deploy\" ];\n";
  member.groups.gids = {{"deploy", 2000}};
  member.groups.member_of = {1000, 2000};
  member.rhost = "192.0.2.7";
  const AuthResult r = member.run();
  expect(r, Outcome::ExemptGroup);
  assert_int_equal(ptv::pam_result_for(r.outcome), PAM_SUCCESS);
  assert_int_equal(member.helper_starts, 0);
  assert_true(member.conv.prompts.empty());
  assert_true(member.log.has(LOG_WARNING, "group \"typo\" does not resolve"));
  const std::string line = logged(r);
  assert_contains(line, "result=allowed-exempt-group");
  assert_contains(line, "exempt group \"deploy\"; rhost 192.0.2.7");

  Harness other;
  other.extra = member.extra;
  other.groups.gids = {{"deploy", 2000}};
  other.groups.member_of = {1000, 3000};
  expect_code(other);

  Harness typo_only;  // the only group does not resolve: nobody is exempt
  typo_only.extra = "exempt_groups = [ \"typo\" ];\n";
  typo_only.groups.member_of = {1000, 2000};
  expect_code(typo_only);
  assert_true(typo_only.log.has(LOG_WARNING, "it exempts no one"));

  Harness unreadable;  // the account's groups cannot be read
  unreadable.extra = member.extra;
  unreadable.groups.gids = {{"deploy", 2000}};
  unreadable.groups.unreadable = true;
  expect_code(unreadable);
  assert_true(unreadable.log.has(LOG_WARNING, "cannot be read"));
}

// PAM_RHOST inside an exempt network skips the code: IPv4, IPv6, an
// IPv4-mapped address in an IPv4 network. Outside, a host name, or no
// PAM_RHOST at all: the code.
void test_exempt_networks(void**) {
  const std::string nets =
      "exempt_networks = [ \"10.0.0.0/8\", \"2001:db8::/32\" ];\n";
  struct Row {
    const char* rhost;
    bool exempt;
  } rows[] = {
      {"10.1.2.3", true},          {"2001:db8:1::9", true},
      {"::ffff:10.9.8.7", true},   {"11.1.2.3", false},
      {"2001:db9::1", false},      {"::ffff:11.9.8.7", false},
      {"host.example.org", false}, {"", false},
  };
  for (const Row& row : rows) {
    Harness h;
    h.extra = nets;
    h.rhost = row.rhost;
    h.log.set_debug(true);
    if (row.exempt) {
      const AuthResult r = h.run();
      expect(r, Outcome::ExemptNetwork);
      assert_int_equal(h.helper_starts, 0);
      assert_contains(logged(r), "result=allowed-exempt-network");
      assert_contains(r.detail, "in exempt network");
    } else {
      expect_code(h);
    }
  }
  Harness named;
  named.extra = nets;
  named.rhost = "host.example.org";
  named.log.set_debug(true);
  expect_code(named);
  assert_true(named.log.has(LOG_DEBUG, "is not an IP address"));
}

// Grace: after an approved code, the same account from the same address
// skips the code until the period ends; another address, no address, a
// host name or a failed login: the code. Looking never extends an entry.
void test_grace_period(void**) {
  FakeGrace store;
  const auto login = [&store](const std::string& rhost, Outcome want,
                              std::vector<std::string> typed = {kGoodCode}) {
    Harness h;
    h.extra = "grace_period_s = 600;\n";
    h.rhost = rhost;
    h.grace = store;
    h.conv.script.assign(typed.begin(), typed.end());
    h.http.check_replies = {approved()};
    const AuthResult r = h.run();
    expect(r, want);
    store = h.grace;
    return h.helper_starts;
  };
  assert_int_equal(login("192.0.2.7", Outcome::Approved), 1);
  assert_int_equal(login("192.0.2.7", Outcome::Grace), 0);
  assert_int_equal(login("::ffff:192.0.2.7", Outcome::Grace), 0);
  assert_int_equal(login("192.0.2.8", Outcome::Approved), 1);
  store.now += 599;
  assert_int_equal(login("192.0.2.7", Outcome::Grace), 0);
  store.now += 1;  // the entry of the first login ends now, not later
  assert_int_equal(login("192.0.2.7", Outcome::Approved), 1);
  // No address, or a host name: never recorded, never found.
  const int records = store.records;
  assert_int_equal(login("", Outcome::Approved), 1);
  assert_int_equal(login("", Outcome::Approved), 1);
  assert_int_equal(login("host.example.org", Outcome::Approved), 1);
  assert_int_equal(store.records, records);
  // A failed login creates nothing.
  assert_int_equal(login("198.51.100.1", Outcome::WrongCode, {"1", "2", "3"}), 1);
  assert_int_equal(login("198.51.100.1", Outcome::Approved), 1);
}

// Exempt logins create no grace; grace off (0) neither finds nor records;
// a state store that cannot be used asks for the code.
void test_grace_only_from_an_approval(void**) {
  Harness exempt;
  exempt.extra = "grace_period_s = 600;\nexempt_networks = [ \"10.0.0.0/8\" ];\n";
  exempt.rhost = "10.1.2.3";
  expect(exempt.run(), Outcome::ExemptNetwork);
  assert_int_equal(exempt.grace.records, 0);

  Harness off;
  off.rhost = "192.0.2.7";
  expect_code(off);
  assert_int_equal(off.grace.finds + off.grace.records, 0);

  Harness broken;
  broken.extra = "grace_period_s = 600;\n";
  broken.rhost = "192.0.2.7";
  broken.grace.broken = true;
  expect_code(broken);
  assert_true(broken.log.has(LOG_WARNING, "grace entries cannot be read"));
  assert_true(broken.log.has(LOG_WARNING, "grace entry cannot be written"));
}

// The helper can never answer what only the module's policy decides.
void test_helper_cannot_answer_a_policy_outcome(void**) {
  for (Outcome o : {Outcome::ExemptGroup, Outcome::ExemptNetwork, Outcome::Grace}) {
    ptv::AuthResult forged;
    forged.outcome = o;
    Harness h;
    h.say(ptv::ResultMsg{forged});
    expect(h.run(), Outcome::InternalError);
  }
}
}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_code_no_helper),
      cmocka_unit_test(test_code_login_through_the_helper),
      cmocka_unit_test(test_password_never_crosses),
      cmocka_unit_test(test_resend_crosses_as_a_request),
      cmocka_unit_test(test_remote_source_in_the_helper),
      cmocka_unit_test(test_what_the_module_takes_from_the_helper),
      cmocka_unit_test(test_helper_that_cannot_start),
      cmocka_unit_test(test_exempt_groups),
      cmocka_unit_test(test_exempt_networks),
      cmocka_unit_test(test_grace_period),
      cmocka_unit_test(test_grace_only_from_an_approval),
      cmocka_unit_test(test_helper_cannot_answer_a_policy_outcome),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
