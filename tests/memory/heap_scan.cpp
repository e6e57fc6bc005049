// After a complete login, no copy of the auth token or of the LDAP bind
// password may be left anywhere in the process's writable memory: not in
// the module's own buffers, and not in freed heap that a library (libconfig
// above all) filled and freed without wiping.
//
// One approved login through real libpam (pam_wrapper, nss_wrapper) and
// the real module, against the bundled Verify emulator; pam_end; then
// every readable, writable private mapping of /proc/self/maps ([heap],
// [stack], anonymous mappings, the libraries' data) is searched for the
// raw bytes of the token and of the password. Each is 48 random
// alphanumeric characters (about 285 bits), so a match is a copy, never
// chance.
//
// This process must not hold the secrets itself, or it would find its own
// copies. It keeps them only bit-inverted (every byte ~b) and compares
// memory against the inverted form byte by byte. A helper process forked
// at the start turns them back into text: it owns the emulator (an
// EmulatorProcess keeps the token it was started with), writes the
// configuration file, and answers this process's questions for the code
// the emulator "sent", over a pipe that carries only numbers and codes.
//
// Also searched: the base64 form of "account_sid:token" that the
// Authorization header carries. libcurl builds it into request buffers of
// its own and frees them unwiped; since the privilege split libcurl runs
// in the helper, and the PAM application must hold no copy of it either.
//
// Usage: heap_scan MODULE_SO
// Environment: PTV_MEMORY_WORK (work directory: ptv.conf, emulator, log),
// the pam_wrapper / nss_wrapper variables (the service "ptv_heap" must name
// the module and $PTV_MEMORY_WORK/ptv.conf; the user loop01 must exist).
// Exit: 0 no copy found, 1 a copy found (or the login failed), 77 skipped.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <security/pam_appl.h>

#include "emulator_process.hpp"
#include "memory_login.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define PTV_HEAP_SCAN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PTV_HEAP_SCAN_ASAN 1
#endif
#endif

namespace {

const std::string kAccount = "AC6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e";
const std::string kService = "VA8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c8c";
const std::string kUser = "loop01";
const std::string kPhone = "+15553100001";
constexpr std::size_t kSecretLength = 48;

// A byte string held bit-inverted, so that this process never holds it.
struct Needle {
  std::string label;
  std::vector<unsigned char> inverted;
};

bool random_needle(const char* label, Needle& out) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char random[kSecretLength];
  const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = read(fd, random, sizeof random) == sizeof random;
  close(fd);
  out.label = label;
  for (unsigned char r : random)
    out.inverted.push_back(
        static_cast<unsigned char>(~kAlphabet[r % (sizeof kAlphabet - 1)]));
  return ok;
}

// Only the helper process turns a needle back into text.
std::string revealed(const Needle& n) {
  std::string s;
  for (unsigned char b : n.inverted) s += static_cast<char>(~b);
  return s;
}

// base64 of the bytes the inverted input stands for, itself inverted.
Needle inverted_base64(const char* label,
                       const std::vector<unsigned char>& inverted_in) {
  static const char kB64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  Needle out{label, {}};
  const std::size_t n = inverted_in.size();
  for (std::size_t i = 0; i < n; i += 3) {
    unsigned v = static_cast<unsigned char>(~inverted_in[i]) << 16;
    if (i + 1 < n) v |= static_cast<unsigned char>(~inverted_in[i + 1]) << 8;
    if (i + 2 < n) v |= static_cast<unsigned char>(~inverted_in[i + 2]);
    for (int k = 0; k < 4; ++k) {
      const bool pad = (k == 2 && i + 1 >= n) || (k == 3 && i + 2 >= n);
      const char c = pad ? '=' : kB64[(v >> (18 - 6 * k)) & 0x3f];
      out.inverted.push_back(static_cast<unsigned char>(~c));
    }
  }
  return out;
}

// ------------------------------------------------------------- the helper

bool write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string read_line(int fd) {
  std::string line;
  char c = 0;
  while (read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

bool write_config(const std::string& work, ptv_test::EmulatorProcess& em,
                  const std::string& token, const std::string& password) {
  std::ostringstream c;
  c << ptv_memory::config_head(kAccount, token, kService, em)
    << "users = ( (\"" << kUser << "\", \"" << kPhone << "\") );\n"
    << "# present, not used: its password is parsed like any secret\n"
    << "ldap = {\n"
    << "  uri = \"ldaps://ldap.example.invalid\";\n"
    << "  base = \"ou=people,dc=example,dc=invalid\";\n"
    << "  bind_dn = \"cn=pam,dc=example,dc=invalid\";\n"
    << "  bind_password = \"" << password << "\";\n"
    << "};\n"
    << "state_dir = \"" << work << "/state\";\n";
  // A fresh send limit for every run: the counts of earlier runs would
  // deny the login.
  std::error_code ignored;
  std::filesystem::remove_all(work + "/state", ignored);
  mkdir((work + "/state").c_str(), 0700);
  return ptv_memory::write_private_file(work + "/ptv.conf", c.str());
}

// The helper: starts the emulator and writes the configuration with the
// secrets in clear, then answers "code PHONE" lines until "quit".
[[noreturn]] void helper_main(const std::string& work, const Needle& token,
                              const Needle& password, int in, int out) {
  const std::string token_text = revealed(token);
  const std::string password_text = revealed(password);
  if (const char* dir = std::getenv("PTV_TEST_SECRETS_DIR")) {
    if (std::FILE* f = std::fopen((std::string(dir) + "/memory-heap.txt").c_str(), "w")) {
      std::fprintf(f, "token %s\ntoken %s\nnumber %s\n", token_text.c_str(),
                   password_text.c_str(), kPhone.c_str());
      std::fclose(f);
    }
  }
  mkdir((work + "/emulator").c_str(), 0700);
  ptv_test::EmulatorProcess em(work + "/emulator", kAccount, token_text, kService);
  const bool ready = em.start() && write_config(work, em, token_text, password_text);
  write_all(out, ready ? "ready\n" : "failed\n");
  for (;;) {
    const std::string line = read_line(in);
    if (!ready || line.empty() || line == "quit") break;
    if (line.starts_with("code "))
      write_all(out, em.last_code(line.substr(5)) + "\n");
  }
  em.stop();
  _exit(0);
}

struct Helper {
  pid_t pid = -1;
  int to = -1;    // commands to the helper
  int from = -1;  // its answers
};

bool start_helper(const std::string& work, const Needle& token,
                  const Needle& password, Helper& h) {
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) return false;
  h.pid = fork();
  if (h.pid < 0) return false;
  if (h.pid == 0) {
    close(down[1]);
    close(up[0]);
    helper_main(work, token, password, down[0], up[1]);
  }
  close(down[0]);
  close(up[1]);
  h.to = down[1];
  h.from = up[0];
  return read_line(h.from) == "ready";
}

void stop_helper(Helper& h) {
  if (h.pid <= 0) return;
  write_all(h.to, "quit\n");
  close(h.to);
  close(h.from);
  int status = 0;
  waitpid(h.pid, &status, 0);
  h.pid = -1;
}

// ------------------------------------------------------------- the login

// The code the helper's emulator sent, asked for over the pipe ("0000",
// and `no_code` set, when there is none).
std::string code_from(Helper& helper, bool& no_code) {
  write_all(helper.to, "code " + kPhone + "\n");
  std::string code = read_line(helper.from);
  if (code.empty()) {
    no_code = true;
    code = "0000";
  }
  return code;
}

// ------------------------------------------------------------- the scan

struct Mapping {
  unsigned long start = 0, end = 0;
  std::string line;
};

// Readable, writable, private mappings, but the kernel's [vvar] and
// [vsyscall] pages.
std::vector<Mapping> writable_mappings() {
  std::vector<Mapping> out;
  std::string text;
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, n);
  close(fd);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    Mapping m;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &m.start, &m.end, perms) != 3)
      continue;
    if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p') continue;
    if (line.find("[vvar") != std::string::npos ||
        line.find("[vsyscall]") != std::string::npos)
      continue;
    m.line = line;
    out.push_back(m);
  }
  return out;
}

bool matches_at(const unsigned char* p, const Needle& n) {
  for (std::size_t j = 0; j < n.inverted.size(); ++j)
    if (p[j] != static_cast<unsigned char>(~n.inverted[j])) return false;
  return true;
}

struct Finding {
  const Needle* needle;
  std::string mapping;
  unsigned long address;
};

struct Window {
  unsigned char* data;
  std::size_t size;
};

// [from, to) of mapping `m`, read through /proc/self/mem (a page that
// cannot be read ends the range instead of faulting) into the window, in
// steps that overlap by a needle's length.
void scan_range(int mem, const Mapping& m, unsigned long from, unsigned long to,
                const std::vector<const Needle*>& needles, const Window& w,
                std::vector<Finding>& found) {
  std::size_t longest = 1;
  for (const Needle* n : needles) longest = std::max(longest, n->inverted.size());
  for (unsigned long at = from; at < to;) {
    const std::size_t want = std::min<unsigned long>(w.size, to - at);
    const ssize_t got = pread(mem, w.data, want, static_cast<off_t>(at));
    if (got <= 0) break;
    const auto size = static_cast<std::size_t>(got);
    for (const Needle* n : needles)
      for (std::size_t i = 0; i + n->inverted.size() <= size; ++i)
        if (matches_at(w.data + i, *n)) found.push_back({n, m.line, at + i});
    if (size < want || at + size >= to) break;
    at += size - (longest - 1);
  }
}

// Every mapping but the window itself (a mapping of its own, which the
// kernel may have merged with a neighbour): what the window copies is
// never found a second time.
void scan(const std::vector<Mapping>& maps, const std::vector<const Needle*>& needles,
          const Window& w, std::vector<Finding>& found) {
  const int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (mem < 0) return;
  const auto own = reinterpret_cast<unsigned long>(w.data);
  const unsigned long own_end = own + w.size;
  for (const Mapping& m : maps) {
    if (own_end <= m.start || own >= m.end) {
      scan_range(mem, m, m.start, m.end, needles, w, found);
      continue;
    }
    if (m.start < own) scan_range(mem, m, m.start, own, needles, w, found);
    if (own_end < m.end) scan_range(mem, m, own_end, m.end, needles, w, found);
  }
  close(mem);
  explicit_bzero(w.data, w.size);
}

// The login, with the module's log (pam_syslog, which pam_wrapper writes
// to stderr) kept in a file that the suite's secret scan reads. True when
// approved after exactly one prompt answered with the code sent.
bool login(const std::string& work, Helper& helper) {
  std::fflush(stderr);
  const int saved_stderr = dup(2);
  const int logfd =
      open((work + "/heap.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (saved_stderr < 0 || logfd < 0) return false;
  dup2(logfd, 2);
  close(logfd);
  bool no_code = false;
  ptv_memory::Prompter prompter{
      [&](int) { return code_from(helper, no_code); }};
  const struct pam_conv conv = {ptv_memory::answer_prompts, &prompter};
  pam_handle_t* pamh = nullptr;
  int rc = pam_start("ptv_heap", kUser.c_str(), &conv, &pamh);
  if (rc == PAM_SUCCESS) rc = pam_authenticate(pamh, 0);
  if (pamh != nullptr) pam_end(pamh, rc);
  std::fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  if (rc == PAM_SUCCESS && prompter.prompts == 1 && !no_code) return true;
  std::printf("FAIL: the login was not approved (rc %d, %d prompts%s); see "
              "%s/heap.log\n",
              rc, prompter.prompts, no_code ? ", no code in the outbox" : "",
              work.c_str());
  return false;
}

// Scans and prints what it found; the number of copies found.
int scan_and_report(const std::vector<const Needle*>& secrets,
                    const Needle& header) {
  constexpr std::size_t kWindow = 1 << 20;
  void* w = mmap(nullptr, kWindow, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (w == MAP_FAILED) return 1;
  std::vector<const Needle*> needles = secrets;
  needles.push_back(&header);
  const std::vector<Mapping> maps = writable_mappings();
  std::vector<Finding> found;
  scan(maps, needles, Window{static_cast<unsigned char*>(w), kWindow}, found);
  munmap(w, kWindow);
  unsigned long bytes = 0;
  for (const Mapping& m : maps) bytes += m.end - m.start;
  std::printf("scanned %zu readable, writable private mappings: %lu KiB, "
              "the scan's own 1024 KiB read window left out\n",
              maps.size(), (bytes - kWindow) / 1024);
  int copies = 0;
  for (const Finding& f : found) {
    std::printf("FAIL: %s at 0x%lx in\n    %s\n", f.needle->label.c_str(),
                f.address, f.mapping.c_str());
    ++copies;
  }
  for (const Needle* n : needles) {
    bool any = false;
    for (const Finding& f : found) any = any || f.needle == n;
    if (!any) std::printf("%s: no copy\n", n->label.c_str());
  }
  return copies;
}

int run(const std::string& module, const std::string& work) {
  Needle token, password;
  if (!random_needle("auth token", token) ||
      !random_needle("ldap bind_password", password)) {
    std::printf("cannot read /dev/urandom\n");
    return 1;
  }
  std::vector<unsigned char> credentials;
  for (char c : kAccount + ":")
    credentials.push_back(static_cast<unsigned char>(~c));
  credentials.insert(credentials.end(), token.inverted.begin(),
                     token.inverted.end());
  const Needle header =
      inverted_base64("base64 of account_sid:token", credentials);
  Helper helper;
  if (!start_helper(work, token, password, helper)) {
    std::printf("the emulator did not start, or the configuration could not "
                "be written\n");
    stop_helper(helper);
    return 1;
  }
  const bool approved = login(work, helper);
  stop_helper(helper);
  if (!approved) return 1;
  std::printf("one login through %s approved (1 prompt), pam_end done\n",
              module.c_str());
  const int copies = scan_and_report({&token, &password}, header);
  std::printf("module log: %s/heap.log\n", work.c_str());
  return copies == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef PTV_HEAP_SCAN_ASAN
  (void)argc;
  (void)argv;
  std::printf("skipped: under AddressSanitizer freed memory sits in its "
              "quarantine and its shadow spans terabytes\n");
  return 77;
#else
  const auto work = ptv_memory::work_directory(argc, "heap_scan MODULE_SO");
  if (!work) return work.error();
  return run(argv[1], *work);
#endif
}
