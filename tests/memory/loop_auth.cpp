// One process, many logins in a row, as a long-running PAM application
// runs them: pam_start / pam_authenticate / pam_end in a loop, under
// pam_wrapper and nss_wrapper, with the real module talking HTTPS to the
// bundled Verify emulator. The conversation reads each code from the
// emulator's control port.
//
// Logins cycle through three kinds so that every exit path of a login is
// repeated: the right code; a wrong code then the right one; a wrong code
// at every prompt (denied, the verification is canceled). Users rotate
// over PTV_LOOP_USERS numbers and the emulator is reset every 50 logins,
// so its limit of 5 sends per number in its window is never reached.
//
// After a warm-up (libpam, libcurl, OpenSSL and glibc's allocator reach
// their steady state) the resident set size and the number of open file
// descriptors are taken; at the end they are taken again:
//   - open descriptors must be exactly the same;
//   - RSS may grow by at most PTV_LOOP_RSS_BOUND_KIB (default 1024 KiB).
// A leak of a curl handle, a TLS session, a configuration copy or a
// response buffer per login costs kilobytes to hundreds of kilobytes each
// time and crosses that bound within a few hundred logins (950 logins x
// 1.1 KiB = 1 MiB); allocator noise (arena and top-of-heap trimming) stays
// well below it. Leaks smaller than about 1 KiB per login are the job of
// the valgrind run of the same program.
//
// Usage: loop_auth MODULE_SO [ITERATIONS [WARMUP]]
// WARMUP 0: no RSS or descriptor check (for the valgrind run, where the
// tool's own memory and descriptors dominate).
// Environment: PTV_MEMORY_WORK (work directory: ptv.conf, emulator, log),
// plus the pam_wrapper / nss_wrapper variables; the service "ptv_loop"
// must name the module and $PTV_MEMORY_WORK/ptv.conf.
// Exit: 0 pass, 1 fail, 77 not root.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <security/pam_appl.h>

#include "emulator_process.hpp"
#include "memory_login.hpp"

namespace {

const std::string kAccount = "AC5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const std::string kToken = "loop-token-never-logged-3c9d1e";
const std::string kService = "VA7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b";
constexpr int kUsers = 20;

std::string phone_of(int user) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "+1555310%04d", user);
  return buf;
}

std::string user_name(int user) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "loop%02d", user);
  return buf;
}

enum class Kind { Right, WrongThenRight, AllWrong };

Kind kind_of(int i) { return static_cast<Kind>(i % 3); }

struct ConvState {
  ptv_test::EmulatorProcess* em = nullptr;
  std::FILE* secrets = nullptr;  // where the codes are recorded
  std::string phone;
  Kind kind = Kind::Right;
  bool failed_fetch = false;
};

// The reply to prompt number `prompt` of a login of `st.kind`: the code the
// emulator sent, or a wrong one.
std::string code_for(ConvState& st, int prompt) {
  std::string code = st.em->last_code(st.phone);
  if (code.empty()) {
    st.failed_fetch = true;
    code = "0000";
  } else if (st.secrets != nullptr) {
    std::fprintf(st.secrets, "code %s\n", code.c_str());
  }
  const bool wrong = st.kind == Kind::AllWrong ||
                     (st.kind == Kind::WrongThenRight && prompt == 1);
  if (wrong) code.back() = code.back() == '0' ? '1' : '0';
  return code;
}

long rss_kib() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n - 1;  // the directory stream's own descriptor
}

std::string fd_list() {
  std::string out;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return out;
  const int own = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == own) continue;
    char target[512] = {};
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t len = readlink(link.c_str(), target, sizeof target - 1);
    out += std::string("  ") + e->d_name + " -> " +
           (len > 0 ? std::string(target, len) : "?") + "\n";
  }
  closedir(d);
  return out;
}

bool module_knows(const std::string& module, const std::string& word) {
  std::ifstream in(module, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  return bytes.find(word) != std::string::npos;
}

bool write_config(const std::string& work, const std::string& module,
                  ptv_test::EmulatorProcess& em) {
  std::ostringstream c;
  c << ptv_memory::config_head(kAccount, kToken, kService, em) << "users = (\n";
  for (int u = 1; u <= kUsers; ++u)
    c << "  (\"" << user_name(u) << "\", \"" << phone_of(u) << "\")"
      << (u < kUsers ? ",\n" : "\n");
  c << ");\n";
  // Settings of other work: a per-user send limit kept in a state
  // directory. Every user logs in up to ITERATIONS / 20 times here.
  if (module_knows(module, "send_limit"))
    c << "send_limit = { count = 100; window_s = 60; };\n";
  if (module_knows(module, "state_dir")) {
    const std::string state = work + "/state";
    mkdir(state.c_str(), 0700);
    c << "state_dir = \"" << state << "\";\n";
  }
  return ptv_memory::write_private_file(work + "/ptv.conf", c.str());
}

}  // namespace

int main(int argc, char** argv) {
  const auto work_dir = ptv_memory::work_directory(
      argc, "loop_auth MODULE_SO [ITERATIONS [WARMUP]]");
  if (!work_dir) return work_dir.error();
  const std::string& work = *work_dir;
  const std::string module = argv[1];
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int warmup = argc > 3 ? std::atoi(argv[3]) : 50;
  const char* bound_env = std::getenv("PTV_LOOP_RSS_BOUND_KIB");
  const long bound_kib = bound_env ? std::atol(bound_env) : 1024;

  // The run's secrets, for the suite's final scan of the logs.
  std::FILE* secrets = nullptr;
  if (const char* dir = std::getenv("PTV_TEST_SECRETS_DIR")) {
    const std::string base = work.substr(work.find_last_of('/') + 1);
    secrets = std::fopen((std::string(dir) + "/memory-" + base + ".txt").c_str(), "w");
    if (secrets != nullptr) {
      std::fprintf(secrets, "token %s\n", kToken.c_str());
      for (int u = 1; u <= kUsers; ++u)
        std::fprintf(secrets, "number %s\n", phone_of(u).c_str());
    }
  }
  mkdir((work + "/emulator").c_str(), 0700);
  ptv_test::EmulatorProcess em(work + "/emulator", kAccount, kToken, kService);
  if (!em.start()) {
    std::fprintf(stderr, "the emulator did not start\n");
    return 1;
  }
  if (!write_config(work, module, em)) {
    std::fprintf(stderr, "cannot write %s/ptv.conf\n", work.c_str());
    return 1;
  }

  // The module logs through pam_syslog, which pam_wrapper writes to
  // stderr: keep those lines in a file (the suite's secret scan reads it).
  const std::string log_path = work + "/loop.log";
  std::fflush(stderr);
  const int saved_stderr = dup(2);
  const int logfd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (saved_stderr < 0 || logfd < 0) return 1;
  dup2(logfd, 2);
  close(logfd);

  int failures = 0;
  long rss_warm = 0, rss_peak_after_warm = 0;
  int fds_warm = -1;
  std::vector<std::pair<int, long>> trend;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    if (i % 50 == 0 && !em.reset()) {
      std::printf("iteration %d: emulator reset failed\n", i);
      ++failures;
      break;
    }
    const int user = i % kUsers + 1;
    ConvState st;
    st.em = &em;
    st.secrets = secrets;
    st.phone = phone_of(user);
    st.kind = kind_of(i);
    ptv_memory::Prompter prompter{[&st](int prompt) { return code_for(st, prompt); }};
    const struct pam_conv conv = {ptv_memory::answer_prompts, &prompter};
    pam_handle_t* pamh = nullptr;
    int rc = pam_start("ptv_loop", user_name(user).c_str(), &conv, &pamh);
    if (rc == PAM_SUCCESS) rc = pam_authenticate(pamh, 0);
    if (pamh != nullptr) pam_end(pamh, rc);
    const int expected = st.kind == Kind::AllWrong ? PAM_AUTH_ERR : PAM_SUCCESS;
    const int expected_prompts = st.kind == Kind::Right            ? 1
                                 : st.kind == Kind::WrongThenRight ? 2
                                                                   : 3;
    if (rc != expected || prompter.prompts != expected_prompts ||
        st.failed_fetch) {
      if (failures < 10)
        std::printf("iteration %d (%s): rc %d expected %d, %d prompts "
                    "expected %d%s\n",
                    i, user_name(user).c_str(), rc, expected, prompter.prompts,
                    expected_prompts,
                    st.failed_fetch ? ", no code in the outbox" : "");
      ++failures;
    }
    if (i + 1 == warmup) {
      rss_warm = rss_kib();
      fds_warm = open_fds();
    }
    if (i + 1 > warmup) {
      const long r = rss_kib();
      if (r > rss_peak_after_warm) rss_peak_after_warm = r;
    }
    if ((i + 1) % 100 == 0) trend.emplace_back(i + 1, rss_kib());
  }
  const double seconds = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - t0)
                             .count();
  // Taken before stderr is restored, so the descriptors are the same set
  // as at the end of the warm-up.
  const long rss_end = rss_kib();
  const int fds_end = open_fds();
  const std::string fds_now = fd_list();
  std::fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  em.stop();

  std::printf("%d logins in %.1f s (%.1f ms each), %d failed\n", iterations,
              seconds, 1000.0 * seconds / (iterations ? iterations : 1),
              failures);
  if (warmup > 0 && iterations > warmup) {
    std::printf("RSS after %d logins: %ld KiB; after %d: %ld KiB; "
                "growth %+ld KiB (bound %ld KiB); peak after warm-up %ld KiB\n",
                warmup, rss_warm, iterations, rss_end, rss_end - rss_warm,
                bound_kib, rss_peak_after_warm);
    std::printf("open fds after %d logins: %d; after %d: %d\n", warmup,
                fds_warm, iterations, fds_end);
    std::printf("RSS trend (logins: KiB):");
    for (const auto& [n, kib] : trend) std::printf(" %d:%ld", n, kib);
    std::printf("\n");
    if (fds_end != fds_warm) {
      std::printf("FAIL: open descriptors changed; now:\n%s",
                  fds_now.c_str());
      ++failures;
    }
    if (rss_end - rss_warm > bound_kib) {
      std::printf("FAIL: RSS grew by more than %ld KiB\n", bound_kib);
      ++failures;
    }
  } else {
    std::printf("open fds at the end: %d (not checked)\n", fds_end);
  }
  if (secrets != nullptr) std::fclose(secrets);
  std::printf("module log: %s\n", log_path.c_str());
  return failures == 0 ? 0 : 1;
}
