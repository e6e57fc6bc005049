// The per-user send limit: its state files, its safety checks on the state
// directory, its window, many processes racing for the last sends, and the
// authentication flow's use of it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_modules.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "authenticate.hpp"
#include "config.hpp"
#include "send_limit.hpp"
#include "unit_test.hpp"

using ptv::SendDecision;
using ptv::SendLimitSettings;
using ptv::SendReservation;

namespace {

std::string g_tmp;  // this run's temporary directory

constexpr std::int64_t kNow = 1700000000;

// A fresh state directory path (not yet created) under the run's directory.
SendLimitSettings fresh(int count = 5, long window_s = 3600) {
  static int n = 0;
  SendLimitSettings s;
  s.state_dir = g_tmp + "/state" + std::to_string(++n);
  s.count = count;
  s.window_s = window_s;
  s.owner = geteuid();
  s.lock_wait_ms = 20000;
  return s;
}

std::string file_of(const SendLimitSettings& s, const std::string& user) {
  return s.state_dir + "/" + ptv::state_file_stem(user) + ".sends";
}

std::string read_file(const std::string& path) {
  std::string text;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "<missing>";
  char buffer[512];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
  std::fclose(f);
  return text;
}

void write_file(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  assert_non_null(f);
  assert_int_equal(std::fwrite(text.data(), 1, text.size(), f), text.size());
  std::fclose(f);
}

SendReservation reserve(const SendLimitSettings& s, const std::string& user,
                        std::int64_t now) {
  return ptv::reserve_send(s, user, now);
}

void expect_decision(const SendReservation& r, SendDecision want,
                     const char* file, int line) {
  if (r.decision == want) return;
  print_error("decision %d, expected %d (%s)\n", static_cast<int>(r.decision),
              static_cast<int>(want), r.detail.c_str());
  _fail(file, line);
}
#define EXPECT_DECISION(r, want) expect_decision((r), (want), __FILE__, __LINE__)

// --------------------------------------------------------------- the window

void test_under_the_limit(void**) {
  const SendLimitSettings s = fresh(3);
  for (int i = 0; i < 3; ++i) {
    const SendReservation r = reserve(s, "alice", kNow + i);
    EXPECT_DECISION(r, SendDecision::Allowed);
    assert_int_equal(r.used, i);
    assert_int_equal(r.stamp, kNow + i);
  }
  assert_str_eq(read_file(file_of(s, "alice")),
                std::to_string(kNow) + "\n" + std::to_string(kNow + 1) + "\n" +
                    std::to_string(kNow + 2) + "\n");
}

void test_at_the_limit(void**) {
  const SendLimitSettings s = fresh(3);
  for (int i = 0; i < 3; ++i)
    EXPECT_DECISION(reserve(s, "alice", kNow + i), SendDecision::Allowed);
  const std::string before = read_file(file_of(s, "alice"));
  const SendReservation r = reserve(s, "alice", kNow + 3);
  EXPECT_DECISION(r, SendDecision::LimitReached);
  assert_int_equal(r.used, 3);
  // The oldest send (kNow) leaves the window at kNow + 3600.
  assert_int_equal(r.retry_in_s, 3600 - 3);
  assert_contains(r.detail, "send limit reached");
  assert_contains(r.detail, "send_limit.count = 3");
  assert_contains(r.detail, "3600 s");
  // A refusal records nothing.
  assert_str_eq(read_file(file_of(s, "alice")), before);
  EXPECT_DECISION(reserve(s, "alice", kNow + 4), SendDecision::LimitReached);
}

void test_window_expiry(void**) {
  const SendLimitSettings s = fresh(2, 60);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", kNow + 10), SendDecision::Allowed);
  const SendReservation at_limit = reserve(s, "alice", kNow + 59);
  EXPECT_DECISION(at_limit, SendDecision::LimitReached);
  assert_int_equal(at_limit.retry_in_s, 1);
  // 60 s after the first send it no longer counts.
  const SendReservation r = reserve(s, "alice", kNow + 60);
  EXPECT_DECISION(r, SendDecision::Allowed);
  assert_int_equal(r.used, 1);
  // Only the sends inside the window stay in the file.
  assert_str_eq(read_file(file_of(s, "alice")),
                std::to_string(kNow + 10) + "\n" + std::to_string(kNow + 60) + "\n");
  // Long after, everything has expired.
  EXPECT_DECISION(reserve(s, "alice", kNow + 100000), SendDecision::Allowed);
  assert_str_eq(read_file(file_of(s, "alice")), std::to_string(kNow + 100000) + "\n");
}

void test_lowered_count_waits_for_enough_expiries(void**) {
  SendLimitSettings s = fresh(4, 100);
  for (int i = 0; i < 4; ++i)
    EXPECT_DECISION(reserve(s, "alice", kNow + 10 * i), SendDecision::Allowed);
  s.count = 2;  // the administrator lowered the limit
  const SendReservation r = reserve(s, "alice", kNow + 31);
  EXPECT_DECISION(r, SendDecision::LimitReached);
  // Three of the four must expire: the third (kNow + 20) at kNow + 120.
  assert_int_equal(r.retry_in_s, 120 - 31);
}

void test_clock_stepped_back(void**) {
  const SendLimitSettings s = fresh(2, 60);
  // Written while the clock was a day ahead: forgotten, not a lockout.
  std::filesystem::create_directory(s.state_dir);
  chmod(s.state_dir.c_str(), 0700);
  write_file(file_of(s, "alice"), std::to_string(kNow + 86400) + "\n" +
                                      std::to_string(kNow + 86401) + "\n");
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  // Within a window ahead still counts (a small step back).
  write_file(file_of(s, "alice"), std::to_string(kNow + 30) + "\n" +
                                      std::to_string(kNow + 31) + "\n");
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::LimitReached);
}

void test_release_gives_one_back(void**) {
  const SendLimitSettings s = fresh(2);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::LimitReached);
  assert_str_eq(ptv::release_send(s, "alice", r.stamp, kNow + 1), "");
  assert_str_eq(read_file(file_of(s, "alice")), std::to_string(kNow) + "\n");
  EXPECT_DECISION(reserve(s, "alice", kNow + 2), SendDecision::Allowed);
  // Giving back a send that is not there changes nothing.
  assert_str_eq(ptv::release_send(s, "alice", 42, kNow + 3), "");
  assert_str_eq(read_file(file_of(s, "alice")),
                std::to_string(kNow) + "\n" + std::to_string(kNow + 2) + "\n");
}

void test_users_counted_apart(void**) {
  const SendLimitSettings s = fresh(1);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::LimitReached);
  EXPECT_DECISION(reserve(s, "bob", kNow), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "Alice", kNow), SendDecision::Allowed);
}

// ------------------------------------------------------- corrupt state files

void test_corrupt_file_fails_closed(void**) {
  const std::vector<std::string> bad = {
      "1700000000\nnot a time\n",
      "1700000000",                 // unterminated line
      "\n",                         // empty line
      "-5\n",                       // sign
      " 1700000000\n",              // blank
      "17000000000000000000\n",     // 20 digits
      std::string("17\0" "00\n", 5),  // NUL
      std::string(5000, '1') + "\n",  // over 4 KiB
  };
  for (const std::string& text : bad) {
    const SendLimitSettings s = fresh(5);
    std::filesystem::create_directory(s.state_dir);
    chmod(s.state_dir.c_str(), 0700);
    write_file(file_of(s, "alice"), text);
    const SendReservation r = reserve(s, "alice", kNow);
    EXPECT_DECISION(r, SendDecision::Error);
    assert_contains(r.detail, "corrupt");
    assert_contains(r.detail, file_of(s, "alice"));
    // Left as it was, for the administrator to look at.
    assert_true(read_file(file_of(s, "alice")) == text);
    assert_false(ptv::release_send(s, "alice", kNow, kNow).empty());
  }
  // An empty file is an empty list.
  const SendLimitSettings s = fresh(5);
  std::filesystem::create_directory(s.state_dir);
  chmod(s.state_dir.c_str(), 0700);
  write_file(file_of(s, "alice"), "");
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
}

void test_state_file_not_regular_refused(void**) {
  const SendLimitSettings s = fresh(5);
  std::filesystem::create_directory(s.state_dir);
  chmod(s.state_dir.c_str(), 0700);
  assert_int_equal(mkdir(file_of(s, "alice").c_str(), 0700), 0);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Error);
}

// --------------------------------------------------------- symbolic links

void test_symlinked_state_file_refused(void**) {
  const SendLimitSettings s = fresh(5);
  std::filesystem::create_directory(s.state_dir);
  chmod(s.state_dir.c_str(), 0700);
  const std::string target = g_tmp + "/victim";
  write_file(target, "precious\n");
  assert_int_equal(symlink(target.c_str(), file_of(s, "alice").c_str()), 0);
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "symbolic link");
  assert_str_eq(read_file(target), "precious\n");
}

void test_symlinked_lock_file_refused(void**) {
  const SendLimitSettings s = fresh(5);
  std::filesystem::create_directory(s.state_dir);
  chmod(s.state_dir.c_str(), 0700);
  const std::string target = g_tmp + "/lock-victim";
  const std::string link =
      s.state_dir + "/" + ptv::state_file_stem("alice") + ".lock";
  assert_int_equal(symlink(target.c_str(), link.c_str()), 0);
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "symbolic link");
  assert_false(std::filesystem::exists(target));  // not created through it
}

void test_symlinked_state_dir_refused(void**) {
  const SendLimitSettings s = fresh(5);
  const std::string real = s.state_dir + ".real";
  assert_int_equal(mkdir(real.c_str(), 0700), 0);
  assert_int_equal(symlink(real.c_str(), s.state_dir.c_str()), 0);
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "symbolic link");
  assert_true(std::filesystem::is_empty(real));
}

// ----------------------------------------------------------- the directory

void test_state_dir_created_private(void**) {
  const SendLimitSettings s = fresh(5);
  const mode_t old = umask(0);  // even with a permissive umask
  const SendReservation r = reserve(s, "alice", kNow);
  umask(old);
  EXPECT_DECISION(r, SendDecision::Allowed);
  struct stat st {};
  assert_int_equal(lstat(s.state_dir.c_str(), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0700);
  assert_int_equal(st.st_uid, geteuid());
  assert_int_equal(lstat(file_of(s, "alice").c_str(), &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
}

void test_state_dir_bad_mode_refused(void**) {
  for (mode_t mode : {0777, 0770, 0702, 0720}) {
    const SendLimitSettings s = fresh(5);
    assert_int_equal(mkdir(s.state_dir.c_str(), 0700), 0);
    assert_int_equal(chmod(s.state_dir.c_str(), mode), 0);
    const SendReservation r = reserve(s, "alice", kNow);
    EXPECT_DECISION(r, SendDecision::Error);
    assert_contains(r.detail, s.state_dir);
    assert_contains(r.detail, "chmod 700");
    assert_false(std::filesystem::exists(file_of(s, "alice")));
  }
  // Read and search bits for others are allowed: nothing there is secret.
  const SendLimitSettings s = fresh(5);
  assert_int_equal(mkdir(s.state_dir.c_str(), 0700), 0);
  assert_int_equal(chmod(s.state_dir.c_str(), 0755), 0);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
}

void test_state_dir_bad_owner_refused(void**) {
  SendLimitSettings s = fresh(5);
  assert_int_equal(mkdir(s.state_dir.c_str(), 0700), 0);
  if (geteuid() == 0) {
    // The module's own setting: owned by root, and here it is not.
    s.owner = 0;
    assert_int_equal(chown(s.state_dir.c_str(), 4242, 4242), 0);
  } else {
    s.owner = geteuid() + 1;
  }
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "must be owned by");
  assert_false(std::filesystem::exists(file_of(s, "alice")));
}

void test_state_dir_not_a_directory(void**) {
  const SendLimitSettings s = fresh(5);
  write_file(s.state_dir, "");
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "not a directory");
  // A missing parent is not created.
  SendLimitSettings deep = fresh(5);
  deep.state_dir += "/a/b";
  EXPECT_DECISION(reserve(deep, "alice", kNow), SendDecision::Error);
}

void test_module_settings_from_config(void**) {
  ptv::Config c;
  const SendLimitSettings d = ptv::send_limit_settings(c);
  assert_str_eq(d.state_dir, "/var/lib/pam_twilio_verify");
  assert_int_equal(d.count, 5);
  assert_int_equal(d.window_s, 3600);
  assert_int_equal(d.owner, 0);  // the module insists on root
  c.state_dir = "/run/ptv";
  c.send_limit_count = 9;
  c.send_limit_window_s = 120;
  const SendLimitSettings s = ptv::send_limit_settings(c);
  assert_str_eq(s.state_dir, "/run/ptv");
  assert_int_equal(s.count, 9);
  assert_int_equal(s.window_s, 120);
}

// ------------------------------------------------------------- user names

void test_file_names_safe_for_any_user(void**) {
  const std::vector<std::string> users = {
      "a/b", "..", "../../etc/passwd", ".", "%2e%2e%2f", "a\nb", "a b",
      "$(touch x);`id`|&>*?", "~root", std::string("nul\0byte", 8),
      "\xc3\xa9l\xc3\xa8ve", "", std::string(100, 'x'), std::string(101, 'x'),
      std::string(256, 'y'), std::string(256, '/'),
  };
  const SendLimitSettings s = fresh(1);
  std::set<std::string> stems;
  for (const std::string& u : users) {
    const std::string stem = ptv::state_file_stem(u);
    assert_true(stem.size() <= 202);
    assert_true(stems.insert(stem).second);  // no two users share a file
    for (char c : stem.substr(2))
      assert_true((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    EXPECT_DECISION(reserve(s, u, kNow), SendDecision::Allowed);
  }
  // Each user has a file of its own, all inside the state directory.
  for (const std::string& u : users)
    EXPECT_DECISION(reserve(s, u, kNow), SendDecision::LimitReached);
  std::size_t entries = 0;
  DIR* d = opendir(s.state_dir.c_str());
  assert_non_null(d);
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    ++entries;
    assert_true(name.starts_with("u-") || name.starts_with("h-"));
    assert_true(name.ends_with(".sends") || name.ends_with(".lock"));
  }
  closedir(d);
  assert_int_equal(entries, 2 * users.size());
  assert_false(std::filesystem::exists(g_tmp + "/x"));
  // Short names read back as hex; long ones are hashed.
  assert_str_eq(ptv::state_file_stem("a/b"), "u-612f62");
  assert_str_eq(ptv::state_file_stem(std::string(101, 'x')),
                "h-c675a2e604b0cd1229c036e3ce0c87422980a245e295bbc605a507a2299752db");
}

void test_sha256_vectors(void**) {
  assert_str_eq(ptv::sha256_hex(""),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert_str_eq(ptv::sha256_hex("abc"),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_str_eq(
      ptv::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  assert_str_eq(ptv::sha256_hex(std::string(1000, 'a')),
                "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

// ------------------------------------------------------------- concurrency

// 20 processes, released together, race for the last 3 of 5 sends.
void test_processes_race_for_the_last_sends(void**) {
  const SendLimitSettings s = fresh(5);
  EXPECT_DECISION(reserve(s, "alice", kNow - 10), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", kNow - 5), SendDecision::Allowed);
  constexpr int kProcesses = 20;
  int gate[2];
  assert_int_equal(pipe(gate), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(gate[1]);
      char c;
      while (read(gate[0], &c, 1) < 0) {
      }  // returns 0 once the parent closes its end
      const SendReservation r = ptv::reserve_send(s, "alice", kNow + i);
      _exit(r.decision == SendDecision::Allowed        ? 10
            : r.decision == SendDecision::LimitReached ? 11
                                                       : 12);
    }
    children.push_back(pid);
  }
  close(gate[0]);
  close(gate[1]);  // go
  int allowed = 0, limited = 0, errors = 0;
  for (pid_t pid : children) {
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    switch (WEXITSTATUS(status)) {
      case 10: ++allowed; break;
      case 11: ++limited; break;
      default: ++errors; break;
    }
  }
  assert_int_equal(errors, 0);
  assert_int_equal(allowed, 3);
  assert_int_equal(limited, kProcesses - 3);
  const std::string text = read_file(file_of(s, "alice"));
  assert_int_equal(std::count(text.begin(), text.end(), '\n'), 5);
  EXPECT_DECISION(reserve(s, "alice", kNow + 100), SendDecision::LimitReached);
}

void test_held_lock_times_out(void**) {
  SendLimitSettings s = fresh(5);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  const std::string lock = s.state_dir + "/" + ptv::state_file_stem("alice") + ".lock";
  const int fd = open(lock.c_str(), O_RDWR | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);  // a stuck login holds it
  s.lock_wait_ms = 100;
  const SendReservation r = reserve(s, "alice", kNow);
  close(fd);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "still locked");
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
}

// ------------------------------------------------ the authentication flow

const std::string kSid = "VE00112233445566778899aabbccddeeff";

class ScriptedConversation final : public ptv::Conversation {
 public:
  std::vector<std::string> prompts, errors;
  std::expected<ptv::Secret, ptv::ConversationError> ask_hidden(
      std::string_view prompt) override {
    prompts.emplace_back(prompt);
    return ptv::Secret(std::string_view("918273"));
  }
  void show_error(std::string_view message) override {
    errors.emplace_back(message);
  }
};

class CountingTransport final : public ptv::HttpTransport {
 public:
  explicit CountingTransport(int& posts, bool unreachable, bool timeout)
      : posts_(posts), unreachable_(unreachable), timeout_(timeout) {}
  std::expected<ptv::HttpResponse, ptv::TransportError> post_form(
      const std::string& url, const ptv::Secret&,
      std::chrono::milliseconds) override {
    ++posts_;
    if (unreachable_)
      return std::unexpected(ptv::TransportError{
          ptv::TransportErrorKind::Unreachable, "connection refused"});
    if (timeout_)
      return std::unexpected(
          ptv::TransportError{ptv::TransportErrorKind::Timeout, "timed out"});
    const std::string body =
        url.ends_with("/VerificationCheck")
            ? "{\"sid\":\"" + kSid + "\",\"status\":\"approved\",\"valid\":true}"
            : "{\"sid\":\"" + kSid + "\",\"status\":\"pending\"}";
    return ptv::HttpResponse{url.ends_with("/Verifications") ? 201L : 200L,
                             "application/json", body, -1};
  }

 private:
  int& posts_;
  bool unreachable_, timeout_;
};

class NullLogger final : public ptv::Logger {
 public:
  std::vector<std::string> lines;
  void log(int, std::string_view m) override { lines.emplace_back(m); }
};

struct Flow {
  ptv::Config config;
  ScriptedConversation conv;
  NullLogger log;
  int posts = 0;
  bool unreachable = false, timeout = false;
  SendLimitSettings settings;

  explicit Flow(const SendLimitSettings& s) : settings(s) {
    config.account_sid = "AC0123456789abcdef0123456789abcdef";
    config.auth_token = ptv::Secret(std::string_view("token"));
    config.service_sid = "VA0123456789abcdef0123456789abcdef";
    config.api_url = "https://verify.example.test";
    config.users = {{"alice", "+15551234567"}};
  }
  ptv::AuthResult run() {
    const std::string user = "alice";
    const ptv::GecosReader gecos = [](const std::string&) {
      return std::optional<std::string>();
    };
    const ptv::TransportFactory factory =
        [this]() -> std::expected<std::unique_ptr<ptv::HttpTransport>,
                                  ptv::TransportError> {
      return std::make_unique<CountingTransport>(posts, unreachable, timeout);
    };
    ptv::StateDirSendGate gate(settings);
    const ptv::AuthRequest request{.config = config,
                                   .user = user,
                                   .conversation = conv,
                                   .log = log,
                                   .read_gecos = gecos,
                                   .make_transport = factory,
                                   .send_gate = &gate};
    return ptv::authenticate(request);
  }
};

void test_flow_denies_at_the_limit_without_a_request(void**) {
  const SendLimitSettings s = fresh(2);
  for (int i = 0; i < 2; ++i) {
    Flow f(s);
    const ptv::AuthResult r = f.run();
    assert_int_equal(static_cast<int>(r.outcome),
                     static_cast<int>(ptv::Outcome::Approved));
  }
  Flow f(s);
  f.config.failmode = ptv::FailMode::Safe;  // never opens on a limit
  const ptv::AuthResult r = f.run();
  assert_int_equal(static_cast<int>(r.outcome),
                   static_cast<int>(ptv::Outcome::SendLimited));
  assert_str_eq(ptv::describe(r.outcome), "denied-send-limit");
  assert_int_equal(ptv::pam_result_for(r.outcome), PAM_AUTH_ERR);
  assert_int_equal(f.posts, 0);
  assert_true(f.conv.prompts.empty());
  assert_int_equal(f.conv.errors.size(), 1);
  assert_str_eq(f.conv.errors[0],
                "Too many codes were sent recently. Try again later.");
  assert_contains(r.detail, "send_limit.count = 2");
}

void test_flow_state_error_fails_closed(void**) {
  const SendLimitSettings s = fresh(2);
  assert_int_equal(mkdir(s.state_dir.c_str(), 0700), 0);
  assert_int_equal(chmod(s.state_dir.c_str(), 0777), 0);
  Flow f(s);
  f.config.failmode = ptv::FailMode::Safe;
  f.unreachable = true;  // even with Twilio down and failmode = "safe"
  const ptv::AuthResult r = f.run();
  assert_int_equal(static_cast<int>(r.outcome),
                   static_cast<int>(ptv::Outcome::StateError));
  assert_str_eq(ptv::describe(r.outcome), "denied-state-error");
  assert_int_equal(ptv::pam_result_for(r.outcome), PAM_AUTH_ERR);
  assert_int_equal(f.posts, 0);
  assert_contains(r.detail, s.state_dir);
}

void test_flow_unreachable_start_gives_the_send_back(void**) {
  const SendLimitSettings s = fresh(1);
  for (int i = 0; i < 3; ++i) {
    Flow f(s);
    f.unreachable = true;
    const ptv::AuthResult r = f.run();
    assert_int_equal(static_cast<int>(r.outcome),
                     static_cast<int>(ptv::Outcome::Unavailable));
    assert_true(f.posts > 0);
  }
  assert_str_eq(read_file(file_of(s, "alice")), "");
  Flow ok(s);
  assert_int_equal(static_cast<int>(ok.run().outcome),
                   static_cast<int>(ptv::Outcome::Approved));
}

void test_flow_timed_out_start_stays_counted(void**) {
  const SendLimitSettings s = fresh(1);
  Flow f(s);
  f.timeout = true;  // Twilio may have sent the SMS before the timeout
  assert_int_equal(static_cast<int>(f.run().outcome),
                   static_cast<int>(ptv::Outcome::Unavailable));
  Flow again(s);
  const ptv::AuthResult r = again.run();
  assert_int_equal(static_cast<int>(r.outcome),
                   static_cast<int>(ptv::Outcome::SendLimited));
  assert_int_equal(again.posts, 0);
}

int setup(void**) {
  char tmpl[] = "/tmp/ptv-send-limit.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return -1;
  g_tmp = tmpl;
  return 0;
}

int teardown(void**) {
  std::error_code ec;
  std::filesystem::remove_all(g_tmp, ec);
  return 0;
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_under_the_limit),
      cmocka_unit_test(test_at_the_limit),
      cmocka_unit_test(test_window_expiry),
      cmocka_unit_test(test_lowered_count_waits_for_enough_expiries),
      cmocka_unit_test(test_clock_stepped_back),
      cmocka_unit_test(test_release_gives_one_back),
      cmocka_unit_test(test_users_counted_apart),
      cmocka_unit_test(test_corrupt_file_fails_closed),
      cmocka_unit_test(test_state_file_not_regular_refused),
      cmocka_unit_test(test_symlinked_state_file_refused),
      cmocka_unit_test(test_symlinked_lock_file_refused),
      cmocka_unit_test(test_symlinked_state_dir_refused),
      cmocka_unit_test(test_state_dir_created_private),
      cmocka_unit_test(test_state_dir_bad_mode_refused),
      cmocka_unit_test(test_state_dir_bad_owner_refused),
      cmocka_unit_test(test_state_dir_not_a_directory),
      cmocka_unit_test(test_module_settings_from_config),
      cmocka_unit_test(test_file_names_safe_for_any_user),
      cmocka_unit_test(test_sha256_vectors),
      cmocka_unit_test(test_processes_race_for_the_last_sends),
      cmocka_unit_test(test_held_lock_times_out),
      cmocka_unit_test(test_flow_denies_at_the_limit_without_a_request),
      cmocka_unit_test(test_flow_state_error_fails_closed),
      cmocka_unit_test(test_flow_unreachable_start_gives_the_send_back),
      cmocka_unit_test(test_flow_timed_out_start_stays_counted),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
