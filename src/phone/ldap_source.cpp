#include "phone/ldap_source.hpp"

#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <ldap.h>

#include "util/child_process.hpp"
#include "util/handles.hpp"
#include "phone/ldap_filter.hpp"
#include "util/log.hpp"

namespace ptv {

namespace {

using Clock = std::chrono::steady_clock;
using Kind = PhoneErrorKind;

void unbind(LDAP* ld) { ldap_unbind_ext_s(ld, nullptr, nullptr); }
void free_message(LDAPMessage* m) { ldap_msgfree(m); }
void free_values(berval** v) { ldap_value_free_len(v); }
using LdapHandle = std::unique_ptr<LDAP, CDeleter<LDAP, unbind>>;
using LdapMessageHandle =
    std::unique_ptr<LDAPMessage, CDeleter<LDAPMessage, free_message>>;
using LdapValues = std::unique_ptr<berval*, CDeleter<berval*, free_values>>;

// libldap reads ldap.conf, ~/.ldaprc, ./ldaprc and LDAP* environment
// variables the first time it is used in a process. In su or sudo those
// belong to the user who is logging in, who could turn off certificate
// checks or add a CA (LDAPTLS_REQCERT=never), and point the module at a
// directory of their own. LDAPNOINIT makes libldap skip all of them; it is
// set only around that first use. Every option that matters is also set on
// each connection, for a process where libldap was already initialised.
void initialise_without_user_settings() {
  static std::once_flag once;
  std::call_once(once, [] {
    const bool had = std::getenv("LDAPNOINIT") != nullptr;
    if (!had) setenv("LDAPNOINIT", "1", 1);
    int version = 0;
    ldap_get_option(nullptr, LDAP_OPT_PROTOCOL_VERSION, &version);
    if (!had) unsetenv("LDAPNOINIT");
  });
}

struct ConnectState {
  bool connected = false;  // a TCP (or ldapi) connection was established
};

int on_connect(LDAP*, Sockbuf*, LDAPURLDesc*, sockaddr*, ldap_conncb* cb) {
  static_cast<ConnectState*>(cb->lc_arg)->connected = true;
  return 0;
}
void on_disconnect(LDAP*, Sockbuf*, ldap_conncb*) {}

class Lookup {
 public:
  // probe: instead of the user's entry, read the base entry itself.
  Lookup(const LdapSettings& s, const std::string& user, bool probe = false)
      : s_(s),
        user_(user),
        probe_(probe),
        deadline_(Clock::now() + std::chrono::milliseconds(s.timeout_ms)) {}

  SourceValues run() {
    initialise_without_user_settings();
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, s_.uri.c_str());
    ld_.reset(raw);
    if (rc != LDAP_SUCCESS)
      return phone_error(Kind::Misconfigured,
                         "uri is not usable: " + std::string(ldap_err2string(rc)));
    if (auto problem = set_options(); !problem.empty())
      return phone_error(Kind::Failed, problem);

    if (s_.starttls) {
      if (!set_time_left()) return timed_out("before StartTLS");
      rc = ldap_start_tls_s(ld_.get(), nullptr, nullptr);
      if (rc != LDAP_SUCCESS) return failure("StartTLS", rc);
    }

    if (!set_time_left()) return timed_out("before the bind");
    berval password{};
    if (!s_.bind_dn.empty()) {
      password.bv_val = const_cast<char*>(s_.bind_password.c_str());
      password.bv_len = s_.bind_password.size();
    }
    // An explicit bind, anonymous included: it opens the connection (and
    // the ldaps:// handshake), so that failures are told apart from the
    // search's.
    rc = ldap_sasl_bind_s(ld_.get(), s_.bind_dn.c_str(), LDAP_SASL_SIMPLE,
                          &password, nullptr, nullptr, nullptr);
    if (rc == LDAP_INVALID_CREDENTIALS)
      return phone_error(Kind::Misconfigured,
                         s_.bind_dn.empty()
                             ? "the directory refused the anonymous bind (49); "
                               "set bind_dn and bind_password"
                             : "the directory refused bind_dn and bind_password "
                               "(invalid credentials, 49)");
    if (rc == LDAP_INAPPROPRIATE_AUTH || rc == LDAP_UNWILLING_TO_PERFORM ||
        rc == LDAP_CONFIDENTIALITY_REQUIRED || rc == LDAP_STRONG_AUTH_REQUIRED)
      return phone_error(Kind::Misconfigured,
                         "the directory refused the bind: " + describe(rc));
    if (rc != LDAP_SUCCESS) return failure("bind", rc);

    return search();
  }

 private:
  std::string set_options() {
    LDAP* ld = ld_.get();
    const int version = LDAP_VERSION3;
    // Referrals would send the bind credentials to other servers.
    if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != LDAP_OPT_SUCCESS)
      return "cannot set the LDAP protocol options";
    const int deref = LDAP_DEREF_NEVER;
    ldap_set_option(ld, LDAP_OPT_DEREF, &deref);
    // Where libldap was initialised before us, its defaults may come from
    // the user's files: reset the ones that could make the directory look
    // unreachable (and so open failmode = "safe").
    ldap_set_option(ld, LDAP_OPT_SOCKET_BIND_ADDRESSES, nullptr);
    callbacks_.lc_add = on_connect;
    callbacks_.lc_del = on_disconnect;
    callbacks_.lc_arg = &state_;
    if (ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &callbacks_) != LDAP_OPT_SUCCESS)
      return "cannot set the LDAP connection callback";
    if (!s_.uses_tls()) return {};
    // The TLS settings of this connection only, whatever the process or
    // libldap's configuration files say.
    const int demand = LDAP_OPT_X_TLS_DEMAND;
    const int min_protocol = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
    const std::string& ca = s_.ca_file.empty() ? std::string(kSystemCaBundle)
                                               : s_.ca_file;
    const int client = 0;
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min_protocol) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTDIR, nullptr) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, ca.c_str()) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_CERTFILE, nullptr) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_KEYFILE, nullptr) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_CIPHER_SUITE, nullptr) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &client) != LDAP_OPT_SUCCESS)
      return "cannot set up TLS with CA file " + log_safe(ca, 200);
    return {};
  }

  // Gives the next step the time that is left; false once none is.
  bool set_time_left() {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline_ - Clock::now());
    if (left.count() <= 0) return false;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(left.count() / 1000000);
    tv.tv_usec = static_cast<suseconds_t>(left.count() % 1000000);
    ldap_set_option(ld_.get(), LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld_.get(), LDAP_OPT_TIMEOUT, &tv);
    left_ = tv;
    return true;
  }

  std::string describe(int rc) {
    std::string text = std::string(ldap_err2string(rc)) + " (" +
                       std::to_string(rc) + ")";
    char* diagnostic = nullptr;
    if (ldap_get_option(ld_.get(), LDAP_OPT_DIAGNOSTIC_MESSAGE, &diagnostic) ==
            LDAP_OPT_SUCCESS &&
        diagnostic != nullptr) {
      if (diagnostic[0] != '\0') text += ": " + log_safe(diagnostic, 160);
      ldap_memfree(diagnostic);
    }
    return text;
  }

  SourceValues timed_out(const char* where) {
    return phone_error(Kind::Unavailable,
                       "no answer within timeout_ms (" +
                           std::to_string(s_.timeout_ms) + " ms), " + where);
  }

  // Sorts a failed step into "unavailable" (failmode decides) and
  // "failed" (denied). A TLS failure is never "unavailable": it can be an
  // attacker in the path.
  SourceValues failure(const char* step, int rc) {
    const std::string what = std::string(step) + ": " + describe(rc);
    if (rc == LDAP_TIMEOUT || Clock::now() >= deadline_)
      return phone_error(Kind::Unavailable,
                         std::string(step) + ": no answer within timeout_ms (" +
                             std::to_string(s_.timeout_ms) + " ms)");
    if (rc == LDAP_NO_MEMORY || rc == LDAP_LOCAL_ERROR)
      return phone_error(Kind::Internal, what);
    if (!state_.connected && (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR))
      return phone_error(Kind::Unavailable, "cannot connect: " + what);
    if (!state_.connected) return phone_error(Kind::Failed, "cannot connect: " + what);
    const bool tls_up = ldap_tls_inplace(ld_.get()) != 0;
    if (s_.uses_tls() && !tls_up)
      return phone_error(Kind::Failed,
                         "TLS with the directory failed (" + what +
                             "); check ca_file and the server's certificate "
                             "and host name");
    if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_BUSY ||
        rc == LDAP_UNAVAILABLE || rc == LDAP_TIMELIMIT_EXCEEDED ||
        rc == LDAP_ADMINLIMIT_EXCEEDED || rc == LDAP_OTHER)
      return phone_error(Kind::Unavailable, what);
    return phone_error(Kind::Failed, what);
  }

  // The base entry, read with no attributes: it exists and this bind may
  // read it.
  SourceValues find_base() {
    if (!set_time_left()) return timed_out("before the search");
    char no_attributes[] = "1.1";
    char* attrs[] = {no_attributes, nullptr};
    LDAPMessage* raw = nullptr;
    const int rc = ldap_search_ext_s(ld_.get(), s_.base.c_str(), LDAP_SCOPE_BASE,
                                     "(objectClass=*)", attrs, 0, nullptr,
                                     nullptr, &left_, 1, &raw);
    LdapMessageHandle result(raw);
    const std::string base = "the search base \"" + log_safe(s_.base, 200) + "\"";
    if (rc == LDAP_NO_SUCH_OBJECT)
      return phone_error(Kind::Misconfigured, base + " does not exist in the directory");
    if (rc != LDAP_SUCCESS) return failure("search", rc);
    if (ldap_count_entries(ld_.get(), result.get()) != 1)
      return phone_error(Kind::Misconfigured,
                         base + " cannot be read with this bind (access rights)");
    return std::vector<std::string>{};
  }

  SourceValues search() {
    if (probe_) return find_base();
    const std::string filter = build_ldap_filter(s_.filter, user_);
    char* attrs[] = {const_cast<char*>(s_.attribute.c_str()), nullptr};
    if (!set_time_left()) return timed_out("before the search");
    LDAPMessage* raw = nullptr;
    // At most two entries: one is the answer, two means the filter is not
    // specific enough, which is refused rather than guessed at.
    const int rc = ldap_search_ext_s(ld_.get(), s_.base.c_str(),
                                     LDAP_SCOPE_SUBTREE, filter.c_str(), attrs,
                                     0, nullptr, nullptr, &left_, 2, &raw);
    LdapMessageHandle result(raw);
    if (rc == LDAP_NO_SUCH_OBJECT)
      return phone_error(Kind::Misconfigured,
                         "the search base \"" + log_safe(s_.base, 200) +
                             "\" does not exist in the directory");
    if (rc == LDAP_FILTER_ERROR)
      return phone_error(Kind::Misconfigured, "the directory refused the filter");
    if (rc == LDAP_SIZELIMIT_EXCEEDED)
      return phone_error(Kind::Failed, "the filter matches more than one entry");
    if (rc != LDAP_SUCCESS) return failure("search", rc);
    const int entries = ldap_count_entries(ld_.get(), result.get());
    if (entries == 0) return std::vector<std::string>{};  // no entry matches
    if (entries > 1)
      return phone_error(Kind::Failed, "the filter matches more than one entry");
    return values_of(ldap_first_entry(ld_.get(), result.get()));
  }

  // The attribute's values (none: the entry has no such attribute).
  std::vector<std::string> values_of(LDAPMessage* entry) {
    std::vector<std::string> found;
    LdapValues values(ldap_get_values_len(ld_.get(), entry, s_.attribute.c_str()));
    if (!values) return found;
    for (berval** v = values.get(); *v != nullptr; ++v) {
      if (found.size() == kMaxLdapValues) break;
      // A value that does not fit cannot be a number: it is cut for the
      // log and marked, so that what is left never reads as one.
      const std::size_t len = std::min<std::size_t>((*v)->bv_len, 64);
      std::string value((*v)->bv_val, len);
      if ((*v)->bv_len > 64 || value.find('\0') != std::string::npos)
        value += "?";
      found.push_back(std::move(value));
    }
    return found;
  }

  const LdapSettings& s_;
  const std::string& user_;
  const bool probe_;
  const Clock::time_point deadline_;
  LdapHandle ld_;
  ConnectState state_;
  ldap_conncb callbacks_{};
  timeval left_{};
};

// The answer travels from the lookup process as "V\nvalue\n..." (values,
// none for no entry) or "E<kind>\ndetail\n" (an error).
std::string encode(const SourceValues& a) {
  std::string out = a ? "V\n" : "E" + std::to_string(static_cast<int>(a.error().kind)) + "\n";
  auto line = [&out](std::string_view v) {
    for (char c : v) out.push_back(c == '\n' || c == '\0' ? '?' : c);
    out.push_back('\n');
  };
  if (!a) line(a.error().detail);
  for (const std::string& v : a ? *a : std::vector<std::string>{}) line(v);
  return out;
}

std::optional<SourceValues> decode(std::string_view wire) {
  std::vector<std::string> lines;
  while (!wire.empty()) {
    const std::size_t nl = wire.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    lines.emplace_back(wire.substr(0, nl));
    wire.remove_prefix(nl + 1);
  }
  if (lines.empty()) return std::nullopt;
  if (lines[0] == "V")
    return SourceValues(std::vector<std::string>(lines.begin() + 1, lines.end()));
  const std::string& head = lines[0];
  constexpr int kLastKind = static_cast<int>(Kind::Internal);
  if (lines.size() != 2 || head.size() != 2 || head[0] != 'E' || head[1] < '0' ||
      head[1] > '0' + kLastKind)
    return std::nullopt;
  return SourceValues(phone_error(static_cast<Kind>(head[1] - '0'), lines[1]));
}

// The lookup process writes this byte first, once the caller of su can no
// longer stop or limit it; the answer follows.
constexpr char kReady = 'R';

// Takes the lookup process out of the caller's hands: in a session of its
// own (no terminal, so no Ctrl-Z), with real, effective and saved ids all
// root (the invoking user of su keeps su's real uid, and with it the right
// to signal su's children), known resource limits and no blocked signals.
bool detach_from_caller(int& out_fd) {
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (setsid() < 0) return false;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (geteuid() == 0 &&
      (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0))
    return false;
  // Every descriptor but the answer's pipe is closed: the lookup gets the
  // whole of its descriptor limit.
  if (out_fd != 3) {
    if (dup2(out_fd, 3) < 0) return false;
    out_fd = 3;
  }
  close_range(4, ~0U, 0);
  return reset_resource_limits();
}

[[noreturn]] void lookup_in_child(const LdapSettings& settings,
                                  const std::string& user, bool probe,
                                  int out_fd) {
  // The child holds a copy of the process's memory, secrets included: no
  // core dump of it (detach_from_caller).
  std::string wire;
  if (!detach_from_caller(out_fd)) {
    wire = encode(phone_error(Kind::Internal, "cannot set up the lookup process"));
  } else {
    while (write(out_fd, &kReady, 1) < 0 && errno == EINTR) {
    }
    try {
      wire = encode(Lookup(settings, user, probe).run());
    } catch (...) {
      wire = encode(phone_error(Kind::Internal, "the lookup ran out of memory"));
    }
  }
  std::string_view rest = wire;
  while (!rest.empty()) {
    const ssize_t n = write(out_fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(1);
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  _exit(0);
}

// Room for kMaxLdapValues values of 64 bytes and a problem text.
constexpr std::size_t kMaxWire = 8192;
// The time the lookup process gets beyond timeout_ms to report its own
// timeout, before it is killed.
constexpr auto kGrace = std::chrono::milliseconds(100);

SourceValues query_in_child(const LdapSettings& settings,
                            const std::string& user, bool probe) {
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(settings.timeout_ms) + kGrace;
  auto child = run_child(
      [&settings, &user, probe](int out_fd, int) {
        lookup_in_child(settings, user, probe, out_fd);
      },
      ChildLimits{deadline, kMaxWire, 0, true});
  // Without a pipe or a process the lookup cannot even begin: a local
  // failure (the caller of su may have lowered the limits), never an
  // outage of the directory.
  if (!child) return phone_error(Kind::Internal, child.error());
  const bool started = !child->out.empty() && child->out.front() == kReady;
  const std::string timeout = std::to_string(settings.timeout_ms) + " ms)";
  if (child->timed_out && !started)
    return phone_error(Kind::Internal,
                       "the lookup process did not get going within timeout_ms (" +
                           timeout);
  if (child->timed_out)
    return phone_error(Kind::Unavailable, "no answer within timeout_ms (" +
                                              timeout + "; the lookup was stopped");
  if (!child->exited || !WIFEXITED(child->status) || WEXITSTATUS(child->status) != 0)
    return phone_error(Kind::Failed, "the LDAP lookup process ended abnormally");
  auto answer = decode(started ? std::string_view(child->out).substr(1)
                               : std::string_view(child->out));
  if (!answer)
    return phone_error(Kind::Failed, "the LDAP lookup process gave no answer");
  return std::move(*answer);
}

// A failure names the directory.
SourceValues naming_directory(const LdapSettings& settings, SourceValues answer) {
  if (!answer)
    answer.error().detail =
        "directory " + log_safe(settings.uri, 200) + ": " + answer.error().detail;
  return answer;
}

}  // namespace

// The lookup runs in a child process, killed if it overruns: libldap
// bounds connect and each request, but neither name resolution nor (with
// GnuTLS) a handshake with a server that accepts the connection and then
// stays silent, where it can spin for ever.
SourceValues query_ldap(const LdapSettings& settings, const std::string& user) {
  return naming_directory(settings, query_in_child(settings, user, false));
}

SourceValues probe_ldap(const LdapSettings& settings) {
  return naming_directory(settings, query_in_child(settings, {}, true));
}

SourceValues LdapSource::values(const std::string& account) {
  if (settings_.uri.starts_with("ldap://") && !settings_.starttls)
    log_.warning("ldap: reading the phone number without TLS (starttls = "
                 "false): anyone on the network path can change it");
  return query_ldap(settings_, account);
}

}  // namespace ptv
