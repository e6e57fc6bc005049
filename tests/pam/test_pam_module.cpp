// PAM-level tests: real libpam (under pam_wrapper) loads the real module,
// nss_wrapper provides users with GECOS phones, and the module talks HTTPS
// to the bundled Verify emulator. Each case is a row of a table: the
// configuration, the scripted answers to the conversation, the emulator's
// faults, and what must come out (PAM result, prompt, requests, log).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include <setjmp.h>
#include <cmocka.h>
#include <libpamtest.h>
}

#include <security/pam_appl.h>

#include "emulator_process.hpp"
#include "state/send_limit.hpp"

namespace {

const std::string kAccount = "AC0123456789abcdef0123456789abcdef";
const std::string kToken = "tok3n-must-never-be-logged-5f2a9c";
const std::string kService = "VAfedcba9876543210fedcba9876543210";
const std::string kApiKey = "SK00112233445566778899aabbccddeeff";
const std::string kApiSecret = "api-secret-never-logged-77e1";

std::string env_or_die(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) {
    std::fprintf(stderr, "%s is not set\n", name);
    std::exit(2);
  }
  return v;
}

ptv_test::EmulatorProcess* g_em = nullptr;
std::string g_work;         // where ptv.conf lives (named by the services)
std::string g_previous_code;

// ---------------------------------------------------------------- answers
enum class Reply {
  Right,             // the code from the emulator's outbox
  Wrong,             // a well-formed code that is not the right one
  Text,              // a literal string
  ConvError,         // the conversation function fails
  NullReply,         // success with a NULL reply
  AdvanceThenRight,  // move the emulator's clock past expiry first
  Previous,          // the code of the previous successful case
  RightPadded,       // the right code with white space around it
};

struct Answer {
  Reply kind;
  std::string text;
};

Answer right() { return {Reply::Right, {}}; }
Answer wrong() { return {Reply::Wrong, {}}; }
Answer text(std::string t) { return {Reply::Text, std::move(t)}; }

struct ConvScript {
  std::vector<Answer> answers;
  std::size_t next = 0;
  std::vector<std::string> prompts;
  std::vector<std::string> errors;
  std::vector<std::string> codes_sent;  // codes typed, to check the log
};

int conversation(int n, const struct pam_message** msg,
                 struct pam_response** resp, void* data) {
  auto* script = static_cast<ConvScript*>(data);
  auto* replies =
      static_cast<pam_response*>(calloc(n, sizeof(struct pam_response)));
  if (replies == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    const std::string text = msg[i]->msg ? msg[i]->msg : "";
    if (msg[i]->msg_style == PAM_ERROR_MSG || msg[i]->msg_style == PAM_TEXT_INFO) {
      script->errors.push_back(text);
      continue;
    }
    script->prompts.push_back(text);
    if (script->next >= script->answers.size()) {
      free(replies);
      return PAM_CONV_ERR;
    }
    const Answer& a = script->answers[script->next++];
    std::string value;
    switch (a.kind) {
      case Reply::ConvError:
        free(replies);
        return PAM_CONV_ERR;
      case Reply::NullReply:
        replies[i].resp = nullptr;
        continue;
      case Reply::Text:
        value = a.text;
        break;
      case Reply::AdvanceThenRight:
        g_em->advance_clock(601);
        [[fallthrough]];
      case Reply::Right:
        value = g_em->last_code("");
        break;
      case Reply::RightPadded:
        value = " \t" + g_em->last_code("") + " \r\n";
        break;
      case Reply::Wrong:
        value = g_em->last_code("") == "000000" ? "000001" : "000000";
        break;
      case Reply::Previous:
        value = g_previous_code;
        break;
    }
    script->codes_sent.push_back(value);
    replies[i].resp = strdup(value.c_str());
  }
  *resp = replies;
  return PAM_SUCCESS;
}

// ---------------------------------------------------------------- config
std::string state_dir() { return g_work + "/state"; }

// The module's state file (one table for every user).
std::string state_file() { return state_dir() + "/state.v1"; }

// The send limit's own functions seed and read the state file: any count
// and window, so that seeded sends of any age are kept.
ptv::SendLimitSettings state_settings() {
  ptv::SendLimitSettings s;
  s.state_dir = state_dir();
  s.count = ptv::kMaxStampsPerRecord;
  s.window_s = 86400;
  return s;
}

using Settings = std::map<std::string, std::string>;  // key -> value text

Settings base_settings() {
  return {
      {"twilio.account_sid", "\"" + kAccount + "\""},
      {"twilio.auth_token", "\"" + kToken + "\""},
      {"twilio.service_sid", "\"" + kService + "\""},
      {"twilio.api_url", "\"" + g_em->api_url() + "\""},
      {"twilio.ca_file", "\"" + g_em->ca_file() + "\""},
      {"twilio.connect_timeout_ms", "1000"},
      {"twilio.timeout_ms", "2000"},
      {"failmode", "\"secure\""},
      {"no_phone", "\"deny\""},
      {"max_attempts", "3"},
      {"phone_sources", "[ \"users\", \"gecos\" ]"},
      {"gecos_field", "3"},
      {"users",
       "( (\"alice\", \"+15551230001\"), (\"erin\", \"+15551230005\") )"},
      // Never the system's /var/lib: a directory of the test's own, removed
      // before every case so that each starts with no sends counted.
      {"state_dir", "\"" + state_dir() + "\""},
  };
}

std::string render(const Settings& overrides) {
  Settings s = base_settings();
  for (const auto& [k, v] : overrides) {
    if (v.empty()) {
      s.erase(k);
    } else {
      s[k] = v;
    }
  }
  std::string top, twilio;
  for (const auto& [k, v] : s) {
    if (k.starts_with("twilio.")) {
      twilio += "  " + k.substr(7) + " = " + v + ";\n";
    } else {
      top += k + " = " + v + ";\n";
    }
  }
  return "twilio = {\n" + twilio + "};\n" + top;
}

void write_config(const std::string& text, mode_t mode) {
  const std::string path = g_work + "/ptv.conf";
  unlink(path.c_str());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text.data(), text.size()),
                   static_cast<ssize_t>(text.size()));
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

// ---------------------------------------------------------------- cases
struct Case {
  const char* name;
  const char* user = "alice";
  const char* service = "ptv";
  Settings config;           // overrides of base_settings(); "" removes
  const char* raw_config = nullptr;  // replaces the whole file when set
  bool shipped_template = false;     // the file is conf/'s template
  mode_t mode = 0600;
  bool symlink_config = false;
  std::vector<Answer> answers;
  const char* faults = nullptr;  // JSON for the emulator's /faults
  bool refuse = false;           // emulator closes its listening socket
  int expected = PAM_SUCCESS;
  const char* first_prompt = "SMS code sent to +1******0001 (or type resend, call): ";
  int sends = -1;   // SMS in the outbox afterwards (-1: not checked)
  int checks = -1;  // VerificationCheck requests (-1: not checked)
  int cancels = -1; // cancel requests (-1: not checked)
  const char* log_result = nullptr;    // e.g. "result=approved"
  const char* log_contains = nullptr;  // another substring of the log
  const char* user_message = nullptr;  // substring of a PAM_ERROR_MSG
  long max_ms = -1;                    // upper bound on the time taken
  int flags = 0;                       // pam_authenticate flags
  bool no_messages = false;            // no PAM_ERROR_MSG may be shown
  bool keep_code = false;              // remember the code for Previous
  // The send limit's state before the case: sends_before starts of the
  // user, sends_age_s seconds ago, in a state directory of mode
  // state_dir_mode (0: the module creates the directory itself).
  int sends_before = 0;
  const char* sends_before_user = nullptr;  // default: the case's user
  long sends_age_s = 0;
  mode_t state_dir_mode = 0;
  const char* state_file_text = nullptr;  // raw content of state.v1 instead
  int sends_after = -1;  // the user's sends recorded afterwards
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = [] {
    std::vector<Case> v;
    // --- the normal path, from the users list and from GECOS
    v.push_back({.name = "right_code_first_try",
                 .answers = {right()}, .expected = PAM_SUCCESS, .sends = 1,
                 .checks = 1, .cancels = 0, .log_result = "result=approved",
                 .log_contains = "phone=+1******0001",
                 .keep_code = true});
    v.push_back({.name = "reused_code_from_earlier_login_denied",
                 .answers = {{Reply::Previous, {}}, {Reply::Previous, {}},
                             {Reply::Previous, {}}},
                 .expected = PAM_AUTH_ERR, .sends = 1, .checks = 3,
                 .cancels = 1, .log_result = "result=denied-wrong-code"});
    v.push_back({.name = "wrong_then_right",
                 .answers = {wrong(), right()}, .expected = PAM_SUCCESS,
                 .sends = 1, .checks = 2, .cancels = 0,
                 .log_result = "result=approved"});
    v.push_back({.name = "wrong_max_attempts_times",
                 .answers = {wrong(), wrong(), wrong()},
                 .expected = PAM_AUTH_ERR, .sends = 1, .checks = 3,
                 .cancels = 1, .log_result = "result=denied-wrong-code",
                 .user_message = "Wrong code"});
    v.push_back({.name = "max_attempts_one_wrong_denied",
                 .config = {{"max_attempts", "1"}}, .answers = {wrong()},
                 .expected = PAM_AUTH_ERR, .checks = 1, .cancels = 1,
                 .log_result = "result=denied-wrong-code"});
    v.push_back({.name = "max_attempts_one_right_approved",
                 .config = {{"max_attempts", "1"}}, .answers = {right()},
                 .expected = PAM_SUCCESS, .checks = 1,
                 .log_result = "result=approved"});
    v.push_back({.name = "expired_code_denied",
                 .answers = {{Reply::AdvanceThenRight, {}}},
                 .expected = PAM_AUTH_ERR, .checks = 1, .cancels = 0,
                 .log_result = "result=denied-by-twilio",
                 .log_contains = "20404", .user_message = "expired"});
    v.push_back({.name = "gecos_phone_approved", .user = "bob",
                 .answers = {right()}, .expected = PAM_SUCCESS,
                 .first_prompt = "SMS code sent to +1******0002 (or type resend, call): ",
                 .sends = 1, .log_result = "result=approved"});
    v.push_back({.name = "gecos_only_source_users_entry_ignored",
                 .user = "alice",
                 .config = {{"phone_sources", "[ \"gecos\" ]"}},
                 .answers = {}, .expected = PAM_AUTH_ERR,
                 .first_prompt = nullptr, .sends = 0,
                 .log_result = "result=denied-no-phone"});
    v.push_back({.name = "source_order_users_first", .user = "erin",
                 .answers = {right()}, .expected = PAM_SUCCESS,
                 .first_prompt = "SMS code sent to +1******0005 (or type resend, call): "});
    v.push_back({.name = "source_order_gecos_first", .user = "erin",
                 .config = {{"phone_sources", "[ \"gecos\", \"users\" ]"}},
                 .answers = {right()}, .expected = PAM_SUCCESS,
                 .first_prompt = "SMS code sent to +4*******0055 (or type resend, call): "});
    v.push_back({.name = "api_key_credentials_approved",
                 .config = {{"twilio.auth_token", ""},
                            {"twilio.api_key_sid", "\"" + kApiKey + "\""},
                            {"twilio.api_key_secret", "\"" + kApiSecret + "\""}},
                 .answers = {right()}, .expected = PAM_SUCCESS, .sends = 1,
                 .log_result = "result=approved"});
    v.push_back({.name = "api_key_wrong_secret_401",
                 .config = {{"twilio.auth_token", ""},
                            {"twilio.api_key_sid", "\"" + kApiKey + "\""},
                            {"twilio.api_key_secret", "\"wrong-secret\""}},
                 .answers = {}, .expected = PAM_SERVICE_ERR,
                 .first_prompt = nullptr, .sends = 0,
                 .log_result = "result=denied-config-error",
                 .log_contains = "20003"});
    // --- no phone, with deny and with skip (skip proven through a stack
    //     that ends in pam_permit, paired with a wrong code in that stack)
    v.push_back({.name = "no_phone_deny", .user = "carol",
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-no-phone"});
    v.push_back({.name = "no_phone_skip_then_permit", .user = "carol",
                 .service = "ptv_then_permit",
                 .config = {{"no_phone", "\"skip\""}},
                 .expected = PAM_SUCCESS, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=skipped-no-phone"});
    v.push_back({.name = "skip_stack_still_denies_wrong_code",
                 .service = "ptv_then_permit",
                 .config = {{"no_phone", "\"skip\""}},
                 .answers = {wrong(), wrong(), wrong()},
                 .expected = PAM_AUTH_ERR,
                 .log_result = "result=denied-wrong-code"});
    // services: a service that is not listed is left to the rest of the
    // stack, before any lookup or request; a listed one asks for the code.
    v.push_back({.name = "service_not_listed_skipped_then_permit",
                 .service = "ptv_then_permit",
                 .config = {{"services", "[ \"sshd\", \"sudo\" ]"}},
                 .expected = PAM_SUCCESS, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=skipped-service",
                 .log_contains = "service ptv_then_permit is not in services"});
    v.push_back({.name = "service_listed_asks_for_the_code",
                 .service = "ptv_then_permit",
                 .config = {{"services", "[ \"sshd\", \"ptv_then_permit\" ]"}},
                 .answers = {right()}, .expected = PAM_SUCCESS, .checks = 1,
                 .log_result = "result=approved"});
    v.push_back({.name = "no_phone_skip_alone_is_not_success",
                 .user = "carol", .config = {{"no_phone", "\"skip\""}},
                 .expected = PAM_PERM_DENIED, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=skipped-no-phone"});
    v.push_back({.name = "invalid_gecos_phone_denied_even_with_skip",
                 .user = "dave", .config = {{"no_phone", "\"skip\""}},
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-invalid-phone"});
    // A name that is no account is denied before any lookup or request.
    v.push_back({.name = "unknown_user_denied", .user = "nobody-here",
                 .expected = PAM_USER_UNKNOWN, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-unknown-user"});
    // --- hostile user names: refused or looked up, never sent anywhere,
    //     and logged only in a safe form
    static const std::string long_user(300, 'u');
    v.push_back({.name = "very_long_user_name_refused", .user = long_user.c_str(),
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-internal-error",
                 .log_contains = "longer than 256"});
    v.push_back({.name = "user_name_with_metacharacters_unknown",
                 .user = "x/../%2F;$(id)`id`&a=b?c#d\n\"'",
                 .expected = PAM_USER_UNKNOWN, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-unknown-user",
                 .log_contains = "user=x/../%2F;$(id)`id`&a\\x3db?c#d\\x0a\"' "});
    // --- typed input is checked before any request
    v.push_back({.name = "letters_then_right",
                 .answers = {text("abcdef"), right()},
                 .expected = PAM_SUCCESS, .checks = 1,
                 .log_result = "result=approved"});
    v.push_back({.name = "bad_inputs_never_reach_twilio",
                 .answers = {text(""), text("12 34"), text(std::string(10240, '1'))},
                 .expected = PAM_AUTH_ERR, .checks = 0, .cancels = 1,
                 .log_result = "result=denied-wrong-code"});
    v.push_back({.name = "openssh_fake_password_rejected",
                 .answers = {text("\b\n\r\177INCORRECT"), text("123"),
                             text("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9")},
                 .expected = PAM_AUTH_ERR, .checks = 0,
                 .log_result = "result=denied-wrong-code"});
    v.push_back({.name = "spaces_around_code_trimmed",
                 .answers = {{Reply::RightPadded, {}}}, .expected = PAM_SUCCESS,
                 .checks = 1, .log_result = "result=approved"});
    v.push_back({.name = "conversation_error", .answers = {{Reply::ConvError, {}}},
                 .expected = PAM_CONV_ERR, .checks = 0, .cancels = 1,
                 .log_result = "result=denied-conversation-error"});
    v.push_back({.name = "null_reply", .answers = {{Reply::NullReply, {}}},
                 .expected = PAM_CONV_ERR, .checks = 0, .cancels = 1,
                 .log_result = "result=denied-conversation-error"});
    // --- Twilio refusing
    v.push_back({.name = "too_many_sends_60203",
                 .faults = R"({"faults":[{"kind":"twilio_error","http_status":429,"code":60203,"match":"Verifications"}]})",
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .log_result = "result=denied-by-twilio",
                 .log_contains = "60203", .user_message = "Too many codes"});
    v.push_back({.name = "silent_flag_hides_messages",
                 .config = {{"max_attempts", "1"}}, .answers = {wrong()},
                 .expected = PAM_AUTH_ERR, .flags = PAM_SILENT,
                 .no_messages = true});
    v.push_back({.name = "without_silent_flag_message_shown",
                 .config = {{"max_attempts", "1"}}, .answers = {wrong()},
                 .expected = PAM_AUTH_ERR, .user_message = "Wrong code"});
    v.push_back({.name = "unknown_service_sid_is_config_error",
                 .config = {{"twilio.service_sid",
                             "\"VA00000000000000000000000000000000\""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-config-error",
                 .log_contains = "check service_sid"});
    // --- after a password module: the password is never sent as a code
    v.push_back({.name = "password_then_right_code", .user = "frank",
                 .service = "password_then_ptv",
                 .answers = {text("24681357"), right()},
                 .expected = PAM_SUCCESS,
                 .first_prompt = "Password: ", .sends = 1, .checks = 1,
                 .log_result = "result=approved"});
    v.push_back({.name = "password_repeated_as_code_never_sent",
                 .user = "frank", .service = "password_then_ptv",
                 .answers = {text("24681357"), text("24681357"),
                             text("24681357"), text("24681357")},
                 .expected = PAM_AUTH_ERR, .first_prompt = "Password: ",
                 .sends = 1, .checks = 0, .cancels = 1,
                 .log_result = "result=denied-wrong-code"});
    v.push_back({.name = "wrong_password_sends_no_sms", .user = "frank",
                 .service = "password_then_ptv",
                 .answers = {text("not-the-password"), right(), right(),
                             right()},
                 .expected = PAM_AUTH_ERR, .first_prompt = "Password: ",
                 .sends = 0, .checks = 0});
    v.push_back({.name = "too_many_checks_60202", .answers = {right()},
                 .faults = R"({"faults":[{"kind":"twilio_error","http_status":429,"code":60202,"match":"VerificationCheck"}]})",
                 .expected = PAM_AUTH_ERR, .checks = 1, .cancels = 0,
                 .log_result = "result=denied-by-twilio",
                 .user_message = "Too many wrong codes"});
    // --- Twilio unreachable or failing, under secure and safe
    v.push_back({.name = "emulator_down_secure", .refuse = true,
                 .expected = PAM_AUTHINFO_UNAVAIL, .first_prompt = nullptr,
                 .log_result = "result=denied-unavailable", .max_ms = 1500});
    v.push_back({.name = "emulator_down_safe", .config = {{"failmode", "\"safe\""}},
                 .refuse = true, .expected = PAM_SUCCESS,
                 .first_prompt = nullptr,
                 .log_result = "result=allowed-unavailable",
                 .log_contains = "WITHOUT the second factor"});
    v.push_back({.name = "emulator_hangs_secure",
                 .faults = R"({"faults":[{"kind":"hang","seconds":20}]})",
                 .expected = PAM_AUTHINFO_UNAVAIL, .first_prompt = nullptr,
                 .log_result = "result=denied-unavailable", .max_ms = 2600});
    v.push_back({.name = "emulator_hangs_safe",
                 .config = {{"failmode", "\"safe\""}},
                 .faults = R"({"faults":[{"kind":"hang","seconds":20}]})",
                 .expected = PAM_SUCCESS, .first_prompt = nullptr,
                 .log_result = "result=allowed-unavailable", .max_ms = 2600});
    v.push_back({.name = "http_500_secure",
                 .faults = R"({"faults":[{"kind":"status","http_status":500}]})",
                 .expected = PAM_AUTHINFO_UNAVAIL, .first_prompt = nullptr,
                 .log_result = "result=denied-unavailable"});
    v.push_back({.name = "http_500_safe", .config = {{"failmode", "\"safe\""}},
                 .faults = R"({"faults":[{"kind":"status","http_status":500}]})",
                 .expected = PAM_SUCCESS, .first_prompt = nullptr,
                 .log_result = "result=allowed-unavailable"});
    v.push_back({.name = "check_503_safe_after_prompt",
                 .config = {{"failmode", "\"safe\""}}, .answers = {right()},
                 .faults = R"({"faults":[{"kind":"status","http_status":503,"match":"VerificationCheck"}]})",
                 .expected = PAM_SUCCESS,
                 .log_result = "result=allowed-unavailable"});
    v.push_back({.name = "malformed_json_secure",
                 .faults = R"({"faults":[{"kind":"malformed_json"}]})",
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .log_result = "result=denied-bad-response"});
    v.push_back({.name = "malformed_json_safe_still_denies",
                 .config = {{"failmode", "\"safe\""}},
                 .faults = R"({"faults":[{"kind":"malformed_json"}]})",
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .log_result = "result=denied-bad-response"});
    v.push_back({.name = "approved_check_with_wrong_content_type_denied",
                 .config = {{"failmode", "\"safe\""}}, .answers = {right()},
                 .faults = R"({"faults":[{"kind":"wrong_content_type","match":"VerificationCheck"}]})",
                 .expected = PAM_AUTH_ERR,
                 .log_result = "result=denied-bad-response"});
    v.push_back({.name = "untrusted_ca_safe_still_denies",
                 .config = {{"failmode", "\"safe\""},
                            {"twilio.ca_file", "OTHER_CA"}},
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-bad-response",
                 .log_contains = "TLS"});
    // --- the per-user send limit (state in a directory of the test's own)
    v.push_back({.name = "send_limit_reached_denied_without_sms",
                 .config = {{"send_limit", "{ count = 2; window_s = 3600; }"}},
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-send-limit",
                 .log_contains = "send_limit.count = 2",
                 .user_message = "Too many codes were sent recently",
                 .sends_before = 2, .sends_after = 2});
    v.push_back({.name = "send_limit_below_limit_gets_in",
                 .config = {{"send_limit", "{ count = 2; window_s = 3600; }"}},
                 .answers = {right()}, .expected = PAM_SUCCESS, .sends = 1,
                 .log_result = "result=approved", .sends_before = 1,
                 .sends_after = 2});
    v.push_back({.name = "send_limit_default_is_five",
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-send-limit",
                 .log_contains = "send_limit.count = 5", .sends_before = 5,
                 .sends_after = 5});
    v.push_back({.name = "send_limit_other_user_at_limit_not_counted",
                 .user = "bob",
                 .config = {{"send_limit", "{ count = 2; }"}},
                 .answers = {right()}, .expected = PAM_SUCCESS,
                 .first_prompt = "SMS code sent to +1******0002 (or type resend, call): ",
                 .sends = 1, .log_result = "result=approved",
                 .sends_before = 2, .sends_before_user = "alice",
                 .sends_after = 1});
    v.push_back({.name = "send_limit_sends_older_than_window_expire",
                 .config = {{"send_limit", "{ count = 2; window_s = 60; }"}},
                 .answers = {right()}, .expected = PAM_SUCCESS, .sends = 1,
                 .log_result = "result=approved", .sends_before = 2,
                 .sends_age_s = 120, .sends_after = 1});
    v.push_back({.name = "send_limit_unreachable_start_not_counted",
                 .config = {{"send_limit", "{ count = 1; }"}}, .refuse = true,
                 .expected = PAM_AUTHINFO_UNAVAIL, .first_prompt = nullptr,
                 .log_result = "result=denied-unavailable", .sends_after = 0});
    v.push_back({.name = "send_limit_timed_out_start_stays_counted",
                 .faults = R"({"faults":[{"kind":"hang","seconds":20}]})",
                 .expected = PAM_AUTHINFO_UNAVAIL, .first_prompt = nullptr,
                 .log_result = "result=denied-unavailable", .max_ms = 3500,
                 .sends_after = 1});
    v.push_back({.name = "state_dir_group_writable_denied_even_failmode_safe",
                 .config = {{"failmode", "\"safe\""}}, .refuse = true,
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-state-error",
                 .log_contains = "chmod 700", .state_dir_mode = 0777});
    v.push_back({.name = "state_file_corrupt_denied",
                 .expected = PAM_AUTH_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-state-error",
                 .log_contains = "is corrupt", .state_dir_mode = 0700,
                 .state_file_text = "1700000000\nnot a time\n"});
    v.push_back({.name = "config_send_limit_unknown_key",
                 .config = {{"send_limit", "{ count = 5; burst = 2; }"}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "send_limit.burst: unknown setting"});
    v.push_back({.name = "config_send_limit_count_out_of_range",
                 .config = {{"send_limit", "{ count = 0; }"}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "between 1 and 100"});
    v.push_back({.name = "config_state_dir_relative",
                 .config = {{"state_dir", "\"var/lib/pam_twilio_verify\""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "state_dir: must be an absolute path"});
    // --- configuration errors: always PAM_SERVICE_ERR, never a request
    v.push_back({.name = "config_unknown_key", .config = {{"colour", "\"blue\""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-config-error",
                 .log_contains = "colour: unknown setting"});
    v.push_back({.name = "config_bad_account_sid",
                 .config = {{"twilio.account_sid", "\"AC123\""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "twilio.account_sid"});
    v.push_back({.name = "config_placeholder_token",
                 .config = {{"twilio.auth_token", "\"CHANGE_ME\""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "placeholder"});
    v.push_back({.name = "config_missing_service_sid",
                 .config = {{"twilio.service_sid", ""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "service_sid is missing"});
    v.push_back({.name = "config_http_url_refused",
                 .config = {{"twilio.api_url", "\"http://127.0.0.1:1\""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .log_contains = "https://"});
    v.push_back({.name = "config_parse_error_names_line",
                 .raw_config = "twilio = {\n  account_sid = ;\n};\n",
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .log_contains = "ptv.conf:2: parse error"});
    v.push_back({.name = "shipped_template_refused_until_edited",
                 .shipped_template = true, .expected = PAM_SERVICE_ERR,
                 .first_prompt = nullptr, .sends = 0,
                 .log_contains = "placeholder"});
    v.push_back({.name = "config_group_readable_refused", .mode = 0640,
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "chmod 600"});
    v.push_back({.name = "config_symlink_refused", .symlink_config = true,
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "symbolic link"});
    v.push_back({.name = "config_bad_failmode_never_opens",
                 .config = {{"failmode", "\"open\""}}, .refuse = true,
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .log_contains = "failmode"});
    v.push_back({.name = "config_wrong_token_401", .config =
                     {{"twilio.auth_token", "\"not-the-token\""},
                      {"failmode", "\"safe\""}},
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_result = "result=denied-config-error"});
    v.push_back({.name = "unknown_module_argument", .service = "ptv_badarg",
                 .expected = PAM_SERVICE_ERR, .first_prompt = nullptr,
                 .sends = 0, .log_contains = "unknown module argument"});
    v.push_back({.name = "debug_argument_accepted", .service = "ptv_debug",
                 .answers = {right()}, .expected = PAM_SUCCESS,
                 .log_contains = "started for user alice"});
    return v;
  }();
  return all;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The send limit's state for a case: a fresh directory, and the sends or
// raw state file the case asks for.
void prepare_state(const Case& c) {
  std::filesystem::remove_all(state_dir());
  if (c.state_dir_mode != 0 || c.sends_before > 0 ||
      c.state_file_text != nullptr) {
    assert_int_equal(mkdir(state_dir().c_str(), 0700), 0);
    assert_int_equal(
        chmod(state_dir().c_str(), c.state_dir_mode != 0 ? c.state_dir_mode : 0700),
        0);
    if (c.state_file_text != nullptr) {
      const std::string text = c.state_file_text;
      const int fd =
          open(state_file().c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
      assert_true(fd >= 0);
      assert_int_equal(write(fd, text.data(), text.size()),
                       static_cast<ssize_t>(text.size()));
      close(fd);
    }
    const long long now = static_cast<long long>(std::time(nullptr));
    const char* seeded = c.sends_before_user != nullptr ? c.sends_before_user
                                                        : c.user;
    for (int i = 0; i < c.sends_before; ++i) {
      const ptv::SendReservation r =
          ptv::reserve_send(state_settings(), seeded, now - c.sends_age_s - i);
      if (r.decision != ptv::SendDecision::Allowed)
        std::fprintf(stderr, "case %s: cannot seed a send: %s\n", c.name,
                     r.detail.c_str());
      assert_true(r.decision == ptv::SendDecision::Allowed);
    }
  }
}

void run_case(void** state) {
  const Case& c = *static_cast<const Case*>(*state);
  assert_true(g_em->reset());
  assert_true(g_em->refuse(false));

  // The configuration file for this case.
  if (c.shipped_template) {
    write_config(read_all(PTV_TEMPLATE), c.mode);
  } else if (c.raw_config != nullptr) {
    write_config(c.raw_config, c.mode);
  } else {
    Settings overrides = c.config;
    auto ca = overrides.find("twilio.ca_file");
    if (ca != overrides.end() && ca->second == "OTHER_CA")
      ca->second = "\"" + g_em->other_ca_file() + "\"";
    write_config(render(overrides), c.mode);
  }
  if (c.symlink_config) {
    const std::string real = g_work + "/ptv-real.conf";
    const std::string link = g_work + "/ptv.conf";
    rename(link.c_str(), real.c_str());
    assert_int_equal(symlink(real.c_str(), link.c_str()), 0);
  }
  if (c.faults != nullptr) assert_true(g_em->set_faults(c.faults));
  if (c.refuse) assert_true(g_em->refuse(true));

  prepare_state(c);

  // Run pam_authenticate, capturing what the module logs (pam_wrapper
  // writes pam_syslog lines to stderr).
  const std::string log_path = g_work + "/case.log";
  fflush(stderr);
  const int saved = dup(2);
  const int logfd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(saved >= 0 && logfd >= 0);
  dup2(logfd, 2);
  close(logfd);

  ConvScript script;
  script.answers = c.answers;
  struct pam_testcase tests[] = {
      pam_test_flags(PAMTEST_AUTHENTICATE, c.expected, c.flags)};
  const auto t0 = std::chrono::steady_clock::now();
  const enum pamtest_err perr =
      _pamtest_conv(c.service, c.user, conversation, &script, tests, 1, nullptr);
  const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  g_em->refuse(false);
  const std::string log = read_all(log_path);
  // Kept for the suite's final scan for secrets (secrets.scan).
  if (const char* keep = std::getenv("PTV_TEST_LOG_DIR")) {
    std::ofstream out(std::string(keep) + "/pam.module.log", std::ios::app);
    out << "== " << c.name << "\n" << log;
  }
  if (perr != PAMTEST_ERR_OK || tests[0].op_rv != c.expected)
    std::fprintf(stderr, "case %s: got %d (%s), expected %d; log:\n%s\n",
                 c.name, tests[0].op_rv, perr == PAMTEST_ERR_OK ? "ok" : "pamtest error", c.expected,
                 log.c_str());
  assert_int_equal(tests[0].op_rv, c.expected);
  assert_int_equal(perr, PAMTEST_ERR_OK);

  if (std::strcmp(c.service, "password_then_ptv") == 0 && c.sends == 1)
    assert_string_equal(script.prompts.at(1).c_str(),
                        "SMS code sent to +1******0006 (or type resend, call): ");
  if (c.first_prompt != nullptr) {
    assert_true(!script.prompts.empty());
    assert_string_equal(script.prompts.front().c_str(), c.first_prompt);
  } else {
    assert_int_equal(script.prompts.size(), 0);
  }
  if (c.answers.size() > 1 && c.expected == PAM_AUTH_ERR &&
      c.log_result != nullptr &&
      std::strcmp(c.log_result, "result=denied-wrong-code") == 0)
    assert_int_equal(script.prompts.size(), c.answers.size());

  const auto outbox = g_em->outbox();
  const auto requests = g_em->requests();
  int checks = 0, cancels = 0;
  for (const auto& r : requests) {
    if (r.path.ends_with("/VerificationCheck")) ++checks;
    if (r.path.find("/Verifications/VE") != std::string::npos &&
        r.status_field == "canceled")
      ++cancels;
  }
  if (c.sends >= 0) assert_int_equal(outbox.size(), c.sends);
  if (c.checks >= 0) assert_int_equal(checks, c.checks);
  if (c.cancels >= 0) assert_int_equal(cancels, c.cancels);
  if (c.log_result != nullptr) {
    if (log.find(c.log_result) == std::string::npos)
      std::fprintf(stderr, "log lacks %s:\n%s\n", c.log_result, log.c_str());
    assert_true(log.find(c.log_result) != std::string::npos);
  }
  if (c.log_contains != nullptr) {
    if (log.find(c.log_contains) == std::string::npos)
      std::fprintf(stderr, "log lacks %s:\n%s\n", c.log_contains, log.c_str());
    assert_true(log.find(c.log_contains) != std::string::npos);
  }
  if (c.user_message != nullptr) {
    bool found = false;
    for (const auto& e : script.errors)
      found = found || e.find(c.user_message) != std::string::npos;
    assert_true(found);
  }
  if (c.no_messages) assert_int_equal(script.errors.size(), 0);
  if (c.sends_after >= 0) {
    const auto recorded = ptv::recorded_sends(state_settings(), c.user);
    const long lines =
        recorded ? static_cast<long>(recorded->size()) : -1;
    if (lines != c.sends_after)
      std::fprintf(stderr, "case %s: %ld sends recorded, expected %d (%s)\n",
                   c.name, lines, c.sends_after,
                   recorded ? "" : recorded.error().detail.c_str());
    assert_int_equal(lines, c.sends_after);
  }
  // A state directory the module created itself is root's alone.
  struct stat st {};
  if (c.state_dir_mode == 0 && lstat(state_dir().c_str(), &st) == 0) {
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_mode & 07777, 0700);
  }
  if (c.max_ms >= 0) {
    if (ms > c.max_ms)
      std::fprintf(stderr, "case %s took %ld ms (bound %ld)\n", c.name, ms,
                   c.max_ms);
    assert_true(ms <= c.max_ms);
  }
  // Nothing secret in the log: the token, a full number, a typed code.
  assert_true(log.find(kToken) == std::string::npos);
  assert_true(log.find(kApiSecret) == std::string::npos);
  assert_true(log.find("+15551230001") == std::string::npos);
  assert_true(log.find("+15551230002") == std::string::npos);
  for (const auto& m : outbox)
    assert_true(log.find(m.code) == std::string::npos);
  for (const auto& code : script.codes_sent)
    if (code.size() >= 4) assert_true(log.find(code) == std::string::npos);
  if (c.keep_code && !outbox.empty()) g_previous_code = outbox.back().code;
}

int group_setup(void**) {
  g_work = env_or_die("PTV_TEST_WORK");
  static ptv_test::EmulatorProcess em(g_work + "/emulator", kAccount, kToken,
                                      kService, kApiKey, kApiSecret);
  mkdir((g_work + "/emulator").c_str(), 0700);
  if (!em.start()) {
    std::fprintf(stderr, "the emulator did not start\n");
    return -1;
  }
  g_em = &em;
  return 0;
}

int group_teardown(void**) {
  if (g_em != nullptr) g_em->stop();
  unlink((g_work + "/ptv.conf").c_str());
  unlink((g_work + "/ptv-real.conf").c_str());
  unlink((g_work + "/case.log").c_str());
  std::filesystem::remove_all(state_dir());
  return 0;
}

}  // namespace

int main() {
  // The module accepts only a root-owned configuration file, which only
  // root can write: without root these tests cannot run (ctest: skipped).
  if (geteuid() != 0) {
    std::fprintf(stderr, "skipped: the PAM-level tests need root\n");
    return 77;
  }
  std::vector<CMUnitTest> tests;
  for (const Case& c : cases()) {
    CMUnitTest t{};
    t.name = c.name;
    t.test_func = run_case;
    t.initial_state = const_cast<Case*>(&c);
    tests.push_back(t);
  }
  return _cmocka_run_group_tests("pam_module", tests.data(), tests.size(),
                                 group_setup, group_teardown);
}
