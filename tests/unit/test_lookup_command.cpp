// The "command" phone source with real processes: scripts in a root-owned
// directory are run as "nobody" with the contract's limits. Needs root (to
// own the scripts and switch users); skipped (77) otherwise.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fakes.hpp"
#include "phone/command_source.hpp"
#include "unit_test.hpp"

using SourceAnswer = ptv_fakes::Answer;
using Kind = SourceAnswer::Kind;
using ptv_fakes::answer_of;

namespace {

std::string g_dir;

// Writes an executable /bin/sh script (mode 0755 unless told otherwise).
std::string script(const std::string& name, const std::string& body,
                   mode_t mode = 0755) {
  const std::string path = g_dir + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  chmod(path.c_str(), mode);
  return path;
}

SourceAnswer run(const std::string& path, const std::string& user = "alice",
                 long timeout_ms = 2000) {
  ptv::CommandSettings s;
  s.path = path;
  s.user = "nobody";
  s.timeout_ms = timeout_ms;
  return answer_of(ptv::run_lookup_command(s, user));
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Values: return "values";
    case Kind::NotFound: return "not-found";
    case Kind::Unavailable: return "unavailable";
    case Kind::Failed: return "failed";
    case Kind::Misconfigured: return "misconfigured";
    case Kind::Internal: return "internal";
  }
  return "?";
}

void expect_kind(const SourceAnswer& a, Kind want, const char* file, int line) {
  if (a.kind == want) return;
  print_error("answer %s (%s), expected %s\n", kind_name(a.kind),
              a.problem.c_str(), kind_name(want));
  _fail(file, line);
}
#define EXPECT_KIND(a, want) expect_kind((a), (want), __FILE__, __LINE__)

long long millis_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - t).count();
}

int group_setup(void**) {
  // Not under /tmp: like sshd, the module refuses a command in a directory
  // that others can write to.
  char tmpl[] = "/run/ptv-unit-command-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return -1;
  g_dir = tmpl;
  return chmod(g_dir.c_str(), 0755);
}

int group_teardown(void**) {
  std::error_code ec;
  std::filesystem::remove_all(g_dir, ec);
  return 0;
}

void test_success(void**) {
  const std::string path = script("ok", "echo '+1 555 010 0001'");
  SourceAnswer a = run(path);
  EXPECT_KIND(a, Kind::Values);
  assert_int_equal(a.values.size(), 1);
  assert_str_eq(a.values[0], "+1 555 010 0001");
  // Only the first line counts; CRLF and no final newline are fine.
  a = run(script("two_lines", "printf '+15550100002\\r\\n+15550100003\\n'"));
  EXPECT_KIND(a, Kind::Values);
  assert_str_eq(a.values[0], "+15550100002");
  a = run(script("no_newline", "printf '+15550100004'"));
  EXPECT_KIND(a, Kind::Values);
  assert_str_eq(a.values[0], "+15550100004");
}

void test_runs_as_contract_says(void**) {
  // Succeeds only as nobody, with the user name as its one argument, an
  // environment of PATH alone, stdin at end of file and cwd /.
  const std::string path = script(
      "contract",
      "[ \"$(id -un)\" = nobody ] || { echo \"uid $(id -u)\" >&2; exit 3; }\n"
      "[ \"$(id -G)\" = \"$(id -g)\" ] || { echo \"groups $(id -G)\" >&2; exit 3; }\n"
      "[ $# -eq 1 ] && [ \"$1\" = 'a b*c' ] || { echo \"args $*\" >&2; exit 3; }\n"
      "[ \"$0\" = \"" + g_dir + "/contract\" ] || { echo \"argv0 $0\" >&2; exit 3; }\n"
      "n=$(env | grep -v -e '^PWD=' -e '^PATH=' -e '^_=' -e '^SHLVL=' | wc -l)\n"
      "[ \"$n\" = 0 ] || { env >&2; exit 3; }\n"
      "[ \"$PWD\" = / ] || { echo \"cwd $PWD\" >&2; exit 3; }\n"
      "if read -r line; then echo 'stdin has data' >&2; exit 3; fi\n"
      "echo +15550100005");
  setenv("PTV_SHOULD_NOT_LEAK", "1", 1);
  const SourceAnswer a = run(path, "a b*c");
  unsetenv("PTV_SHOULD_NOT_LEAK");
  EXPECT_KIND(a, Kind::Values);
  assert_str_eq(a.values[0], "+15550100005");
}

void test_no_output_is_no_number(void**) {
  EXPECT_KIND(run(script("silent", "exit 0")), Kind::NotFound);
  EXPECT_KIND(run(script("blank", "echo")), Kind::NotFound);
  // A blank first line followed by something is not the contract.
  EXPECT_KIND(run(script("blank_then", "echo; echo +15550100006")), Kind::Failed);
}

void test_garbage_output_is_a_value_that_will_not_validate(void**) {
  SourceAnswer a = run(script("garbage", "echo 'no such user, sorry'"));
  EXPECT_KIND(a, Kind::Values);
  assert_str_eq(a.values[0], "no such user, sorry");
  // Binary garbage, a long line: kept short and never valid.
  a = run(script("binary", "head -c 300 /dev/urandom | tr -d '\\n'; echo"));
  EXPECT_KIND(a, Kind::Values);
  assert_true(a.values[0].size() <= 65);
}

void test_nonzero_exit(void**) {
  SourceAnswer a = run(script("exit1", "echo +15550100007; echo 'lookup broke' >&2; exit 1"));
  EXPECT_KIND(a, Kind::Failed);
  assert_contains(a.problem, "exited with status 1");
  assert_contains(a.problem, "lookup broke");  // stderr helps the administrator
  a = run(script("tempfail", "echo 'directory down' >&2; exit 75"));
  EXPECT_KIND(a, Kind::Unavailable);
  assert_contains(a.problem, "exit 75");
  a = run(script("killed", "kill -9 $$"));
  EXPECT_KIND(a, Kind::Failed);
  assert_contains(a.problem, "signal 9");
}

void test_timeout(void**) {
  const auto t0 = std::chrono::steady_clock::now();
  // A child of the command keeps sleeping too: the whole group is killed.
  SourceAnswer a = run(script("slow", "sleep 30 & sleep 30; echo +15550100008"),
                       "alice", 300);
  const long long took = millis_since(t0);
  EXPECT_KIND(a, Kind::Failed);
  assert_contains(a.problem, "lookup_timeout_ms (300 ms)");
  assert_in_range(took, 250, 1500);
  // Output that comes in time but never ends (the pipe stays open).
  a = run(script("dribble", "echo +15550100009; sleep 30"), "alice", 300);
  EXPECT_KIND(a, Kind::Failed);
  // The same command quick enough passes.
  a = run(script("quick", "sleep 0.1; echo +15550100008"), "alice", 2000);
  EXPECT_KIND(a, Kind::Values);
}

void test_huge_output(void**) {
  const auto t0 = std::chrono::steady_clock::now();
  SourceAnswer a = run(script("huge", "yes +15550100001"), "alice", 5000);
  EXPECT_KIND(a, Kind::Failed);
  assert_contains(a.problem, "more than 1024 bytes");
  assert_in_range(millis_since(t0), 0, 2000);
  // Exactly at the cap is fine.
  a = run(script("at_cap", "echo +15550100001; head -c 1011 /dev/zero | tr '\\0' x"));
  EXPECT_KIND(a, Kind::Values);
}

void test_unsafe_command_files_refused(void**) {
  const std::string writable = script("writable", "echo +15550100001", 0757);
  SourceAnswer a = run(writable);
  EXPECT_KIND(a, Kind::Misconfigured);
  assert_contains(a.problem, "writable by group or others");
  a = run(script("group_writable", "echo +15550100001", 0775));
  EXPECT_KIND(a, Kind::Misconfigured);
  // Not owned by root.
  const std::string owned = script("owned", "echo +15550100001");
  assert_int_equal(chown(owned.c_str(), 65534, 65534), 0);
  a = run(owned);
  EXPECT_KIND(a, Kind::Misconfigured);
  assert_contains(a.problem, "owned by root");
  // A safe link to an unsafe file is judged by the file.
  const std::string link = g_dir + "/link";
  assert_int_equal(symlink(writable.c_str(), link.c_str()), 0);
  a = run(link);
  EXPECT_KIND(a, Kind::Misconfigured);
  // A directory others can write to.
  const std::string sub = g_dir + "/open";
  assert_int_equal(mkdir(sub.c_str(), 0777), 0);
  assert_int_equal(chmod(sub.c_str(), 0777), 0);
  const std::string inside = sub + "/cmd";
  std::ofstream(inside) << "#!/bin/sh\necho +15550100001\n";
  chmod(inside.c_str(), 0755);
  a = run(inside);
  EXPECT_KIND(a, Kind::Misconfigured);
  assert_contains(a.problem, "directory");
  // Under /tmp, which everybody can write to.
  EXPECT_KIND(run("/tmp/../tmp/ptv-no-such-command"), Kind::Misconfigured);
  // Missing, not executable, relative.
  EXPECT_KIND(run(g_dir + "/missing"), Kind::Misconfigured);
  EXPECT_KIND(run(script("not_exec", "echo +15550100001", 0644)), Kind::Misconfigured);
  EXPECT_KIND(run("relative/cmd"), Kind::Misconfigured);
  // The same script, made safe, runs.
  chmod(writable.c_str(), 0755);
  EXPECT_KIND(run(writable), Kind::Values);
}

void test_command_user_must_exist(void**) {
  ptv::CommandSettings s;
  s.path = script("user_check", "echo +15550100001");
  s.user = "no-such-user-ptv";
  SourceAnswer a = answer_of(ptv::run_lookup_command(s, "alice"));
  EXPECT_KIND(a, Kind::Misconfigured);
  assert_contains(a.problem, "does not exist");
  s.user = "root";
  a = answer_of(ptv::run_lookup_command(s, "alice"));
  EXPECT_KIND(a, Kind::Misconfigured);
  s.user = "nobody";
  EXPECT_KIND(answer_of(ptv::run_lookup_command(s, "alice")), Kind::Values);
}

void test_interpret_output(void**) {
  EXPECT_KIND(answer_of(ptv::interpret_command_output("")), Kind::NotFound);
  EXPECT_KIND(answer_of(ptv::interpret_command_output("\n\n")), Kind::NotFound);
  SourceAnswer a = answer_of(ptv::interpret_command_output("  +15550100001  \r\nrest"));
  EXPECT_KIND(a, Kind::Values);
  assert_str_eq(a.values[0], "+15550100001");
  a = answer_of(ptv::interpret_command_output(std::string_view("+1555\0" "0100001\n", 13)));
  EXPECT_KIND(a, Kind::Values);
  assert_true(a.values[0].find('?') != std::string::npos);
}

}  // namespace

int main() {
  // fakeroot reports uid 0 but cannot switch users.
  if (geteuid() != 0 || std::getenv("FAKEROOTKEY") != nullptr) {
    std::puts("SKIP: needs root (to own the commands and switch to nobody)");
    return 77;
  }
  const CMUnitTest tests[] = {
      cmocka_unit_test(test_interpret_output),
      cmocka_unit_test(test_success),
      cmocka_unit_test(test_runs_as_contract_says),
      cmocka_unit_test(test_no_output_is_no_number),
      cmocka_unit_test(test_garbage_output_is_a_value_that_will_not_validate),
      cmocka_unit_test(test_nonzero_exit),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_huge_output),
      cmocka_unit_test(test_unsafe_command_files_refused),
      cmocka_unit_test(test_command_user_must_exist),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
