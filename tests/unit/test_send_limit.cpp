// The per-user send limit: its state file (one preallocated table,
// updated in place), its safety checks on the state directory and file,
// its window, eviction, grace entries and many processes racing for the
// last sends. The flow's use of it is tested with the flow
// (test_authenticate.cpp).
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_modules.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "state/send_limit.hpp"
#include "unit_test.hpp"
#include "util/sha256.hpp"

using ptv::SendDecision;
using ptv::SendLimitSettings;
using ptv::SendReservation;

namespace {

std::string g_tmp;  // this run's temporary directory
// A temporary directory on tmpfs (/dev/shm) when there is one, for the test
// that makes thousands of fdatasync calls: its subject is the table, not
// the disk, and a busy disk could make it time out.
std::string g_fast_tmp;

constexpr std::int64_t kNow = 1700000000;
constexpr std::size_t kHeader = 4096;
constexpr std::size_t kSlot = 512;

// A fresh state directory path (not yet created) under the run's directory,
// with the real table size.
SendLimitSettings fresh(int count = 5, long window_s = 3600,
                        const std::string& under = g_tmp) {
  static int n = 0;
  SendLimitSettings s;
  s.state_dir = under + "/state" + std::to_string(++n);
  s.count = count;
  s.window_s = window_s;
  s.owner = geteuid();
  s.lock_wait_ms = 20000;
  return s;
}

// The same with a table of buckets x slots (small, to fill it).
SendLimitSettings small(std::uint32_t buckets, std::uint32_t slots,
                        int count = 5, long window_s = 3600) {
  SendLimitSettings s = fresh(count, window_s);
  s.bucket_count = buckets;
  s.slots_per_bucket = slots;
  return s;
}

std::string state_file(const SendLimitSettings& s) {
  return s.state_dir + "/state.v1";
}

void make_state_dir(const SendLimitSettings& s) {
  std::filesystem::create_directory(s.state_dir);
  chmod(s.state_dir.c_str(), 0700);
}

std::string read_file(const std::string& path) {
  std::string text;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "<missing>";
  char buffer[65536];
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

// Overwrites bytes of an existing file in place.
void write_at(const std::string& path, std::size_t offset,
              const std::string& bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, bytes.data(), bytes.size(),
                          static_cast<off_t>(offset)),
                   static_cast<ssize_t>(bytes.size()));
  close(fd);
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
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

// Fails, printing the error, unless the call succeeded.
void expect_ok(const std::expected<void, ptv::StateError>& result,
               const char* file, int line) {
  if (result) return;
  print_error("unexpected error: %s\n", result.error().detail.c_str());
  _fail(file, line);
}
#define EXPECT_OK(result) expect_ok((result), __FILE__, __LINE__)

// The error's detail; fails if the call succeeded.
std::string error_of(const std::expected<void, ptv::StateError>& result,
                     const char* file, int line) {
  if (result) {
    print_error("succeeded, expected an error\n");
    _fail(file, line);
  }
  return result.error().detail;
}
#define ERROR_OF(result) error_of((result), __FILE__, __LINE__)

// The send times recorded for a user (whether or not they still count).
std::vector<std::int64_t> sends(const SendLimitSettings& s,
                                const std::string& user) {
  const auto recorded = ptv::recorded_sends(s, user);
  if (!recorded) {
    print_error("recorded_sends: %s\n", recorded.error().detail.c_str());
    fail();
  }
  return *recorded;
}

using Stamps = std::vector<std::int64_t>;

void expect_sends(const SendLimitSettings& s, const std::string& user,
                  const Stamps& want, const char* file, int line) {
  const Stamps got = sends(s, user);
  if (got == want) return;
  std::string g, w;
  for (auto t : got) g += std::to_string(t) + " ";
  for (auto t : want) w += std::to_string(t) + " ";
  print_error("%s: sends [%s], expected [%s]\n", user.c_str(), g.c_str(),
              w.c_str());
  _fail(file, line);
}
#define EXPECT_SENDS(s, user, ...) \
  expect_sends((s), (user), Stamps __VA_ARGS__, __FILE__, __LINE__)

std::optional<std::int64_t> grace(const SendLimitSettings& s,
                                  const std::string& account,
                                  const std::string& address,
                                  std::int64_t now) {
  const auto found = ptv::find_grace(s, account, address, now);
  if (!found) {
    print_error("find_grace: %s\n", found.error().detail.c_str());
    fail();
  }
  return *found;
}

// Records sends at the given times, whatever the limit and window.
void seed(const SendLimitSettings& s, const std::string& user,
          const Stamps& stamps) {
  SendLimitSettings wide = s;
  wide.count = ptv::kMaxStampsPerRecord;
  wide.window_s = 10L * 365 * 86400;
  for (std::int64_t t : stamps)
    EXPECT_DECISION(reserve(wide, user, t), SendDecision::Allowed);
}

std::vector<std::string> dir_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// --------------------------------------------------------------- the window

void test_under_the_limit(void**) {
  const SendLimitSettings s = fresh(3);
  for (int i = 0; i < 3; ++i) {
    const SendReservation r = reserve(s, "alice", kNow + i);
    EXPECT_DECISION(r, SendDecision::Allowed);
    assert_int_equal(r.used, i);
    assert_int_equal(r.stamp, kNow + i);
  }
  EXPECT_SENDS(s, "alice", {kNow, kNow + 1, kNow + 2});
}

void test_at_the_limit(void**) {
  const SendLimitSettings s = fresh(3);
  for (int i = 0; i < 3; ++i)
    EXPECT_DECISION(reserve(s, "alice", kNow + i), SendDecision::Allowed);
  const std::string before = read_file(state_file(s));
  const SendReservation r = reserve(s, "alice", kNow + 3);
  EXPECT_DECISION(r, SendDecision::LimitReached);
  assert_int_equal(r.used, 3);
  // The oldest send (kNow) leaves the window at kNow + 3600.
  assert_int_equal(r.retry_in_s, 3600 - 3);
  assert_str_eq(r.detail,
                "send limit reached: 3 codes sent in the last 3600 s "
                "(send_limit.count = 3); the next is allowed in 3597 s");
  // A refusal records nothing: not one byte of the file changes.
  assert_true(read_file(state_file(s)) == before);
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
  // Only the sends inside the window stay recorded.
  EXPECT_SENDS(s, "alice", {kNow + 10, kNow + 60});
  // Long after, everything has expired.
  EXPECT_DECISION(reserve(s, "alice", kNow + 100000), SendDecision::Allowed);
  EXPECT_SENDS(s, "alice", {kNow + 100000});
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

void test_hundred_sends_fit_a_record(void**) {
  const SendLimitSettings s = fresh(100, 86400);
  for (int i = 0; i < 100; ++i)
    EXPECT_DECISION(reserve(s, "alice", kNow + i), SendDecision::Allowed);
  const SendReservation r = reserve(s, "alice", kNow + 100);
  EXPECT_DECISION(r, SendDecision::LimitReached);
  assert_int_equal(r.used, 100);
  assert_int_equal(sends(s, "alice").size(), 100);
  // send_limit.count over 100 cannot be kept: refused, not truncated.
  SendLimitSettings over = s;
  over.count = 101;
  EXPECT_DECISION(reserve(over, "alice", kNow), SendDecision::Error);
}

void test_clock_stepped_back(void**) {
  const SendLimitSettings s = fresh(2, 60);
  // Written while the clock was a day ahead: forgotten, not a lockout.
  seed(s, "alice", {kNow + 86400, kNow + 86401});
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  EXPECT_SENDS(s, "alice", {kNow});
  // Within a window ahead still counts (a small step back).
  EXPECT_OK(ptv::reset_account(s, "alice"));
  seed(s, "alice", {kNow + 30, kNow + 31});
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::LimitReached);
  // A time the file cannot hold is an error, not a wrapped stamp.
  EXPECT_DECISION(reserve(s, "bob", -1), SendDecision::Error);
  EXPECT_DECISION(reserve(s, "bob", std::int64_t{1} << 32), SendDecision::Error);
}

void test_release_gives_one_back(void**) {
  const SendLimitSettings s = fresh(2);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::LimitReached);
  EXPECT_OK(ptv::release_send(s, "alice", r.stamp, kNow + 1));
  EXPECT_SENDS(s, "alice", {kNow});
  EXPECT_DECISION(reserve(s, "alice", kNow + 2), SendDecision::Allowed);
  // Giving back a send that is not there changes nothing.
  const std::string before = read_file(state_file(s));
  EXPECT_OK(ptv::release_send(s, "alice", 42, kNow + 3));
  EXPECT_OK(ptv::release_send(s, "nobody-here", kNow, kNow + 3));
  assert_true(read_file(state_file(s)) == before);
  EXPECT_SENDS(s, "alice", {kNow, kNow + 2});
  // Nothing recorded anywhere: nothing to give back, nothing created.
  const SendLimitSettings none = fresh(2);
  EXPECT_OK(ptv::release_send(none, "alice", kNow, kNow));
  assert_false(std::filesystem::exists(none.state_dir));
}

void test_users_counted_apart(void**) {
  const SendLimitSettings s = fresh(1);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::LimitReached);
  EXPECT_DECISION(reserve(s, "bob", kNow), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "Alice", kNow), SendDecision::Allowed);
}

// ------------------------------------------------------ a bad state file

// Every operation on a state file that cannot be trusted is an error that
// names the file, and the file is left as it was for the administrator.
void expect_refused(const SendLimitSettings& s, const std::string& why) {
  const std::string before = read_file(state_file(s));
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, state_file(s));
  assert_contains(r.detail, why);
  assert_contains(ERROR_OF(ptv::release_send(s, "alice", kNow, kNow)), why);
  assert_contains(ERROR_OF(ptv::reset_account(s, "alice")), why);
  assert_contains(
      ERROR_OF(ptv::record_grace(s, "alice", "192.0.2.1", kNow, kNow + 60)),
      why);
  assert_false(ptv::find_grace(s, "alice", "192.0.2.1", kNow).has_value());
  assert_false(ptv::recorded_sends(s, "alice").has_value());
  assert_true(read_file(state_file(s)) == before);
}

void test_corrupt_file_fails_closed(void**) {
  struct Case {
    const char* name;
    std::size_t offset;  // where to overwrite; SIZE_MAX: replace the file
    std::string bytes;
    const char* why;
  };
  const std::vector<Case> cases = {
      {"bad magic", 0, "XTVSTATE", "bad magic"},
      {"key byte flipped", 40, "\x01", "header checksum"},
      {"header checksum flipped", 4064, "\xff", "header checksum"},
      {"empty", SIZE_MAX, "", "its size is 0 bytes"},
      {"old text format", SIZE_MAX, "1700000000\nnot a time\n", "its size is"},
      {"truncated", SIZE_MAX, std::string(4096, '\0'), "its size is 4096"},
  };
  for (const Case& c : cases) {
    const SendLimitSettings s = fresh(5);
    EXPECT_DECISION(reserve(s, "alice", kNow - 10), SendDecision::Allowed);
    if (c.offset == SIZE_MAX)
      write_file(state_file(s), c.bytes);
    else
      write_at(state_file(s), c.offset, c.bytes);
    print_message("case %s\n", c.name);
    assert_contains(reserve(s, "alice", kNow).detail, "is corrupt");
    expect_refused(s, c.why);
  }
  // One byte too long (appended by hand): refused too.
  const SendLimitSettings s = fresh(5);
  EXPECT_DECISION(reserve(s, "alice", kNow - 10), SendDecision::Allowed);
  FILE* f = std::fopen(state_file(s).c_str(), "ab");
  assert_non_null(f);
  std::fputc(0, f);
  std::fclose(f);
  expect_refused(s, "its size is " + std::to_string(ptv::state_file_size(s) + 1));
}

void test_other_format_version_refused(void**) {
  const SendLimitSettings s = fresh(5);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  // Version 2 with a correct checksum: a file of a later format.
  std::string header = read_file(state_file(s)).substr(0, kHeader);
  header[8] = 2;
  const std::string sum = unhex(ptv::sha256_hex(header.substr(0, kHeader - 32)));
  header.replace(kHeader - 32, 32, sum);
  write_at(state_file(s), 0, header);
  expect_refused(s, "format version 2");
  // A table made for another size (with a file of the right length).
  const SendLimitSettings t = small(2, 2);
  make_state_dir(t);
  write_file(state_file(t), read_file(state_file(s)).substr(
                                0, ptv::state_file_size(t)));
  chmod(state_file(t).c_str(), 0600);
  expect_refused(t, "is corrupt");
}

void test_state_file_bad_mode_or_owner_refused(void**) {
  for (mode_t mode : {0640, 0604, 0644, 0660, 0606, 04600}) {
    const SendLimitSettings s = fresh(5);
    EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
    assert_int_equal(chmod(state_file(s).c_str(), mode), 0);
    expect_refused(s, "chmod 600 " + state_file(s));
  }
  SendLimitSettings s = fresh(5);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  if (geteuid() != 0) {
    print_message("not root: the owner check of the file is not tested\n");
    return;
  }
  assert_int_equal(chown(state_file(s).c_str(), 4242, 4242), 0);
  expect_refused(s, "must be owned by root (it is owned by uid 4242)");
}

void test_state_file_not_regular_refused(void**) {
  const SendLimitSettings s = fresh(5);
  make_state_dir(s);
  assert_int_equal(mkdir(state_file(s).c_str(), 0700), 0);
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, state_file(s));
  const SendLimitSettings fifo = fresh(5);
  make_state_dir(fifo);
  assert_int_equal(mkfifo(state_file(fifo).c_str(), 0600), 0);
  const SendReservation f = reserve(fifo, "alice", kNow);  // must not hang
  EXPECT_DECISION(f, SendDecision::Error);
  assert_contains(f.detail, "not a regular file");
}

// --------------------------------------------------------- symbolic links

void test_symlinked_state_file_refused(void**) {
  const SendLimitSettings s = fresh(5);
  make_state_dir(s);
  const std::string target = g_tmp + "/victim";
  write_file(target, "precious\n");
  assert_int_equal(symlink(target.c_str(), state_file(s).c_str()), 0);
  const SendReservation r = reserve(s, "alice", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "symbolic link");
  assert_str_eq(read_file(target), "precious\n");
}

void test_dangling_symlink_not_followed(void**) {
  // A link to where an attacker would like a file: neither state.v1 nor
  // the temporary name used to build it makes the module write there.
  for (const char* name : {"state.v1", "state.v1.new"}) {
    const SendLimitSettings s = fresh(5);
    make_state_dir(s);
    const std::string target = g_tmp + "/created-through-" + name;
    assert_int_equal(
        symlink(target.c_str(), (s.state_dir + "/" + name).c_str()), 0);
    const SendReservation r = reserve(s, "alice", kNow);
    assert_false(std::filesystem::exists(target));
    if (std::string(name) == "state.v1") {
      EXPECT_DECISION(r, SendDecision::Error);
      assert_contains(r.detail, "symbolic link");
    } else {  // a stale temporary name is removed, not followed
      EXPECT_DECISION(r, SendDecision::Allowed);
      assert_true(dir_names(s.state_dir) == std::vector<std::string>{"state.v1"});
    }
  }
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
  assert_int_equal(lstat(state_file(s).c_str(), &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(st.st_uid, geteuid());
  assert_int_equal(st.st_size, 4096 + 16384 * 512);
  // Real blocks, not a sparse file: writing in place needs no new block.
  assert_true(static_cast<std::uint64_t>(st.st_blocks) * 512 >=
              ptv::state_file_size(s));
  assert_true(dir_names(s.state_dir) == std::vector<std::string>{"state.v1"});
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
    assert_false(std::filesystem::exists(state_file(s)));
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
  assert_false(std::filesystem::exists(state_file(s)));
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
  const SendLimitSettings d = ptv::send_limit_settings(c.state);
  assert_str_eq(d.state_dir, "/var/lib/pam_twilio_verify");
  assert_int_equal(d.count, 5);
  assert_int_equal(d.window_s, 3600);
  assert_int_equal(d.owner, 0);  // the module insists on root
  // The real table: 2,048 buckets of 8 slots of 512 bytes, 4 KiB header.
  assert_int_equal(d.bucket_count, 2048);
  assert_int_equal(d.slots_per_bucket, 8);
  assert_int_equal(ptv::state_file_size(d), 4096 + 8 * 1024 * 1024);
  c.state.state_dir = "/run/ptv";
  c.state.send_limit_count = 9;
  c.state.send_limit_window_s = 120;
  const SendLimitSettings s = ptv::send_limit_settings(c.state);
  assert_str_eq(s.state_dir, "/run/ptv");
  assert_int_equal(s.count, 9);
  assert_int_equal(s.window_s, 120);
  assert_int_equal(s.bucket_count, 2048);
}

// ------------------------------------------------------------- user names

void test_any_user_name_counted_apart(void**) {
  const std::vector<std::string> users = {
      "a/b", "..", "../../etc/passwd", ".", "%2e%2e%2f", "a\nb", "a b",
      "$(touch x);`id`|&>*?", "~root", std::string("nul\0byte", 8),
      std::string("nul\0bytf", 8), "\xc3\xa9l\xc3\xa8ve", "",
      std::string(100, 'x'), std::string(101, 'x'), std::string(256, 'y'),
      std::string(256, '/'), std::string(100000, 'z'),
  };
  const SendLimitSettings s = fresh(1);
  for (const std::string& u : users)
    EXPECT_DECISION(reserve(s, u, kNow), SendDecision::Allowed);
  // Each has a count of its own.
  for (const std::string& u : users) {
    EXPECT_DECISION(reserve(s, u, kNow), SendDecision::LimitReached);
    EXPECT_SENDS(s, u, {kNow});
  }
  // Nothing but the one file in the directory, and no name in it.
  assert_true(dir_names(s.state_dir) == std::vector<std::string>{"state.v1"});
  const std::string file = read_file(state_file(s));
  for (const char* name : {"../../etc/passwd", "$(touch x)", "~root", "a/b"})
    assert_true(file.find(name) == std::string::npos);
  assert_false(std::filesystem::exists(g_tmp + "/x"));
}

// ------------------------------------------------- the file stays in place

struct FileId {
  ino_t ino = 0;
  off_t size = 0;
  blkcnt_t blocks = 0;
  nlink_t links = 0;
  bool operator==(const FileId&) const = default;
};

FileId file_id(const std::string& path) {
  struct stat st {};
  assert_int_equal(lstat(path.c_str(), &st), 0);
  return {st.st_ino, st.st_size, st.st_blocks, st.st_nlink};
}

// Once state.v1 exists, nothing creates, renames, extends or shrinks a
// file: every operation writes in place (a full filesystem cannot matter).
void test_file_never_changes_inode_or_size(void**) {
  const SendLimitSettings s = fresh(3, 60);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  const FileId first = file_id(state_file(s));
  assert_int_equal(first.links, 1);
  const auto same = [&] {
    assert_true(file_id(state_file(s)) == first);
    assert_true(dir_names(s.state_dir) == std::vector<std::string>{"state.v1"});
  };
  for (int i = 0; i < 50; ++i) {
    const std::string user = "user" + std::to_string(i % 7);
    const SendReservation r = reserve(s, user, kNow + i * 5);
    same();
    if (r.decision == SendDecision::Allowed && i % 3 == 0) {
      EXPECT_OK(ptv::release_send(s, user, r.stamp, kNow + i * 5));
      same();
    }
    EXPECT_OK(ptv::record_grace(s, user, "192.0.2." + std::to_string(i),
                                kNow + i, kNow + i + 30));
    same();
    assert_true(ptv::find_grace(s, user, "192.0.2.1", kNow + i).has_value());
    same();
    if (i % 10 == 9) {
      EXPECT_OK(ptv::reset_account(s, user));
      same();
    }
  }
  EXPECT_DECISION(reserve(s, "alice", kNow + 1000), SendDecision::Allowed);
  EXPECT_OK(ptv::ensure_state_file(s));
  same();
}

// At least 10,000 accounts, each with a send inside the window (so none
// may be evicted), fit in the real table and keep their counts.
void test_ten_thousand_accounts_fit(void**) {
  const SendLimitSettings s = fresh(5, 3600, g_fast_tmp);
  constexpr int kAccounts = 10240;
  for (int i = 0; i < kAccounts; ++i) {
    const std::string user = "account" + std::to_string(i);
    const SendReservation r = reserve(s, user, kNow + i % 600);
    if (r.decision != SendDecision::Allowed)
      print_error("account %d: %s\n", i, r.detail.c_str());
    EXPECT_DECISION(r, SendDecision::Allowed);
    if (i % 4 == 0)  // some have two sends
      EXPECT_DECISION(reserve(s, user, kNow + 700 + i % 600),
                      SendDecision::Allowed);
  }
  for (int i = 0; i < kAccounts; ++i) {
    const std::string user = "account" + std::to_string(i);
    if (i % 4 == 0)
      EXPECT_SENDS(s, user, {kNow + i % 600, kNow + 700 + i % 600});
    else
      EXPECT_SENDS(s, user, {kNow + i % 600});
  }
  EXPECT_SENDS(s, "account" + std::to_string(kAccounts), {});
}

// ----------------------------------------------------- a table that fills

// A table of 2 buckets of 2 slots: every account may use all 4 slots.
void test_eviction_order(void**) {
  const SendLimitSettings s = small(2, 2, 5, 60);
  const std::int64_t t = kNow;
  EXPECT_DECISION(reserve(s, "in-window", t), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "old-send", t - 100), SendDecision::Allowed);
  EXPECT_OK(ptv::record_grace(s, "g-old", "192.0.2.1", t - 20, t + 900));
  EXPECT_OK(ptv::record_grace(s, "g-new", "192.0.2.2", t - 10, t + 900));
  // Full. First taken: the send record without a send in the window.
  EXPECT_DECISION(reserve(s, "c", t), SendDecision::Allowed);
  EXPECT_SENDS(s, "old-send", {});
  assert_true(grace(s, "g-old", "192.0.2.1", t).has_value());
  assert_true(grace(s, "g-new", "192.0.2.2", t).has_value());
  // Then the oldest grace entry, then the next.
  EXPECT_DECISION(reserve(s, "d", t), SendDecision::Allowed);
  assert_false(grace(s, "g-old", "192.0.2.1", t).has_value());
  assert_true(grace(s, "g-new", "192.0.2.2", t).has_value());
  EXPECT_DECISION(reserve(s, "e", t), SendDecision::Allowed);
  assert_false(grace(s, "g-new", "192.0.2.2", t).has_value());
  // Only sends inside their window are left: never taken back.
  const std::string before = read_file(state_file(s));
  const SendReservation full = reserve(s, "f", t + 1);
  EXPECT_DECISION(full, SendDecision::Error);
  assert_contains(full.detail, "state table is full");
  assert_contains(full.detail, state_file(s));
  assert_contains(ERROR_OF(ptv::record_grace(s, "f", "192.0.2.9", t, t + 60)),
                  "state table is full");
  assert_true(read_file(state_file(s)) == before);
  for (const char* user : {"in-window", "c", "d", "e"}) EXPECT_SENDS(s, user, {t});
  // The user who has a record is still counted, and once the sends leave
  // the window the table has room again.
  EXPECT_DECISION(reserve(s, "c", t + 1), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "f", t + 60), SendDecision::Allowed);
}

void test_expired_grace_taken_before_older_valid_one(void**) {
  const SendLimitSettings s = small(2, 2, 5, 60);
  const std::int64_t t = kNow;
  EXPECT_DECISION(reserve(s, "a", t), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "b", t), SendDecision::Allowed);
  EXPECT_OK(ptv::record_grace(s, "valid", "192.0.2.1", t - 50, t + 900));
  EXPECT_OK(ptv::record_grace(s, "expired", "192.0.2.2", t - 10, t - 1));
  EXPECT_DECISION(reserve(s, "c", t), SendDecision::Allowed);
  assert_true(grace(s, "valid", "192.0.2.1", t).has_value());
  EXPECT_DECISION(reserve(s, "d", t), SendDecision::Allowed);
  assert_false(grace(s, "valid", "192.0.2.1", t).has_value());
  EXPECT_DECISION(reserve(s, "e", t), SendDecision::Error);
}

// ---------------------------------------------------------- grace entries

void test_grace_entries(void**) {
  const SendLimitSettings s = fresh(2, 3600);
  const std::int64_t t = kNow;
  // Nothing recorded, nothing created by looking.
  assert_false(grace(s, "alice", "192.0.2.1", t).has_value());
  assert_false(std::filesystem::exists(s.state_dir));
  EXPECT_OK(ptv::record_grace(s, "alice", "192.0.2.1", t, t + 300));
  assert_true(grace(s, "alice", "192.0.2.1", t) == t + 300);
  assert_true(grace(s, "alice", "192.0.2.1", t + 299) == t + 300);
  // Only for that account from that address.
  assert_false(grace(s, "alice", "192.0.2.10", t).has_value());
  assert_false(grace(s, "bob", "192.0.2.1", t).has_value());
  assert_false(grace(s, "Alice", "192.0.2.1", t).has_value());
  // Looking does not extend it.
  for (std::int64_t now = t; now < t + 300; now += 50)
    assert_true(grace(s, "alice", "192.0.2.1", now) == t + 300);
  assert_false(grace(s, "alice", "192.0.2.1", t + 300).has_value());
  // Not valid before it was made (the clock was stepped back).
  assert_false(grace(s, "alice", "192.0.2.1", t - 1).has_value());
  // A new approval replaces the entry.
  EXPECT_OK(ptv::record_grace(s, "alice", "192.0.2.1", t + 400, t + 700));
  assert_true(grace(s, "alice", "192.0.2.1", t + 400) == t + 700);
  // A grace entry is not a send.
  EXPECT_SENDS(s, "alice", {});
  EXPECT_DECISION(reserve(s, "alice", t), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", t), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", t), SendDecision::LimitReached);
  assert_true(grace(s, "alice", "192.0.2.1", t + 400) == t + 700);
  // An entry that expires before it starts is refused.
  assert_false(ptv::record_grace(s, "alice", "192.0.2.1", t, t).has_value());
}

void test_reset_account_clears_one_account(void**) {
  // A small table, so that both accounts share their buckets.
  const SendLimitSettings s = small(2, 8, 2, 3600);
  seed(s, "alice", {kNow, kNow + 1});
  seed(s, "bob", {kNow + 2});
  for (const char* address : {"192.0.2.1", "2001:db8::1"})
    EXPECT_OK(ptv::record_grace(s, "alice", address, kNow, kNow + 60));
  EXPECT_OK(ptv::record_grace(s, "bob", "192.0.2.1", kNow, kNow + 60));
  EXPECT_DECISION(reserve(s, "alice", kNow + 3), SendDecision::LimitReached);
  EXPECT_OK(ptv::reset_account(s, "alice"));
  EXPECT_SENDS(s, "alice", {});
  assert_false(grace(s, "alice", "192.0.2.1", kNow).has_value());
  assert_false(grace(s, "alice", "2001:db8::1", kNow).has_value());
  EXPECT_SENDS(s, "bob", {kNow + 2});
  assert_true(grace(s, "bob", "192.0.2.1", kNow) == kNow + 60);
  EXPECT_DECISION(reserve(s, "alice", kNow + 3), SendDecision::Allowed);
  // Resetting someone unknown, or where nothing was ever recorded.
  EXPECT_OK(ptv::reset_account(s, "carol"));
  const SendLimitSettings none = fresh();
  EXPECT_OK(ptv::reset_account(none, "alice"));
  assert_false(std::filesystem::exists(none.state_dir));
}

// A slot torn by a power cut (bad checksum) matches no account and is
// never reused; it denies nobody else.
void test_torn_slot_denies_nobody_else(void**) {
  const SendLimitSettings s = fresh(2, 3600);
  for (int i = 0; i < 40; ++i)
    EXPECT_DECISION(reserve(s, "user" + std::to_string(i), kNow), SendDecision::Allowed);
  const std::string before = read_file(state_file(s));
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  const std::string after = read_file(state_file(s));
  std::size_t slot = 0;  // alice's: the only slot that changed
  for (std::size_t off = kHeader; off < after.size(); off += kSlot)
    if (before.compare(off, kSlot, after, off, kSlot) != 0) slot = off;
  assert_true(slot >= kHeader);
  write_at(state_file(s), slot + 24, "\x01");  // her first stamp, torn
  const std::string torn = read_file(state_file(s)).substr(slot, kSlot);
  // Alice's record is gone with it: she starts afresh...
  EXPECT_SENDS(s, "alice", {});
  const SendReservation r = reserve(s, "alice", kNow + 1);
  EXPECT_DECISION(r, SendDecision::Allowed);
  assert_int_equal(r.used, 0);
  // ...everyone else is counted as before...
  for (int i = 0; i < 40; ++i) {
    const std::string user = "user" + std::to_string(i);
    const SendReservation u = reserve(s, user, kNow + 2);
    EXPECT_DECISION(u, SendDecision::Allowed);
    assert_int_equal(u.used, 1);
  }
  // ...and the torn slot is left alone.
  assert_true(read_file(state_file(s)).substr(slot, kSlot) == torn);
}

void test_torn_slots_fill_a_table_only_for_real(void**) {
  const SendLimitSettings s = small(1, 4, 5, 60);
  std::string before;
  for (const char* user : {"a", "b", "c", "d"}) {
    before = read_file(state_file(s));
    EXPECT_DECISION(reserve(s, user, kNow), SendDecision::Allowed);
  }
  // Tear d's slot: with a, b and c inside their window, no slot is free.
  const std::string after = read_file(state_file(s));
  for (std::size_t off = kHeader; off < after.size(); off += kSlot)
    if (before.compare(off, kSlot, after, off, kSlot) != 0)
      write_at(state_file(s), off + 100, "\xff");
  const SendReservation r = reserve(s, "e", kNow);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "state table is full");
  assert_contains(r.detail, "1 damaged");
  // Once the others' sends expire, there is room again.
  EXPECT_DECISION(reserve(s, "e", kNow + 60), SendDecision::Allowed);
}

// -------------------------------------------------------------- creation

void test_creation_leaves_nothing_behind(void**) {
  // A stale temporary file from a crash is replaced.
  const SendLimitSettings s = fresh(5);
  make_state_dir(s);
  write_file(s.state_dir + "/state.v1.new", "half written");
  // Old per-user files of the previous format are ignored.
  write_file(s.state_dir + "/u-616c696365.sends", "1700000000\n1700000001\n");
  write_file(s.state_dir + "/u-616c696365.lock", "");
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  EXPECT_SENDS(s, "alice", {kNow});
  assert_true(dir_names(s.state_dir) ==
              (std::vector<std::string>{"state.v1", "u-616c696365.lock",
                                        "u-616c696365.sends"}));
  // ensure_state_file leaves a valid file alone.
  const std::string file = read_file(state_file(s));
  EXPECT_OK(ptv::ensure_state_file(s));
  assert_true(read_file(state_file(s)) == file);
  // Each file has a key of its own.
  const SendLimitSettings other = fresh(5);
  EXPECT_OK(ptv::ensure_state_file(other));
  assert_true(read_file(state_file(other)).substr(32, 32) != file.substr(32, 32));
}

// No room for the file (here: a file size limit): an error that says so,
// and no half-made file left behind.
void test_creation_failure_is_an_error(void**) {
  const SendLimitSettings s = fresh(5);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    const struct rlimit limit = {1 << 20, 1 << 20};
    setrlimit(RLIMIT_FSIZE, &limit);
    const SendReservation r = reserve(s, "alice", kNow);
    const bool ok = r.decision == SendDecision::Error &&
                    r.detail.find("cannot create") != std::string::npos &&
                    r.detail.find(state_file(s)) != std::string::npos;
    if (!ok) std::fprintf(stderr, "%s\n", r.detail.c_str());
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_true(dir_names(s.state_dir).empty());
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
}

// ------------------------------------------------------------- concurrency

// Forks one process per entry of users, releases them together, and
// returns how many were Allowed, LimitReached and Error.
std::array<int, 3> race(const SendLimitSettings& s,
                        const std::vector<std::string>& users) {
  int gate[2];
  assert_int_equal(pipe(gate), 0);
  std::vector<pid_t> children;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(gate[1]);
      char c;
      while (read(gate[0], &c, 1) < 0) {
      }  // returns 0 once the parent closes its end
      const SendReservation r =
          ptv::reserve_send(s, users[i], kNow + static_cast<int>(i));
      if (r.decision == SendDecision::Error)
        std::fprintf(stderr, "%s\n", r.detail.c_str());
      _exit(r.decision == SendDecision::Allowed        ? 10
            : r.decision == SendDecision::LimitReached ? 11
                                                       : 12);
    }
    children.push_back(pid);
  }
  close(gate[0]);
  close(gate[1]);  // go
  std::array<int, 3> counts{};
  for (pid_t pid : children) {
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    ++counts[code == 10 ? 0 : code == 11 ? 1 : 2];
  }
  return counts;
}

// 20 processes, released together, race for the last 3 of 5 sends.
void test_processes_race_for_the_last_sends(void**) {
  const SendLimitSettings s = fresh(5);
  EXPECT_DECISION(reserve(s, "alice", kNow - 10), SendDecision::Allowed);
  EXPECT_DECISION(reserve(s, "alice", kNow - 5), SendDecision::Allowed);
  const auto [allowed, limited, errors] =
      race(s, std::vector<std::string>(20, "alice"));
  assert_int_equal(errors, 0);
  assert_int_equal(allowed, 3);
  assert_int_equal(limited, 20 - 3);
  assert_int_equal(sends(s, "alice").size(), 5);
  EXPECT_DECISION(reserve(s, "alice", kNow + 100), SendDecision::LimitReached);
}

// 20 processes of 20 users race to create the missing state file: one
// file is made, every send is recorded in it, nothing else is left.
void test_processes_race_to_create_the_file(void**) {
  const SendLimitSettings s = fresh(1);
  std::vector<std::string> users;
  for (int i = 0; i < 20; ++i) users.push_back("racer" + std::to_string(i));
  const auto [allowed, limited, errors] = race(s, users);
  assert_int_equal(errors, 0);
  assert_int_equal(allowed, 20);
  assert_int_equal(limited, 0);
  for (int i = 0; i < 20; ++i) EXPECT_SENDS(s, users[i], {kNow + i});
  assert_true(dir_names(s.state_dir) == std::vector<std::string>{"state.v1"});
}

void test_held_lock_times_out(void**) {
  SendLimitSettings s = fresh(5);
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
  const int fd = open(state_file(s).c_str(), O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);  // a stuck login holds it
  s.lock_wait_ms = 100;
  const SendReservation r = reserve(s, "bob", kNow);
  const auto release = ptv::release_send(s, "alice", kNow, kNow);
  close(fd);
  EXPECT_DECISION(r, SendDecision::Error);
  assert_contains(r.detail, "still locked");
  assert_contains(r.detail, state_file(s));
  assert_contains(ERROR_OF(release), "still locked");
  EXPECT_DECISION(reserve(s, "alice", kNow), SendDecision::Allowed);
}

int setup(void**) {
  char tmpl[] = "/tmp/ptv-send-limit.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return -1;
  g_tmp = tmpl;
  char shm[] = "/dev/shm/ptv-send-limit.XXXXXX";
  g_fast_tmp = mkdtemp(shm) != nullptr ? shm : g_tmp;
  return 0;
}

int teardown(void**) {
  std::error_code ec;
  std::filesystem::remove_all(g_tmp, ec);
  if (g_fast_tmp != g_tmp) std::filesystem::remove_all(g_fast_tmp, ec);
  return 0;
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_under_the_limit),
      cmocka_unit_test(test_at_the_limit),
      cmocka_unit_test(test_window_expiry),
      cmocka_unit_test(test_lowered_count_waits_for_enough_expiries),
      cmocka_unit_test(test_hundred_sends_fit_a_record),
      cmocka_unit_test(test_clock_stepped_back),
      cmocka_unit_test(test_release_gives_one_back),
      cmocka_unit_test(test_users_counted_apart),
      cmocka_unit_test(test_corrupt_file_fails_closed),
      cmocka_unit_test(test_other_format_version_refused),
      cmocka_unit_test(test_state_file_bad_mode_or_owner_refused),
      cmocka_unit_test(test_state_file_not_regular_refused),
      cmocka_unit_test(test_symlinked_state_file_refused),
      cmocka_unit_test(test_dangling_symlink_not_followed),
      cmocka_unit_test(test_symlinked_state_dir_refused),
      cmocka_unit_test(test_state_dir_created_private),
      cmocka_unit_test(test_state_dir_bad_mode_refused),
      cmocka_unit_test(test_state_dir_bad_owner_refused),
      cmocka_unit_test(test_state_dir_not_a_directory),
      cmocka_unit_test(test_module_settings_from_config),
      cmocka_unit_test(test_any_user_name_counted_apart),
      cmocka_unit_test(test_file_never_changes_inode_or_size),
      cmocka_unit_test(test_ten_thousand_accounts_fit),
      cmocka_unit_test(test_eviction_order),
      cmocka_unit_test(test_expired_grace_taken_before_older_valid_one),
      cmocka_unit_test(test_grace_entries),
      cmocka_unit_test(test_reset_account_clears_one_account),
      cmocka_unit_test(test_torn_slot_denies_nobody_else),
      cmocka_unit_test(test_torn_slots_fill_a_table_only_for_real),
      cmocka_unit_test(test_creation_leaves_nothing_behind),
      cmocka_unit_test(test_creation_failure_is_an_error),
      cmocka_unit_test(test_processes_race_for_the_last_sends),
      cmocka_unit_test(test_processes_race_to_create_the_file),
      cmocka_unit_test(test_held_lock_times_out),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
