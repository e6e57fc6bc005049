// The real entry point, pam_sm_authenticate (src/pam/pam_twilio_verify.cpp
// compiled into this target), with the system around it replaced at link
// time: the target is linked with -Wl,--wrap=SYMBOL for every call below
// (see CMakeLists.txt), the technique of pam-u2f's fuzz/wrap.c. Every
// undefined reference to SYMBOL in the objects of this program, the
// module's included, goes to __wrap_SYMBOL here; __real_SYMBOL is the
// real one. The wraps act only on the fuzzing thread while the module
// runs (t_armed); anywhere else (libFuzzer, the fake helper's thread, this
// file's own set-up) they pass through.
//
// What the wraps do:
//  - no libpam state: pam_get_item (PAM_USER, PAM_SERVICE, PAM_CONV,
//    PAM_AUTHTOK), pam_get_user and pam_syslog answer from the input; the
//    conversation is a function of this file, scripted by the input;
//  - no process starts: socketpair is real, fork returns a fake pid and
//    starts, in a thread, a FAKE HELPER END on the other end of the socket
//    pair (FakeHelper), one of two kinds:
//      scripted: sends what the input scripts: well-formed messages
//        (encoded with the protocol's own encoder), raw frames, raw bytes,
//        and waits for the module's answers: a helper that may break
//        every rule;
//      session: the helper's real session (ptv::serve_login) with the
//        shared fakes of tests/unit/fakes.hpp (FakeWorld, FakeHttp): the
//        real configuration file, a fake Verify service and directory
//        answering from the input;
//    waitpid reaps it once its thread has ended, kill (SIGKILL) shuts its
//    socket; execve must never be reached;
//  - the caller's ids: getuid, geteuid, getgid, getegid and
//    getauxval(AT_SECURE) say what the input chose (a set-id caller, a
//    module not running as root);
//  - the account: getpwnam_r answers from the input (found, found under
//    another name, unknown, with or without a GECOS phone);
//  - free only looks: whether the module wipes and frees the replies
//    the conversation handed it;
//  - failure injection: the input names up to four (function, N, mode)
//    triples; the Nth call (from 0) of that wrapped function during the
//    login fails in that mode: NULL or std::bad_alloc for allocation; -1
//    with an errno (or a short read or write, a spurious poll timeout)
//    for open, openat, read, pread, pwrite, send, poll, stat, lstat, fstat,
//    fstatat, mkdir, socketpair, fork, waitpid and kill; NULL for
//    realpath; an error code (or success with no item) for pam_get_item
//    and pam_get_user; an errno for getpwnam_r. With PTV_FUZZ_SWEEP=MODES
//    each input is then run again once per call the module made, that
//    call failing alone: every call site in turn (see sweep).
// The configuration files are real: written once at start-up into a
// private root-owned directory under /run (mode 0600, owned by root, as
// the loader demands), with the helper= program (root-owned, never run)
// and the send limit's state directory (emptied before each login).
// Running it needs root.
//
// Input layout (bytes from the front; an exhausted input reads as zeros):
//   [0] configuration: bit 0 failmode safe, bit 1 no_phone skip, bits 2-3
//       phone_sources (users, gecos, ldap, users+ldap), bit 4 services set
//       (sshd, login); bits 5-7 the file: 0-3 good, 4 syntax error,
//       5 mode 0644, 6 owned by uid 1000, 7 a symbolic link to the good one
//   [1] module arguments: bit 0 debug, bits 1-2 helper= (0-1 the private
//       helper, 2 a missing file, 3 none: the default path), bit 3 an
//       unknown argument, bit 4 a relative conf=, bit 5 PAM_SILENT, bit 6 a
//       NULL argument, bit 7 an earlier conf= of a missing file
//   [2] caller: bits 0-2 ids (0-3 root, 4 setuid: uid 1000 euid 0, 5 setgid,
//       6 AT_SECURE, 7 uid and euid 1000: not root); bits 3-5 PAM_SERVICE
//       (sshd, login, sudo, su, cron, NULL, fuzzed, fuzzed); bits 6-7
//       PAM_AUTHTOK (none, the password 20240607, the good code, fuzzed)
//   [3] user: bits 0-2 what pam_get_user gives (alice, bob, carol, root,
//       dave, fuzzed, "", NULL with PAM_SUCCESS); bit 3 PAM_USER set before
//       pam_get_user; bits 4-6 the account (0-3 found as typed, 4 found
//       under another name, 5 unknown, 6 found with an empty name, 7 found
//       with no GECOS); bit 7 the helper's end: 0 scripted, 1 session
//   [4] GECOS (mod 6): "Alice,,+1 555 123 4567,", "Bob,,,",
//       "Carol,,not a number", "", fuzzed, fuzzed
//   then the fuzzed strings chosen above, each a length byte and the bytes,
//   in this order: PAM_SERVICE, PAM_AUTHTOK, the user, the GECOS field;
//   then one byte: the number of faults (mod 5), each 4 bytes: function
//   (mod kFnCount, the Fn order below), N (16 bits, little-endian), mode;
//   then one length byte and that many bytes for the conversation: per
//   call one byte (mod 8): the good code 918273, a wrong code 564738, the
//   password, fuzzed text, a NULL reply, PAM_CONV_ERR, no response array,
//   PAM_CONV_ERR with a reply to free; the block's first byte picks the
//   conversation itself (6: PAM_CONV is NULL, 7: its function is NULL);
//   then, to the end, the helper's script (FakeHelper::run_script, or for
//   a session FakeHelper::parse_session).
// make_pam_entry_seeds.py writes the seed corpus in this layout.
//
// Invariants, on every input:
//  - allowed_pass(), one function: PAM_SUCCESS only for an approved check
//    or an outage under failmode = "safe" for a caller that is not set-id,
//    PAM_IGNORE only for no phone under no_phone = "skip" or a service
//    that services does not list; anything else aborts;
//  - every other result is a denial PAM knows, or pam_get_user's own
//    failure passed on;
//  - no exception leaves pam_sm_authenticate; no crash, leak (ASan, LSan),
//    or descriptor left open; no real process is started (execve), only
//    the module's own helper is signalled, never after it was reaped, and
//    it is reaped unless waitpid or kill was made to fail;
//  - every reply the conversation returned is wiped and then freed (free
//    is wrapped to look);
//  - the helper is started only when a number or a directory is there to
//    ask; the module tells it the account getpwnam_r gave (name, GECOS),
//    the configuration file, debug and whether the caller is set-id; it
//    answers each question of a helper that keeps to the protocol with the
//    right message, never with a malformed one, and never types the
//    password (PAM_AUTHTOK) as the code;
//  - every line it logs and every text it shows is printable ASCII.
// No gap is tolerated. (The first runs found three, since fixed in the
// module: a helper's "allowed-unavailable" or "skipped-no-phone" taken
// without the module's own reading of failmode and no_phone; the helper
// left unreaped when the allocation right after fork failed; a
// conversation reply leaked unwiped when the allocation right after the
// conversation returned failed.)
//
// PTV_FUZZ_VERBOSE=1 prints what each input did.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "core/outcome.hpp"
#include "fakes.hpp"
#include "fuzz_common.hpp"
#include "helper/helper_session.hpp"
#include "protocol/protocol.hpp"

namespace {

using namespace std::chrono_literals;
using ptv::HttpResponse;
using ptv_fakes::kBadCode;
using ptv_fakes::kGoodCode;
using ptv_fakes::kMasked;
using ptv_fakes::kSid;

// Digits, so that it is a well-formed code: it must still never be sent.
constexpr std::string_view kPassword = "20240607";
// The helper's pid: no process has it (kill and waitpid are wrapped).
constexpr pid_t kFakePid = 1999999999;
constexpr uid_t kUserId = 1000;

// ------------------------------------------------------------------ input

class Bytes {
 public:
  Bytes() = default;
  Bytes(const std::uint8_t* data, std::size_t size) : d_(data), n_(size) {}
  [[nodiscard]] std::size_t left() const { return n_ - pos_; }
  std::uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (u8() << 8));
  }
  std::uint32_t u32() {
    const std::uint32_t lo = u16();
    return lo | (std::uint32_t{u16()} << 16);
  }
  std::int64_t i64() {
    const std::uint64_t lo = u32();
    return static_cast<std::int64_t>(lo | (std::uint64_t{u32()} << 32));
  }
  // A length byte, then that many bytes (fewer at the end of the input).
  std::string str() {
    const std::size_t len = std::min<std::size_t>(u8(), left());
    std::string s(reinterpret_cast<const char*>(d_ + pos_), len);
    pos_ += len;
    return s;
  }
  Bytes take(std::size_t len) {
    len = std::min(len, left());
    Bytes b(d_ + pos_, len);
    pos_ += len;
    return b;
  }
  std::vector<std::uint8_t> rest() {
    std::vector<std::uint8_t> v(d_ + pos_, d_ + n_);
    pos_ = n_;
    return v;
  }

 private:
  const std::uint8_t* d_ = nullptr;
  std::size_t n_ = 0;
  std::size_t pos_ = 0;
};

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// --------------------------------------------------------- fault injection

// The wrapped functions that can be made to fail, in the input's order.
enum Fn : std::uint8_t {
  kMalloc, kCalloc, kRealloc, kNew, kNewArray, kOpen, kOpenat, kRead,
  kPread, kPwrite, kFstat, kStat, kLstat, kFstatat, kMkdir, kRealpath,
  kSocketpair, kFork, kWaitpid, kKill, kSend, kPoll, kPamGetItem,
  kPamGetUser, kGetpwnamR, kFnCount
};
const char* const kFnNames[kFnCount] = {
    "malloc", "calloc", "realloc", "operator new", "operator new[]", "open",
    "openat", "read", "pread", "pwrite", "fstat", "stat", "lstat", "fstatat",
    "mkdir", "realpath", "socketpair", "fork", "waitpid", "kill", "send",
    "poll", "pam_get_item", "pam_get_user", "getpwnam_r"};

struct Fault {
  std::uint8_t fn = 0;
  std::uint16_t nth = 0;
  std::uint8_t mode = 0;
};

// Set on the fuzzing thread only while pam_sm_authenticate runs.
thread_local bool t_armed = false;

struct FaultPlan {
  Fault faults[4];
  int count = 0;
  std::uint32_t calls[kFnCount] = {};
  std::uint32_t fired[kFnCount] = {};
};
FaultPlan g_plan;

// The mode of the fault planned for this call of fn, or -1. Counts the
// call when armed.
int fault_for(Fn fn) {
  if (!t_armed) return -1;
  const std::uint32_t call = g_plan.calls[fn]++;
  for (int i = 0; i < g_plan.count; ++i) {
    const Fault& f = g_plan.faults[i];
    if (f.fn == fn && f.nth == call) {
      ++g_plan.fired[fn];
      return f.mode;
    }
  }
  return -1;
}

bool fired(Fn fn) { return g_plan.fired[fn] != 0; }

template <std::size_t N>
int pick(const int (&errnos)[N], int mode) {
  return errnos[static_cast<std::size_t>(mode) % N];
}

// This file's own work while armed (the conversation, the fake helper's
// start) is not the module's: no fault, no count.
class Disarm {
 public:
  Disarm() : was_(t_armed) { t_armed = false; }
  ~Disarm() { t_armed = was_; }
  Disarm(const Disarm&) = delete;
  Disarm& operator=(const Disarm&) = delete;

 private:
  bool was_;
};

// ------------------------------------------ the protocol, from the helper's end

std::uint32_t le32(std::string_view s) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= std::uint32_t{static_cast<unsigned char>(s[i])} << (8 * i);
  return v;
}

bool helper_sends(const ptv::Message& m) {
  return std::holds_alternative<ptv::PromptMsg>(m) ||
         std::holds_alternative<ptv::ShowErrorMsg>(m) ||
         std::holds_alternative<ptv::LogMsg>(m) ||
         std::holds_alternative<ptv::ReserveMsg>(m) ||
         std::holds_alternative<ptv::ReleaseMsg>(m) ||
         std::holds_alternative<ptv::ResultMsg>(m);
}

// What the module can have made of the helper's bytes, read as frames
// from the start with the protocol's decoder: the first result, if every
// frame before it is a well-formed message the helper may send; and
// whether the stream so far is whole such frames without a result (then a
// question at its end gets an answer).
struct StreamView {
  bool clean = true;
  std::optional<ptv::AuthResult> result;
};

StreamView read_stream(std::string_view s) {
  StreamView v;
  while (!s.empty()) {
    v.clean = false;
    if (s.size() < 4) return v;
    const std::uint32_t len = le32(s);
    if (len == 0 || len > ptv::kMaxFrameBytes || len > s.size() - 4) return v;
    auto m = ptv::decode_body(s.substr(4, len));
    if (!m || !helper_sends(*m)) return v;
    if (const auto* r = std::get_if<ptv::ResultMsg>(&*m)) {
      v.result = r->result;
      return v;
    }
    s.remove_prefix(4 + len);
    v.clean = true;
  }
  return v;
}

std::string frame(std::string_view body) {
  std::string f;
  for (int i = 0; i < 4; ++i)
    f.push_back(static_cast<char>(body.size() >> (8 * i)));
  f.append(body);
  return f;
}

// ------------------------------------------------- the Verify service (session)

// What the fake Verify service answers in session mode, by the input's pick.
ptv_fakes::Reply verify_reply(std::uint8_t pick) {
  using namespace ptv_fakes;
  using K = ptv::TransportErrorKind;
  switch (pick % 16) {
    case 0: return started();
    case 1: return approved();
    case 2: return pending();
    case 3: return canceled();
    case 4: return twilio_error(500, 20500);
    case 5: return twilio_error(503, 20503);
    case 6: return transport_error(K::Unreachable);
    case 7: return transport_error(K::Timeout);
    case 8: return transport_error(K::Protocol);
    case 9: return transport_error(K::Tls);
    case 10: return twilio_error(429, 20429);
    case 11: return twilio_error(429, 60203);
    case 12: return twilio_error(404, 20404);
    case 13: return twilio_error(401, 20003);
    case 14:
      return json(200, "{\"sid\":\"" + kSid +
                           "\",\"status\":\"approved\",\"valid\":false}");
    default: {  // "approved", but not JSON
      HttpResponse r = json(200, "approved");
      r.content_type = "text/html";
      return r;
    }
  }
}

// What a directory (ldap) may hold for the account, raw.
const char* const kDirectoryValues[] = {"+1 555 010 0001", "not a number", "",
                                        "+44 7700 900003"};

// --------------------------------------------------------- the fake helper

// The helper's end of the socket pair, in a thread. Two kinds:
//  - scripted (the default): it follows the script from the input, a
//    helper that may break every rule of the protocol, and records what it
//    sent and received;
//  - session: the helper's real session (ptv::serve_login) with the shared
//    fake world of tests/unit/fakes.hpp: the real configuration file, a
//    fake Verify service (ptv_fakes::FakeHttp) and directory answering
//    from the script (see parse_session).
// It never waits for the module without a bound, and it ends (shutting its
// socket) when its script ends, when the module closes, or when it is
// killed.
class FakeHelper {
 public:
  FakeHelper(int fd, std::vector<std::uint8_t> script, bool session)
      : fd_(fd), script_(std::move(script)), session_(session) {
    if (session_) parse_session();
  }
  ~FakeHelper() { join(); }
  FakeHelper(const FakeHelper&) = delete;
  FakeHelper& operator=(const FakeHelper&) = delete;

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  bool wait_done(std::chrono::milliseconds bound) {
    std::unique_lock lock(mutex_);
    return done_cv_.wait_for(lock, bound, [this] { return done_; });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  // SIGKILL: the kernel closes a dead helper's socket.
  void kill() { shutdown(fd_, SHUT_RDWR); }
  [[nodiscard]] bool session() const { return session_; }

  // Read after join. Scripted: what it sent, the request, the answers.
  std::string sent;
  std::optional<ptv::RequestMsg> request;
  std::vector<ptv::Message> answers;
  // Session: the Verify service's requests and scripted answers (by kind:
  // start, check, cancel), the directory's answer and how often it was
  // asked, and the configuration file the session loaded.
  ptv_fakes::FakeHttp http;
  std::vector<std::uint8_t> picks[3];
  ptv_fakes::Answer directory;
  int directory_calls = 0;
  std::optional<std::string> config_loaded;

 private:
  void run() {
    if (session_)
      run_session();
    else
      run_script();
    shutdown(fd_, SHUT_RDWR);  // the helper ends
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
  }

  // The session's script: for the start, check and cancel requests in
  // turn, a count (mod 4) and that many answer picks (verify_reply; past
  // them FakeHttp answers started, pending, canceled); then the
  // directory's answer: a kind (mod 6, ptv_fakes::Answer::Kind) and, for
  // values, a pick of kDirectoryValues.
  void parse_session() {
    Bytes in(script_.data(), script_.size());
    std::deque<ptv_fakes::Reply>* queues[3] = {
        &http.start_replies, &http.check_replies, &http.cancel_replies};
    for (int k = 0; k < 3; ++k) {
      const int n = in.u8() % 4;
      for (int i = 0; i < n; ++i) {
        picks[k].push_back(in.u8());
        queues[k]->push_back(verify_reply(picks[k].back()));
      }
    }
    directory.kind = static_cast<ptv_fakes::Answer::Kind>(in.u8() % 6);
    directory.problem = "fuzzed directory answer";
    if (directory.kind == ptv_fakes::Answer::Kind::Values)
      directory.values = {kDirectoryValues[in.u8() % std::size(kDirectoryValues)]};
  }

  void run_session() {
    ptv_fakes::FakeWorld world;
    world.config = [this](const std::string& path) {
      config_loaded = path;
      return ptv::load_config_file(path);
    };
    world.transport = [this]()
        -> std::expected<std::unique_ptr<ptv::HttpTransport>, ptv::TransportError> {
      return std::make_unique<ptv_fakes::ForwardingTransport>(http);
    };
    world.answer = [this](ptv::PhoneSource, const std::string&) {
      ++directory_calls;
      return directory;
    };
    ptv::MessageChannel ch(fd_);
    (void)ptv::serve_login(ch, world);
  }

  // The script, one step per byte (mod 14) and what the step needs:
  //   0 read the module's request        7 a result "approved"
  //   1 a log line                       8 a message only the module sends
  //   2 an error message to show         9 a raw frame (length, bytes)
  //   3 a prompt, then its answer       10 raw bytes
  //   4 reserve a send, then the answer 11 a frame header over the limit
  //   5 release a send, then the answer 12 stop here
  //   6 a result (outcome, fields)      13 a result "allowed-unavailable"
  // An answer is waited for only when everything sent so far is whole
  // well-formed frames the helper may send and no result: then the module
  // owes one.
  void run_script() {
    Bytes in(script_.data(), script_.size());
    ptv::MessageChannel ch(fd_);
    bool alive = true;
    for (int step = 0; alive && in.left() > 0 && step < 64; ++step) {
      const int kind = in.u8() % 14;
      switch (kind) {
        case 0:
          if (!request) alive = read_request(ch);
          break;
        case 1: {
          ptv::LogMsg m;
          m.priority = in.u8() % 9;  // 8 is out of range
          m.text = in.str();
          alive = put(m);
          break;
        }
        case 2:
          alive = put(ptv::ShowErrorMsg{in.str()});
          break;
        case 3:
          alive = ask(ch, ptv::PromptMsg{in.str()});
          break;
        case 4:
          alive = ask(ch, ptv::ReserveMsg{});
          break;
        case 5:
          alive = ask(ch, ptv::ReleaseMsg{in.i64()});
          break;
        case 6: {
          ptv::AuthResult r;
          r.outcome = static_cast<ptv::Outcome>(in.u8() % 19);  // 18: bad
          const std::uint8_t fields = in.u8();
          r.masked_phone = (fields & 3) == 0   ? std::string("-")
                           : (fields & 3) != 3 ? std::string(kMasked)
                                               : in.str();
          r.verification_sid = (fields & 12) == 0   ? std::string("-")
                               : (fields & 12) != 12 ? std::string(kSid)
                                                     : in.str();
          r.attempts = in.u8() % 8;
          r.detail = in.str();
          alive = put(ptv::ResultMsg{std::move(r)});
          break;
        }
        case 7:
        case 13: {
          ptv::AuthResult r;
          r.outcome = kind == 7 ? ptv::Outcome::Approved : ptv::Outcome::FailOpen;
          r.masked_phone = std::string(kMasked);
          r.verification_sid = std::string(kSid);
          r.attempts = 1;
          alive = put(ptv::ResultMsg{std::move(r)});
          break;
        }
        case 8:
          alive = put(module_message(in));
          break;
        case 9:
          alive = put_raw(frame(in.str()));
          break;
        case 10:
          alive = put_raw(in.str());
          break;
        case 11: {
          std::string header(4, '\0');
          const std::uint32_t len =
              static_cast<std::uint32_t>(ptv::kMaxFrameBytes) + 1 + in.u16();
          for (int i = 0; i < 4; ++i) header[i] = static_cast<char>(len >> (8 * i));
          alive = put_raw(header);
          break;
        }
        default:
          alive = false;
          break;
      }
    }
  }

  static ptv::Message module_message(Bytes& in) {
    switch (in.u8() % 5) {
      case 0: {
        ptv::RequestMsg m;
        m.config_path = "/etc/security/twilio_verify.conf";
        m.account = "alice";
        return m;
      }
      case 1:
        return ptv::CodeMsg{ptv::CodeProblem::None, ptv::Secret(kGoodCode)};
      case 2:
        return ptv::ConversationFailedMsg{};
      case 3: {
        ptv::SendReservation r;
        r.decision = ptv::SendDecision::Allowed;
        return ptv::ReservedMsg{std::move(r)};
      }
      default:
        return ptv::ReleasedMsg{};
    }
  }

  bool put_raw(std::string_view bytes) {
    sent.append(bytes);
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  bool put(const ptv::Message& m) {
    const ptv::Secret body = ptv::encode_body(m);
    return put_raw(frame(body.view()));
  }

  bool read_request(ptv::MessageChannel& ch) {
    auto m = ch.receive(5000ms);
    if (!m) {
      FUZZ_CHECK(m.error().error != ptv::ChannelError::Malformed);
      return false;
    }
    const auto* r = std::get_if<ptv::RequestMsg>(&*m);
    FUZZ_CHECK(r != nullptr);  // the module speaks first, with its request
    request = *r;
    return true;
  }

  // Sends a question; waits for its answer when the module owes one.
  bool ask(ptv::MessageChannel& ch, const ptv::Message& question) {
    if (!put(question)) return false;
    if (!read_stream(sent).clean) return true;
    if (!request && !read_request(ch)) return false;
    auto m = ch.receive(5000ms);
    if (!m) {
      // The module gave up (a fault, its own bound): nothing malformed.
      FUZZ_CHECK(m.error().error != ptv::ChannelError::Malformed);
      return false;
    }
    if (std::holds_alternative<ptv::PromptMsg>(question))
      FUZZ_CHECK(std::holds_alternative<ptv::CodeMsg>(*m) ||
                 std::holds_alternative<ptv::ConversationFailedMsg>(*m));
    else if (std::holds_alternative<ptv::ReserveMsg>(question))
      FUZZ_CHECK(std::holds_alternative<ptv::ReservedMsg>(*m));
    else
      FUZZ_CHECK(std::holds_alternative<ptv::ReleasedMsg>(*m));
    answers.push_back(std::move(*m));
    return true;
  }

  int fd_;
  std::vector<std::uint8_t> script_;
  bool session_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
};

// --------------------------------------------------------------- the login

// One input's world: what the wraps answer, and what they saw.
struct Run {
  // The caller.
  uid_t uid = 0, euid = 0;
  gid_t gid = 0, egid = 0;
  unsigned long at_secure = 0;
  bool set_id = false;
  // PAM items and the user.
  std::optional<std::string> user_item;
  std::optional<std::string> service;
  std::optional<std::string> authtok;
  std::optional<std::string> user;  // what pam_get_user gives
  bool conv_null = false, conv_fn_null = false;
  Bytes conv;
  // The account.
  int account_mode = 0;
  std::string gecos;
  std::string account_name;  // what getpwnam_r returned, if found
  std::string account_gecos;  // and its GECOS field
  // The helper.
  std::vector<std::uint8_t> script;
  bool session = false;  // the helper's real session, not a script
  int helper_fd = -1;  // the fake helper's end (a dup of socketpair's [1])
  std::unique_ptr<FakeHelper> fake;
  int forks = 0;
  std::uint32_t new_calls_at_fork = 0;  // operator new calls before it
  bool reaped = false;
  bool killed = false;
  // Seen.
  std::vector<std::string> log_lines;
  std::vector<std::string> shown;  // conversation texts
  std::vector<std::string> typed;  // conversation replies
  int prompts = 0;                 // PAM_PROMPT_ECHO_OFF calls
  // What the conversation handed the module to free: the response arrays
  // and the reply strings (whose bytes must be wiped first).
  struct Handed {
    void* p;
    std::size_t len;  // a reply's length; 0: an array
    bool freed;
  };
  std::vector<Handed> handed;
  std::vector<std::uint32_t> new_calls_at_conv_return;
  std::optional<std::string> service_seen;  // as the module got it
  std::vector<int> get_user_failures;       // pam_get_user's errors
};
Run* g_run = nullptr;

char g_pam_handle;  // only its address: the module's pamh
pam_handle_t* fake_pamh() {
  return reinterpret_cast<pam_handle_t*>(&g_pam_handle);
}

char* dup_c(std::string_view s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) std::abort();
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

// The application's conversation: one message per call (the module's
// way), replies from the input.
int converse(int n, const struct pam_message** msg, struct pam_response** resp) {
  Run& run = *g_run;
  FUZZ_CHECK(n == 1 && msg != nullptr && msg[0] != nullptr &&
             msg[0]->msg != nullptr && resp != nullptr);
  const std::string text = msg[0]->msg;
  run.shown.push_back(text);
  FUZZ_CHECK(printable(text));
  *resp = nullptr;
  if (msg[0]->msg_style != PAM_PROMPT_ECHO_OFF) return PAM_SUCCESS;
  ++run.prompts;
  auto reply = [&](std::optional<std::string_view> r) {
    auto* array = static_cast<pam_response*>(std::calloc(1, sizeof(pam_response)));
    if (array == nullptr) std::abort();
    run.handed.push_back({array, 0, false});
    if (r) {
      array[0].resp = dup_c(*r);
      run.handed.push_back({array[0].resp, r->size(), false});
      run.typed.emplace_back(*r);
    }
    *resp = array;
  };
  switch (run.conv.u8() % 8) {
    case 0: reply(kGoodCode); return PAM_SUCCESS;
    case 1: reply(kBadCode); return PAM_SUCCESS;
    case 2: reply(kPassword); return PAM_SUCCESS;
    case 3: {
      const std::string s = run.conv.str();
      reply(std::string_view(s.c_str()));  // up to a NUL, as C sees it
      return PAM_SUCCESS;
    }
    case 4: reply(std::nullopt); return PAM_SUCCESS;
    case 5: return PAM_CONV_ERR;
    case 6: return PAM_SUCCESS;  // no response array at all
    default: reply(kGoodCode); return PAM_CONV_ERR;
  }
}

int fake_conv(int n, const struct pam_message** msg, struct pam_response** resp,
              void* /*appdata*/) {
  Disarm d;
  const int rc = converse(n, msg, resp);
  g_run->new_calls_at_conv_return.push_back(g_plan.calls[kNew]);
  return rc;
}

struct pam_conv g_conv{fake_conv, nullptr};
struct pam_conv g_conv_without_function{nullptr, nullptr};

}  // namespace

// ------------------------------------------------------------------- wraps

extern "C" {

void __real_free(void*);
void* __real_malloc(size_t);
void* __real_calloc(size_t, size_t);
void* __real_realloc(void*, size_t);
void* __real__Znwm(size_t);
void* __real__Znam(size_t);
int __real_open(const char*, int, ...);
int __real_openat(int, const char*, int, ...);
ssize_t __real_read(int, void*, size_t);
ssize_t __real_pread(int, void*, size_t, off_t);
ssize_t __real_pwrite(int, const void*, size_t, off_t);
int __real_fstat(int, struct stat*);
int __real_stat(const char*, struct stat*);
int __real_lstat(const char*, struct stat*);
int __real_fstatat(int, const char*, struct stat*, int);
int __real_mkdir(const char*, mode_t);
char* __real_realpath(const char*, char*);
int __real_socketpair(int, int, int, int*);
pid_t __real_fork(void);
int __real_execve(const char*, char* const*, char* const*);
pid_t __real_waitpid(pid_t, int*, int);
int __real_kill(pid_t, int);
ssize_t __real_send(int, const void*, size_t, int);
int __real_poll(struct pollfd*, nfds_t, int);
uid_t __real_getuid(void);
uid_t __real_geteuid(void);
gid_t __real_getgid(void);
gid_t __real_getegid(void);
unsigned long __real_getauxval(unsigned long);
int __real_getpwnam_r(const char*, struct passwd*, char*, size_t, struct passwd**);

// What the module frees of the conversation's replies: wiped first.
void __wrap_free(void* p) {
  if (p != nullptr && t_armed && g_run != nullptr) {
    for (auto& h : g_run->handed) {
      if (h.p != p) continue;
      FUZZ_CHECK(!h.freed);
      const auto* bytes = static_cast<const unsigned char*>(p);
      FUZZ_CHECK(std::all_of(bytes, bytes + h.len,
                             [](unsigned char c) { return c == 0; }));
      h.freed = true;
    }
  }
  __real_free(p);
}

void* __wrap_malloc(size_t size) {
  if (fault_for(kMalloc) >= 0) {
    errno = ENOMEM;
    return nullptr;
  }
  return __real_malloc(size);
}

void* __wrap_calloc(size_t n, size_t size) {
  if (fault_for(kCalloc) >= 0) {
    errno = ENOMEM;
    return nullptr;
  }
  return __real_calloc(n, size);
}

void* __wrap_realloc(void* p, size_t size) {
  if (fault_for(kRealloc) >= 0) {
    errno = ENOMEM;
    return nullptr;
  }
  return __real_realloc(p, size);
}

// operator new(size_t) and operator new[](size_t): the module's
// containers and strings allocate through these, not through malloc.
void* __wrap__Znwm(size_t size) {
  if (fault_for(kNew) >= 0) throw std::bad_alloc();
  return __real__Znwm(size);
}

void* __wrap__Znam(size_t size) {
  if (fault_for(kNewArray) >= 0) throw std::bad_alloc();
  return __real__Znam(size);
}

// The mode argument of open and openat: there only with O_CREAT or
// O_TMPFILE.
int mode_of(int flags, va_list ap) {
  const bool has_mode = (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
  return has_mode ? va_arg(ap, int) : 0;
}

// The Nth call of `fn` fails with one of `errnos` when the plan says so.
bool failed_with(Fn fn, const int (&errnos)[8]) {
  const int m = fault_for(fn);
  if (m < 0) return false;
  errno = pick(errnos, m);
  return true;
}

int __wrap_open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = mode_of(flags, ap);
  va_end(ap);
  static const int kErrnos[] = {ENOENT, EACCES, EMFILE, ENFILE,
                                EINTR,  ELOOP,  ENOMEM, EIO};
  if (failed_with(kOpen, kErrnos)) return -1;
  return __real_open(path, flags, mode);
}

int __wrap_openat(int dir, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const int mode = mode_of(flags, ap);
  va_end(ap);
  static const int kErrnos[] = {ENOENT, EACCES, EMFILE, ENOSPC,
                                EINTR,  ELOOP,  EDQUOT, EIO};
  if (failed_with(kOpenat, kErrnos)) return -1;
  return __real_openat(dir, path, flags, mode);
}

// Modes: an errno, or (the last one) a short read of one byte.
ssize_t __wrap_read(int fd, void* buf, size_t n) {
  static const int kErrnos[] = {EINTR, EIO, EAGAIN, 0};
  if (const int m = fault_for(kRead); m >= 0) {
    const int e = pick(kErrnos, m);
    if (e == 0) return __real_read(fd, buf, n > 1 ? 1 : n);
    errno = e;
    return -1;
  }
  return __real_read(fd, buf, n);
}

ssize_t __wrap_pread(int fd, void* buf, size_t n, off_t off) {
  static const int kErrnos[] = {EINTR, EIO, 0};
  if (const int m = fault_for(kPread); m >= 0) {
    const int e = pick(kErrnos, m);
    if (e == 0) return __real_pread(fd, buf, n > 1 ? 1 : n, off);
    errno = e;
    return -1;
  }
  return __real_pread(fd, buf, n, off);
}

ssize_t __wrap_pwrite(int fd, const void* buf, size_t n, off_t off) {
  static const int kErrnos[] = {EINTR, EIO, ENOSPC, 0};
  if (const int m = fault_for(kPwrite); m >= 0) {
    const int e = pick(kErrnos, m);
    if (e == 0) return __real_pwrite(fd, buf, n > 1 ? 1 : n, off);
    errno = e;
    return -1;
  }
  return __real_pwrite(fd, buf, n, off);
}

int __wrap_fstat(int fd, struct stat* st) {
  static const int kErrnos[] = {EIO, ENOMEM, EOVERFLOW};
  if (const int m = fault_for(kFstat); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  return __real_fstat(fd, st);
}

int __wrap_stat(const char* path, struct stat* st) {
  static const int kErrnos[] = {ENOENT, EACCES, EIO, ENOMEM};
  if (const int m = fault_for(kStat); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  return __real_stat(path, st);
}

int __wrap_lstat(const char* path, struct stat* st) {
  static const int kErrnos[] = {ENOENT, EACCES, EIO};
  if (const int m = fault_for(kLstat); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  return __real_lstat(path, st);
}

int __wrap_fstatat(int dir, const char* path, struct stat* st, int flags) {
  static const int kErrnos[] = {ENOENT, EACCES, EIO, ENOMEM};
  if (const int m = fault_for(kFstatat); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  return __real_fstatat(dir, path, st, flags);
}

int __wrap_mkdir(const char* path, mode_t mode) {
  static const int kErrnos[] = {EACCES, ENOSPC, EROFS, EIO, EDQUOT};
  if (const int m = fault_for(kMkdir); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  return __real_mkdir(path, mode);
}

char* __wrap_realpath(const char* path, char* resolved) {
  static const int kErrnos[] = {ENOENT, EACCES, ENOMEM, ELOOP};
  if (const int m = fault_for(kRealpath); m >= 0) {
    errno = pick(kErrnos, m);
    return nullptr;
  }
  return __real_realpath(path, resolved);
}

// Real: the module talks to the fake helper over it. A dup of the
// helper's end is kept for the fake helper (the module closes its copy
// after fork).
int __wrap_socketpair(int domain, int type, int protocol, int sv[2]) {
  static const int kErrnos[] = {EMFILE, ENFILE, ENOMEM};
  if (const int m = fault_for(kSocketpair); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  const int rc = __real_socketpair(domain, type, protocol, sv);
  if (rc == 0 && t_armed && g_run != nullptr) {
    if (g_run->helper_fd >= 0) close(g_run->helper_fd);
    g_run->helper_fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 0);
  }
  return rc;
}

// No process: the parent's side of fork, with the fake helper in a thread.
pid_t __wrap_fork(void) {
  if (!t_armed || g_run == nullptr) return __real_fork();
  static const int kErrnos[] = {EAGAIN, ENOMEM};
  if (const int m = fault_for(kFork); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  Disarm d;
  Run& run = *g_run;
  FUZZ_CHECK(run.forks == 0);  // one helper per login
  FUZZ_CHECK(run.helper_fd >= 0);
  ++run.forks;
  run.new_calls_at_fork = g_plan.calls[kNew];
  run.fake = std::make_unique<FakeHelper>(run.helper_fd, run.script, run.session);
  run.fake->start();
  return kFakePid;
}

int __wrap_execve(const char* path, char* const argv[], char* const envp[]) {
  if (t_armed)
    ptv_fuzz::fail("execve reached: a real program would start", __FILE__,
                   __LINE__);
  return __real_execve(path, argv, envp);
}

pid_t __wrap_waitpid(pid_t pid, int* status, int options) {
  if (!t_armed || g_run == nullptr) return __real_waitpid(pid, status, options);
  Run& run = *g_run;
  // The module has no child but its helper.
  FUZZ_CHECK(pid == kFakePid && run.forks == 1 && run.fake != nullptr);
  static const int kErrnos[] = {EINTR, ECHILD};
  if (const int m = fault_for(kWaitpid); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  if (run.reaped) {
    errno = ECHILD;
    return -1;
  }
  Disarm d;
  // The helper ends once its socket is closed or it is killed.
  if (!run.fake->wait_done((options & WNOHANG) != 0 ? 100ms : 5000ms)) {
    if ((options & WNOHANG) != 0) return 0;
    ptv_fuzz::fail("waitpid: the helper never ended (its socket stayed open)",
                   __FILE__, __LINE__);
  }
  run.fake->join();
  run.reaped = true;
  if (status != nullptr) *status = run.killed ? SIGKILL : 0;
  return pid;
}

int __wrap_kill(pid_t pid, int sig) {
  if (!t_armed || g_run == nullptr) return __real_kill(pid, sig);
  Run& run = *g_run;
  // Only its own helper, and never once reaped (the pid may be reused).
  FUZZ_CHECK(pid == kFakePid && run.forks == 1 && run.fake != nullptr);
  FUZZ_CHECK(!run.reaped);
  static const int kErrnos[] = {EPERM, ESRCH};
  if (const int m = fault_for(kKill); m >= 0) {
    errno = pick(kErrnos, m);
    return -1;
  }
  if (sig == SIGKILL) {
    run.killed = true;
    run.fake->kill();
  }
  return 0;
}

// Modes: an errno, or (the last one) a short write of one byte.
ssize_t __wrap_send(int fd, const void* buf, size_t n, int flags) {
  static const int kErrnos[] = {EAGAIN, EINTR, EPIPE, ENOBUFS, 0};
  if (const int m = fault_for(kSend); m >= 0) {
    const int e = pick(kErrnos, m);
    if (e == 0) return __real_send(fd, buf, n > 1 ? 1 : n, flags);
    errno = e;
    return -1;
  }
  return __real_send(fd, buf, n, flags);
}

// Modes: -1 EINTR, -1 ENOMEM, or a spurious 0 (nothing ready).
int __wrap_poll(struct pollfd* fds, nfds_t n, int timeout) {
  if (const int m = fault_for(kPoll); m >= 0) {
    switch (m % 3) {
      case 0: errno = EINTR; return -1;
      case 1: errno = ENOMEM; return -1;
      default:
        for (nfds_t i = 0; i < n; ++i) fds[i].revents = 0;
        return 0;
    }
  }
  return __real_poll(fds, n, timeout);
}

uid_t __wrap_getuid(void) {
  return t_armed && g_run != nullptr ? g_run->uid : __real_getuid();
}
uid_t __wrap_geteuid(void) {
  return t_armed && g_run != nullptr ? g_run->euid : __real_geteuid();
}
gid_t __wrap_getgid(void) {
  return t_armed && g_run != nullptr ? g_run->gid : __real_getgid();
}
gid_t __wrap_getegid(void) {
  return t_armed && g_run != nullptr ? g_run->egid : __real_getegid();
}
unsigned long __wrap_getauxval(unsigned long type) {
  if (t_armed && g_run != nullptr && type == AT_SECURE) return g_run->at_secure;
  return __real_getauxval(type);
}

int __wrap_getpwnam_r(const char* name, struct passwd* pw, char* buf,
                      size_t buflen, struct passwd** result) {
  if (!t_armed || g_run == nullptr)
    return __real_getpwnam_r(name, pw, buf, buflen, result);
  *result = nullptr;
  static const int kErrnos[] = {EIO, ENOMEM, ERANGE, EMFILE, EINTR};
  if (const int m = fault_for(kGetpwnamR); m >= 0) return pick(kErrnos, m);
  Disarm d;
  Run& run = *g_run;
  if (run.account_mode == 5) return 0;  // no such account
  std::string account = name;
  if (run.account_mode == 4) {  // a case-folding directory's own spelling
    for (char& c : account)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    account += "_x";
  }
  if (run.account_mode == 6) account.clear();
  const std::string gecos = run.account_mode == 7 ? std::string() : run.gecos;
  const std::string home = "/home/" + account;
  const std::string fields[] = {account, "x", gecos, home, "/bin/sh"};
  std::size_t need = 0;
  for (const auto& f : fields) need += f.size() + 1;
  if (need > buflen) return ERANGE;
  char* out = buf;
  char* at[5];
  for (int i = 0; i < 5; ++i) {
    at[i] = out;
    std::memcpy(out, fields[i].c_str(), fields[i].size() + 1);
    out += fields[i].size() + 1;
  }
  *pw = passwd{};
  pw->pw_name = at[0];
  pw->pw_passwd = at[1];
  pw->pw_gecos = at[2];
  pw->pw_dir = at[3];
  pw->pw_shell = at[4];
  pw->pw_uid = kUserId;
  pw->pw_gid = kUserId;
  *result = pw;
  run.account_name = account;
  run.account_gecos = gecos.c_str();  // as C sees it, up to a NUL
  return 0;
}

int __wrap_pam_get_item(const pam_handle_t* pamh, int type, const void** item) {
  FUZZ_CHECK(pamh == fake_pamh() && item != nullptr && g_run != nullptr);
  Run& run = *g_run;
  if (const int m = fault_for(kPamGetItem); m >= 0) {
    switch (m % 4) {
      case 0: return PAM_SYSTEM_ERR;
      case 1: return PAM_BAD_ITEM;
      case 2: return PAM_BUF_ERR;
      default:
        *item = nullptr;
        if (type == PAM_SERVICE) run.service_seen.reset();
        return PAM_SUCCESS;
    }
  }
  auto give = [&](const std::optional<std::string>& s) {
    *item = s ? s->c_str() : nullptr;
    return PAM_SUCCESS;
  };
  switch (type) {
    case PAM_USER:
      return give(run.user_item);
    case PAM_SERVICE:
      run.service_seen = run.service;
      return give(run.service);
    case PAM_AUTHTOK:
      return give(run.authtok);
    case PAM_CONV:
      *item = run.conv_null ? nullptr
              : run.conv_fn_null ? &g_conv_without_function
                                 : &g_conv;
      return PAM_SUCCESS;
    default:
      return PAM_BAD_ITEM;
  }
}

int __wrap_pam_get_user(pam_handle_t* pamh, const char** user,
                        const char* /*prompt*/) {
  FUZZ_CHECK(pamh == fake_pamh() && user != nullptr && g_run != nullptr);
  Run& run = *g_run;
  *user = nullptr;
  static const int kErrors[] = {PAM_SYSTEM_ERR, PAM_CONV_ERR, PAM_BUF_ERR,
                                PAM_ABORT, PAM_SUCCESS};
  if (const int m = fault_for(kPamGetUser); m >= 0) {
    const int rc = pick(kErrors, m);
    if (rc != PAM_SUCCESS) run.get_user_failures.push_back(rc);
    return rc;  // PAM_SUCCESS with no user at all
  }
  if (!run.user) return PAM_SUCCESS;
  Disarm d;
  run.user_item = run.user;  // pam_get_user sets PAM_USER
  *user = run.user_item->c_str();
  return PAM_SUCCESS;
}

__attribute__((format(printf, 3, 4))) void __wrap_pam_syslog(
    const pam_handle_t* pamh, int /*priority*/, const char* fmt, ...) {
  FUZZ_CHECK(pamh == fake_pamh() && fmt != nullptr);
  Disarm d;
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  FUZZ_CHECK(printable(line));
  if (g_run != nullptr) g_run->log_lines.emplace_back(line);
}

}  // extern "C"

namespace {

// ------------------------------------------------------- the configuration

std::string g_dir;    // the private directory under /run
std::string g_state;  // the send limit's state directory
std::string g_helper;

constexpr const char* kSources[] = {"\"users\"", "\"gecos\"", "\"ldap\"",
                                    "\"users\", \"ldap\""};
constexpr const char* kServices[] = {"sshd", "login"};

struct Variant {
  bool safe = false;
  bool skip = false;
  int sources = 0;
  bool services = false;
};

Variant variant_of(std::uint8_t b) {
  return Variant{(b & 1) != 0, (b & 2) != 0, (b >> 2) & 3, (b & 16) != 0};
}

std::string config_path(int v) {
  return g_dir + "/conf-" + std::to_string(v) + ".conf";
}

std::string config_text(const Variant& v) {
  using namespace ptv_fakes;
  std::string t = "twilio = {\n";
  t += "  account_sid = \"" + kAccount + "\";\n";
  t += "  auth_token = \"" + kToken + "\";\n";
  t += "  service_sid = \"" + kService + "\";\n";
  t += "  api_url = \"" + kBase + "/\";\n";
  t += "  connect_timeout_ms = 1000;\n  timeout_ms = 2000;\n};\n";
  t += std::string("failmode = \"") + (v.safe ? "safe" : "secure") + "\";\n";
  t += std::string("no_phone = \"") + (v.skip ? "skip" : "deny") + "\";\n";
  t += std::string("phone_sources = [ ") + kSources[v.sources] + " ];\n";
  t += "gecos_field = 3;\n"
       "users = (\n"
       "  (\"alice\", \"+1 (555) 123-4567\"),\n"
       "  (\"bob\", \"+44 20 7946 0958\")\n"
       ");\n"
       "ldap = {\n"
       "  uri = \"ldaps://directory.example.com\";\n"
       "  base = \"ou=people,dc=example,dc=com\";\n"
       "};\n";
  if (v.services)
    t += std::string("services = [ \"") + kServices[0] + "\", \"" +
         kServices[1] + "\" ];\n";
  t += "send_limit = { count = 100; window_s = 60; };\n";
  t += "state_dir = \"" + g_state + "\";\n";
  return t;
}

void write_file(const std::string& path, std::string_view text, mode_t mode,
                uid_t owner) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, text.data(), text.size()) !=
                    static_cast<ssize_t>(text.size()) ||
      fchmod(fd, mode) != 0 || fchown(fd, owner, owner) != 0 || close(fd) != 0) {
    std::fprintf(stderr, "fuzz_pam_entry: cannot write %s: %s\n", path.c_str(),
                 std::strerror(errno));
    std::exit(1);
  }
}

// Each login starts with an empty send-limit state (the module makes the
// directory again): a limit of 100 sends a minute would otherwise end
// every login after the first hundred in "send-limited".
void clear_state() {
  std::error_code ec;
  std::filesystem::remove_all(g_state, ec);
}

// The private directories: under /run (configuration, helper), and for
// the state under /dev/shm when there is one: the module fsyncs its state
// files, which is slow where /run is not a tmpfs (containers).
std::string g_state_parent;

void remove_dirs() {
  std::error_code ec;
  if (!g_dir.empty()) std::filesystem::remove_all(g_dir, ec);
  if (!g_state_parent.empty()) std::filesystem::remove_all(g_state_parent, ec);
}

// Directories this program left behind when it crashed (its pid gone).
void remove_stale_dirs(const char* parent) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("ptv-fuzz-entry.")) continue;
    const long pid = std::strtol(name.c_str() + 15, nullptr, 10);
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      std::filesystem::remove_all(e.path(), ec);
  }
}

std::string make_private_dir(const char* parent) {
  std::string tmpl = std::string(parent) + "/ptv-fuzz-entry." +
                     std::to_string(getpid()) + ".XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "fuzz_pam_entry: mkdtemp %s: %s\n", tmpl.c_str(),
                 std::strerror(errno));
    std::exit(1);
  }
  return tmpl;
}

void set_up() {
  if (geteuid() != 0) {
    std::fprintf(stderr,
                 "fuzz_pam_entry needs root: the configuration file must be "
                 "owned by root, the helper in root-owned directories\n");
    std::exit(1);
  }
  remove_stale_dirs("/run");
  remove_stale_dirs("/dev/shm");
  g_dir = make_private_dir("/run");
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec)) {
    g_state_parent = make_private_dir("/dev/shm");
    g_state = g_state_parent + "/state";
  } else {
    g_state = g_dir + "/state";
  }
  std::atexit(remove_dirs);
  for (int v = 0; v < 32; ++v) {
    write_file(config_path(v), config_text(variant_of(static_cast<std::uint8_t>(v))),
               0600, 0);
    // Each must load: an input that picks it gets past the loader.
    auto loaded = ptv::load_config_file(config_path(v));
    if (!loaded) {
      std::fprintf(stderr, "fuzz_pam_entry: variant %d refused: %s\n", v,
                   loaded.error().message.c_str());
      std::exit(1);
    }
  }
  write_file(g_dir + "/syntax.conf", "twilio = {\n  account_sid = ;\n", 0600, 0);
  write_file(g_dir + "/mode-0644.conf", config_text(Variant{}), 0644, 0);
  write_file(g_dir + "/not-root.conf", config_text(Variant{}), 0600, kUserId);
  g_helper = g_dir + "/twilio-verify-helper";
  write_file(g_helper, "#!/bin/false\n", 0755, 0);
}


// --------------------------------------------------------------- the input

const char* const kServiceNames[] = {"sshd", "login", "sudo", "su", "cron"};
const char* const kUserNames[] = {"alice", "bob", "carol", "root", "dave"};
const char* const kGecos[] = {"Alice,,+1 555 123 4567,", "Bob,,,",
                              "Carol,,not a number", ""};

// What the module is given, besides what the wraps answer (Run).
struct Login {
  int variant = 0;
  Variant config;
  int file_kind = 0;         // see the input layout, byte [0]
  std::string conf;          // the configuration file named last
  bool config_good = false;  // that file loads, and is named by an absolute path
  bool debug = false;
  std::vector<std::string> args;
  bool null_arg = false;
  int flags = 0;
};

std::string config_file(int variant, int file_kind) {
  switch (file_kind) {
    case 4: return g_dir + "/syntax.conf";
    case 5: return g_dir + "/mode-0644.conf";
    case 6: return g_dir + "/not-root.conf";
    case 7: {
      const std::string link = g_dir + "/link-" + std::to_string(variant) + ".conf";
      std::error_code ec;
      if (!std::filesystem::is_symlink(link, ec))
        std::filesystem::create_symlink(config_path(variant), link, ec);
      return link;
    }
    default: return config_path(variant);
  }
}

// Byte [2] and the strings it asks for: the caller's ids, PAM_SERVICE,
// PAM_AUTHTOK.
void parse_caller(std::uint8_t b, Bytes& in, Run& run) {
  switch (b & 7) {
    case 4: run.uid = kUserId; break;             // setuid root
    case 5: run.gid = kUserId; break;             // setgid root
    case 6: run.at_secure = 1; break;             // AT_SECURE
    case 7: run.uid = run.euid = kUserId; break;  // not root at all
    default: break;
  }
  run.set_id = run.uid != run.euid || run.gid != run.egid || run.at_secure != 0;
  const int service = (b >> 3) & 7;
  if (service < 5) run.service = kServiceNames[service];
  else if (service > 5) run.service = in.str();
  switch (b >> 6) {
    case 1: run.authtok = std::string(kPassword); break;
    case 2: run.authtok = kGoodCode; break;
    case 3: run.authtok = in.str(); break;
    default: break;
  }
}

// Bytes [3] and [4] and their strings: the user, the account, GECOS, and
// which helper end answers.
void parse_user(std::uint8_t b_user, std::uint8_t b_gecos, Bytes& in, Run& run) {
  const int user = b_user & 7;
  if (user < 5) run.user = kUserNames[user];
  else if (user == 5) run.user = in.str();
  else if (user == 6) run.user = std::string();
  if ((b_user & 8) != 0 && run.user) run.user_item = run.user;
  run.account_mode = (b_user >> 4) & 7;
  run.session = (b_user & 128) != 0;
  const int gecos = b_gecos % 6;
  run.gecos = gecos < 4 ? std::string(kGecos[gecos]) : in.str();
}

void parse_faults(Bytes& in) {
  g_plan = FaultPlan{};
  g_plan.count = in.u8() % 5;
  for (int i = 0; i < g_plan.count; ++i) {
    g_plan.faults[i].fn = in.u8() % kFnCount;
    g_plan.faults[i].nth = in.u16();
    g_plan.faults[i].mode = in.u8();
  }
}

// Byte [1]: the module's arguments.
void parse_args(std::uint8_t b, Login& l) {
  if ((b & 128) != 0) l.args.push_back("conf=" + g_dir + "/missing.conf");
  l.args.push_back((b & 16) != 0 ? "conf=relative.conf" : "conf=" + l.conf);
  switch ((b >> 1) & 3) {
    case 2: l.args.push_back("helper=" + g_dir + "/no-such-helper"); break;
    case 3: break;  // the default helper path
    default: l.args.push_back("helper=" + g_helper); break;
  }
  l.debug = (b & 1) != 0;
  if (l.debug) l.args.push_back("debug");
  if ((b & 8) != 0) l.args.push_back("nullok");
  l.null_arg = (b & 64) != 0;
  l.flags = (b & 32) != 0 ? PAM_SILENT : 0;
  l.config_good = l.config_good && (b & 16) == 0;
}

Login parse_login(const std::uint8_t* data, std::size_t size, Run& run) {
  Bytes in(data, size);
  const std::uint8_t b_config = in.u8();
  const std::uint8_t b_args = in.u8();
  const std::uint8_t b_caller = in.u8();
  const std::uint8_t b_user = in.u8();
  const std::uint8_t b_gecos = in.u8();
  Login l;
  l.variant = b_config & 31;
  l.config = variant_of(static_cast<std::uint8_t>(l.variant));
  l.file_kind = b_config >> 5;
  l.conf = config_file(l.variant, l.file_kind);
  l.config_good = l.file_kind < 4;  // a symbolic link (7) is refused
  parse_args(b_args, l);
  parse_caller(b_caller, in, run);
  parse_user(b_user, b_gecos, in, run);
  parse_faults(in);
  run.conv = in.take(in.u8());
  Bytes peek = run.conv;
  const std::uint8_t kind = peek.u8();
  run.conv_null = kind % 8 == 6;
  run.conv_fn_null = kind % 8 == 7;
  run.script = in.rest();
  return l;
}

// ---------------------------------------------------------- the evidence

// What the Verify service and the directory of a session saw and answered.
struct ServiceView {
  bool approved_check = false;  // a check answered "approved"
  bool outage = false;          // an answer that means the service is down
  bool code_sent = false;       // a start (a code sent)
  bool password_sent = false;   // a check of the password
};

// The form field `key` is `value`.
bool form_has(std::string_view body, std::string_view key, std::string_view value) {
  for (std::size_t at = 0; at <= body.size();) {
    const std::size_t end = std::min(body.find('&', at), body.size());
    const std::string_view field = body.substr(at, end - at);
    if (field.size() == key.size() + 1 + value.size() && field.starts_with(key) &&
        field[key.size()] == '=' && field.ends_with(value))
      return true;
    at = end + 1;
  }
  return false;
}

// Written from the Verify API and the README, not from the flow: a
// transport failure before or without an answer (unreachable, timed out,
// broken off) or a 5xx is an outage; so is a directory that says it is
// unavailable. A check is approved by a 2xx JSON answer "approved"
// (fuzz_common.hpp's reference).
ServiceView view_service(const FakeHelper& h) {
  using ptv_fakes::Kind;
  using K = ptv::TransportErrorKind;
  ServiceView v;
  std::size_t next[3] = {};
  for (const auto& q : h.http.requests) {
    if (q.kind == Kind::Unknown) continue;
    const auto k = static_cast<std::size_t>(q.kind);
    // FakeHttp's answer past the scripted ones.
    const ptv_fakes::Reply fallback = q.kind == Kind::Start   ? ptv_fakes::started()
                                      : q.kind == Kind::Check ? ptv_fakes::pending()
                                                              : ptv_fakes::canceled();
    const ptv_fakes::Reply r =
        next[k] < h.picks[k].size() ? verify_reply(h.picks[k][next[k]]) : fallback;
    ++next[k];
    v.code_sent |= q.kind == Kind::Start;
    v.password_sent |= q.kind == Kind::Check && form_has(q.body, "Code", kPassword);
    if (!r) {
      const K e = r.error().kind;
      v.outage |= e == K::Unreachable || e == K::Timeout || e == K::Protocol;
      continue;
    }
    v.outage |= r->status >= 500 && r->status <= 599;
    v.approved_check |= q.kind == Kind::Check &&
                        ptv_fuzz::reference_may_approve(r->status, r->content_type, r->body);
  }
  v.outage |= h.directory_calls > 0 &&
              h.directory.kind == ptv_fakes::Answer::Kind::Unavailable;
  return v;
}

// Everything the invariant may rely on, gathered from the fakes and the
// input, never from the module's own account of what happened.
struct Evidence {
  // The helper's end.
  bool helper_started = false;
  bool scripted = false;  // the scripted helper, not the real session
  std::optional<ptv::Outcome> helper_said;  // scripted: its first result
  ServiceView service;    // session: the Verify service and directory
  // The person and the account.
  bool code_asked = false;    // the conversation was asked for a code
  bool known_number = false;  // a source this fuzzer fills has a number
  // The module's configuration and caller.
  bool config_good = false;
  Variant config;
  bool service_listed = false;  // PAM_SERVICE, as given, is in services
  bool set_id = false;
};

// A source holds a number for the account the module got: the users
// list, the GECOS field, or (session) the directory.
bool known_number(const Login& l, const Run& run) {
  if (!l.config_good) return false;
  const int s = l.config.sources;  // users, gecos, ldap, users + ldap
  if ((s == 0 || s == 3) && (run.account_name == "alice" || run.account_name == "bob"))
    return true;
  if (s == 1 && run.account_gecos == kGecos[0]) return true;
  if (s >= 2 && run.fake != nullptr && run.fake->session() &&
      run.fake->directory_calls > 0) {
    for (const auto& v : run.fake->directory.values)
      if (v.starts_with('+')) return true;
  }
  return false;
}

Evidence gather(const Login& l, const Run& run) {
  Evidence e;
  e.helper_started = run.forks != 0;
  e.scripted = run.fake != nullptr && !run.fake->session();
  if (e.scripted) {
    const StreamView v = read_stream(run.fake->sent);
    if (v.result) e.helper_said = v.result->outcome;
  }
  if (run.fake != nullptr && run.fake->session()) e.service = view_service(*run.fake);
  e.code_asked = run.prompts != 0 || e.service.code_sent;
  e.known_number = known_number(l, run);
  e.config_good = l.config_good;
  e.config = l.config;
  e.service_listed =
      run.service_seen && std::find(std::begin(kServices), std::end(kServices),
                                    *run.service_seen) != std::end(kServices);
  e.set_id = run.set_id;
  return e;
}

// ------------------------------------------------------------ the invariant

enum class Pass { None, ApprovedCheck, OutageFailmodeSafe, NoPhoneSkip, ServiceNotListed };

const char* name_of(Pass p) {
  switch (p) {
    case Pass::None: return "none";
    case Pass::ApprovedCheck: return "approved check";
    case Pass::OutageFailmodeSafe: return "outage, failmode safe, not set-id";
    case Pass::NoPhoneSkip: return "no phone, no_phone = skip";
    case Pass::ServiceNotListed: return "service not in services";
  }
  return "?";
}

// Why pam_sm_authenticate may let a login through (PAM_SUCCESS), or leave
// it to the rest of the stack (PAM_IGNORE): these reasons and no other.
// Policy work that lets a login pass for a new reason adds it here, by
// name, with its evidence. The access policy's reasons
// (allowed-exempt-group, allowed-exempt-network, allowed-grace) need
// exempt_groups, exempt_networks or grace_period_s in the configuration;
// this fuzzer's configurations set none of them, so here those outcomes
// are violations like any other (fuzz_authenticate checks them by name).
Pass allowed_pass(int rc, const Evidence& e) {
  using ptv::Outcome;
  const bool safe = e.config_good && e.config.safe;
  const bool skip = e.config_good && e.config.skip;
  if (rc == PAM_SUCCESS) {
    // (a) An approved check: by the Verify service (session), or by the
    //     scripted helper, which stands for the whole check.
    if (e.service.approved_check ||
        (e.scripted && e.helper_said == Outcome::Approved))
      return Pass::ApprovedCheck;
    // (b) An outage, under failmode = "safe", for a caller that is not
    //     set-id.
    const bool outage =
        e.service.outage || (e.scripted && e.helper_said == Outcome::FailOpen);
    if (outage && !e.set_id && safe)
      return Pass::OutageFailmodeSafe;
    return Pass::None;
  }
  if (rc == PAM_IGNORE) {
    // (c) No number and no_phone = "skip": no source this fuzzer fills had
    //     one, and no code was asked for or sent.
    if (skip && !e.known_number && !e.code_asked) return Pass::NoPhoneSkip;
    // (d) services is set and does not list this service: nothing started.
    if (e.config_good && e.config.services && !e.service_listed &&
        !e.helper_started)
      return Pass::ServiceNotListed;
  }
  return Pass::None;
}

// Checked on every input: a pass for no listed reason aborts.
Pass check_pass(int rc, const Evidence& e) {
  const Pass why = allowed_pass(rc, e);
  if ((rc == PAM_SUCCESS || rc == PAM_IGNORE) && why == Pass::None) {
    std::fprintf(stderr,
                 "\n*** invariant violated: pam_sm_authenticate returned %d "
                 "(%s) for no allowed reason (helper %s, said %s, approved "
                 "check %d, outage %d, set-id %d, code asked %d)\n",
                 rc, rc == PAM_SUCCESS ? "PAM_SUCCESS" : "PAM_IGNORE",
                 e.helper_started ? (e.scripted ? "scripted" : "session") : "none",
                 e.helper_said ? ptv::describe(*e.helper_said) : "-",
                 e.service.approved_check, e.service.outage, e.set_id,
                 e.code_asked);
    std::abort();
  }
  return why;
}

// ------------------------------------------------------ the other checks

// The denials the module returns, and pam_get_user's failures passed on.
bool known_denial(int rc, const Run& run) {
  switch (rc) {
    case PAM_AUTH_ERR:
    case PAM_USER_UNKNOWN:
    case PAM_CONV_ERR:
    case PAM_SERVICE_ERR:
    case PAM_AUTHINFO_UNAVAIL:
    case PAM_BUF_ERR:
      return true;
    default:
      return std::find(run.get_user_failures.begin(), run.get_user_failures.end(),
                       rc) != run.get_user_failures.end();
  }
}

// The lowest free descriptor: what a leak of one would change.
int lowest_free_fd() {
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd;
}

// What the module told the helper, and what it answered.
void check_helper(const Login& l, const Run& run) {
  FUZZ_CHECK(run.forks <= 1);
  if (run.forks == 1 && !fired(kWaitpid) && !fired(kKill) && !run.reaped)
    ptv_fuzz::fail("the helper was not reaped", __FILE__, __LINE__);
  // With the users list as the only source, a user it has no number for
  // is decided without the helper.
  if (l.config_good && l.config.sources == 0 && !known_number(l, run))
    FUZZ_CHECK(run.forks == 0);
  if (run.fake == nullptr) return;
  if (run.fake->session()) {
    if (run.fake->config_loaded) FUZZ_CHECK(*run.fake->config_loaded == l.conf);
    // The password (PAM_AUTHTOK) is never checked as the code.
    if (run.authtok == kPassword && !fired(kPamGetItem))
      FUZZ_CHECK(!view_service(*run.fake).password_sent);
    return;
  }
  if (run.fake->request) {
    const ptv::RequestMsg& req = *run.fake->request;
    FUZZ_CHECK(req.version == ptv::kProtocolVersion);
    FUZZ_CHECK(req.set_id == run.set_id);
    FUZZ_CHECK(req.account == run.account_name);
    FUZZ_CHECK(req.gecos == run.account_gecos);
    FUZZ_CHECK(req.config_path == l.conf);
    FUZZ_CHECK(req.debug == l.debug);
    FUZZ_CHECK(req.first_source < (l.config.sources == 3 ? 2u : 1u));
  }
  // The password (PAM_AUTHTOK) is never sent as the code.
  if (run.authtok && !fired(kPamGetItem)) {
    for (const auto& m : run.fake->answers)
      if (const auto* c = std::get_if<ptv::CodeMsg>(&m))
        FUZZ_CHECK(c->digits.empty() || c->digits.view() != *run.authtok);
  }
}

// Every reply the conversation returned was wiped and freed.
void check_replies(Run& run) {
  for (auto& h : run.handed)
    if (!h.freed)
      ptv_fuzz::fail("a conversation reply was not freed", __FILE__, __LINE__);
}

// ---------------------------------------------------------------- a login

// pam_sm_authenticate, armed; then the helper's end is let go.
int run_module(const Login& l, Run& run, bool& threw) {
  std::vector<const char*> argv;
  for (const auto& a : l.args) argv.push_back(a.c_str());
  if (l.null_arg) argv.push_back(nullptr);
  g_run = &run;
  int rc = PAM_SYSTEM_ERR;
  threw = false;
  t_armed = true;
  try {
    rc = pam_sm_authenticate(fake_pamh(), l.flags, static_cast<int>(argv.size()),
                             argv.data());
  } catch (...) {
    threw = true;
  }
  t_armed = false;
  // The helper ends when the module lets its socket go.
  if (run.fake != nullptr) {
    if (!run.fake->wait_done(5000ms))
      ptv_fuzz::fail("the helper's socket is still open after "
                     "pam_sm_authenticate returned", __FILE__, __LINE__);
    run.fake->join();
  }
  if (run.helper_fd >= 0) close(run.helper_fd);
  g_run = nullptr;
  return rc;
}

void describe_login(int rc, Pass why, const Run& run, const Evidence& e) {
  std::string faults;
  for (int i = 0; i < kFnCount; ++i)
    if (g_plan.fired[i] != 0) faults += std::string(" ") + kFnNames[i];
  std::fprintf(stderr,
               "rc=%d (%s) pass=%s helper=%s result=%s approved-check=%d "
               "outage=%d set_id=%d faults:%s\n",
               rc, pam_strerror(nullptr, rc), name_of(why),
               run.forks == 0 ? "no" : e.scripted ? "scripted" : "session",
               e.helper_said ? ptv::describe(*e.helper_said) : "-",
               e.service.approved_check, e.service.outage, run.set_id,
               faults.empty() ? " none" : faults.c_str());
  for (int i = 0; i < g_plan.count; ++i)
    std::fprintf(stderr, "  fault: %s call %u mode %u%s\n",
                 kFnNames[g_plan.faults[i].fn], g_plan.faults[i].nth,
                 g_plan.faults[i].mode,
                 g_plan.calls[g_plan.faults[i].fn] > g_plan.faults[i].nth
                     ? " (reached)" : "");
  for (const auto& line : run.log_lines)
    std::fprintf(stderr, "  log: %s\n", line.c_str());
}

struct CallCounts {
  std::uint32_t n[kFnCount] = {};
};

// One login from the input; with `only`, that fault instead of the
// input's. Every invariant is checked. Returns the calls the module made.
CallCounts login_once(const std::uint8_t* data, std::size_t size,
                      const Fault* only) {
  Run run;
  const Login l = parse_login(data, size, run);
  if (only != nullptr) {
    g_plan = FaultPlan{};
    g_plan.count = 1;
    g_plan.faults[0] = *only;
  }
  clear_state();
  const int fd_before = lowest_free_fd();
  bool threw = false;
  const int rc = run_module(l, run, threw);

  const Evidence e = gather(l, run);
  static const bool verbose = std::getenv("PTV_FUZZ_VERBOSE") != nullptr;
  if (verbose) describe_login(rc, allowed_pass(rc, e), run, e);
  if (threw)
    ptv_fuzz::fail("an exception left pam_sm_authenticate", __FILE__, __LINE__);
  if (check_pass(rc, e) == Pass::None) FUZZ_CHECK(known_denial(rc, run));
  check_helper(l, run);
  check_replies(run);
  FUZZ_CHECK(lowest_free_fd() == fd_before);  // no descriptor left open
  CallCounts calls;
  std::copy(std::begin(g_plan.calls), std::end(g_plan.calls), calls.n);
  return calls;
}

// PTV_FUZZ_SWEEP=MODES: after each input, the same login again once per
// call the module made to a wrapped function, with that call (and no
// other) failing, in each of the first MODES modes: every call site in
// turn. Calls past the 2000th of one function are left to the fuzzer.
void sweep(const std::uint8_t* data, std::size_t size, const CallCounts& calls,
           int modes) {
  for (int fn = 0; fn < kFnCount; ++fn) {
    const std::uint32_t n = std::min<std::uint32_t>(calls.n[fn], 2000);
    for (std::uint32_t nth = 0; nth < n; ++nth) {
      for (int mode = 0; mode < modes; ++mode) {
        const Fault f{static_cast<std::uint8_t>(fn),
                      static_cast<std::uint16_t>(nth),
                      static_cast<std::uint8_t>(mode)};
        (void)login_once(data, size, &f);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  set_up();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const CallCounts calls = login_once(data, size, nullptr);
  static const int sweep_modes = [] {
    const char* s = std::getenv("PTV_FUZZ_SWEEP");
    return s != nullptr ? std::max(0, std::atoi(s)) : 0;
  }();
  if (sweep_modes > 0) sweep(data, size, calls, sweep_modes);
  return 0;
}
