// The fakes the unit tests and fuzzers share: a scripted conversation, a
// scripted Verify service behind a transport, a capturing logger, phone
// sources that answer from a script, a helper world of fakes and the
// helper's real session in a thread, and the constants they answer with.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <sys/socket.h>

#include <thread>

#include "config/config.hpp"
#include "core/access.hpp"
#include "core/conversation.hpp"
#include "helper/helper_session.hpp"
#include "net/http_transport.hpp"
#include "pam/helper_client.hpp"
#include "phone/source.hpp"
#include "twilio/code_sender.hpp"
#include "twilio/verify_client.hpp"
#include "util/file_descriptor.hpp"
#include "util/log.hpp"

namespace ptv_fakes {

using ptv::ConversationError;
using ptv::HttpResponse;
using ptv::TransportError;
using ptv::TransportErrorKind;

inline const std::string kAccount = "AC0123456789abcdef0123456789abcdef";
inline const std::string kService = "VA0123456789abcdef0123456789abcdef";
inline const std::string kToken = "authTOKENvalue_7c1e5a9b3d";
inline const std::string kPhone = "+15551234567";
inline const std::string kMasked = "+1******4567";
inline const std::string kSid = "VE00112233445566778899aabbccddeeff";
inline const std::string kBase = "https://verify.example.test";
inline const std::string kGoodCode = "918273";
inline const std::string kBadCode = "564738";
// The Messaging backend's sender, API and first message.
inline const std::string kFrom = "+15550100001";
inline const std::string kMessagingBase = "https://messaging.example.test";
inline const std::string kMessageSid = "SM00112233445566778899aabbccddeeff";

// ------------------------------------------------------------------ fakes

class FakeConversation final : public ptv::Conversation {
 public:
  std::vector<std::variant<std::string, ConversationError>> script;
  std::vector<std::string> prompts;
  std::vector<std::string> errors;
  bool overrun = false;

  std::expected<ptv::Secret, ConversationError> ask_hidden(
      std::string_view prompt) override {
    prompts.emplace_back(prompt);
    const std::size_t i = prompts.size() - 1;
    if (i >= script.size()) {
      overrun = true;
      return std::unexpected(ConversationError::Failed);
    }
    if (const auto* e = std::get_if<ConversationError>(&script[i]))
      return std::unexpected(*e);
    return ptv::Secret(std::get<std::string>(script[i]));
  }
  void show_error(std::string_view message) override {
    errors.emplace_back(message);
  }
  // The password an earlier module stored (PAM_AUTHTOK); empty: none.
  std::string password;
  bool is_password(std::string_view reply) override {
    return !password.empty() && reply == password;
  }
};

enum class Kind { Start, Check, Cancel, Message, Unknown };

struct Request {
  Kind kind;
  std::string url;
  std::string body;
};

using Reply = std::expected<HttpResponse, TransportError>;

inline HttpResponse json(long status, std::string body) {
  return HttpResponse{status, "application/json", std::move(body), -1};
}
inline Reply started() {
  return json(201, "{\"sid\":\"" + kSid + "\",\"status\":\"pending\"}");
}
inline Reply approved() {
  return json(200, "{\"sid\":\"" + kSid +
                       "\",\"status\":\"approved\",\"valid\":true}");
}
inline Reply pending() {
  return json(200, "{\"sid\":\"" + kSid +
                       "\",\"status\":\"pending\",\"valid\":false}");
}
inline Reply canceled() {
  return json(200, "{\"sid\":\"" + kSid + "\",\"status\":\"canceled\"}");
}
// Programmable Messaging took the message.
inline Reply message_queued() {
  return json(201, "{\"sid\":\"" + kMessageSid + "\",\"status\":\"queued\"}");
}
inline Reply twilio_error(long status, int code) {
  return json(status, "{\"code\":" + std::to_string(code) +
                          ",\"message\":\"error\",\"status\":" +
                          std::to_string(status) + "}");
}
inline Reply transport_error(TransportErrorKind kind, std::string detail = "fake") {
  return std::unexpected(TransportError{kind, std::move(detail)});
}

// Scripted replies per kind of request; records every request.
class FakeHttp {
 public:
  std::deque<Reply> start_replies;
  std::deque<Reply> check_replies;
  std::deque<Reply> cancel_replies;
  std::deque<Reply> message_replies;
  std::vector<Request> requests;

  Reply post(const std::string& url, const ptv::Secret& body) {
    const std::string service = kBase + "/v2/Services/" + kService;
    Kind kind = Kind::Unknown;
    if (url == service + "/Verifications")
      kind = Kind::Start;
    else if (url == service + "/VerificationCheck")
      kind = Kind::Check;
    else if (url.starts_with(service + "/Verifications/"))
      kind = Kind::Cancel;
    else if (url == kMessagingBase + "/2010-04-01/Accounts/" + kAccount +
                        "/Messages.json")
      kind = Kind::Message;
    requests.push_back({kind, url, std::string(body.view())});
    auto next = [](std::deque<Reply>& q, Reply fallback) {
      if (q.empty()) return fallback;
      Reply r = std::move(q.front());
      q.pop_front();
      return r;
    };
    switch (kind) {
      case Kind::Start:
        return next(start_replies, started());
      case Kind::Check:
        return next(check_replies, pending());
      case Kind::Cancel:
        return next(cancel_replies, canceled());
      case Kind::Message:
        return next(message_replies, message_queued());
      case Kind::Unknown:
        break;
    }
    return json(404, "{\"code\":20404}");
  }

  [[nodiscard]] std::size_t count(Kind k) const {
    std::size_t n = 0;
    for (const auto& r : requests) n += r.kind == k;
    return n;
  }
};

// What the flow owns: forwards to the shared FakeHttp.
class ForwardingTransport final : public ptv::HttpTransport {
 public:
  explicit ForwardingTransport(FakeHttp& http) : http_(http) {}
  Reply post_form(const std::string& url, const ptv::Secret& body,
                  std::chrono::milliseconds /*budget*/) override {
    return http_.post(url, body);
  }

 private:
  FakeHttp& http_;
};

struct Line {
  int priority;
  std::string text;
};

class CapturingLogger final : public ptv::Logger {
 public:
  std::vector<Line> lines;
  void log(int priority, std::string_view message) override {
    lines.push_back({priority, std::string(message)});
  }
  [[nodiscard]] bool has(int priority, std::string_view needle) const {
    for (const auto& l : lines)
      if (l.priority == priority && l.text.find(needle) != std::string::npos)
        return true;
    return false;
  }
};

// Makes transports over a FakeHttp, counting the calls; `error` set: the
// transport cannot be set up.
class FakeTransports final : public ptv::TransportMaker {
 public:
  explicit FakeTransports(FakeHttp& http) : http_(http) {}
  int calls = 0;
  std::unique_ptr<TransportError> error;
  std::expected<std::unique_ptr<ptv::HttpTransport>, TransportError> make() override {
    ++calls;
    if (error) return std::unexpected(*error);
    return std::make_unique<ForwardingTransport>(http_);
  }

 private:
  FakeHttp& http_;
};

// A wait that does not sleep.
class NoSleep final : public ptv::Sleeper {
 public:
  void sleep(std::chrono::milliseconds) override {}
};

// A monotonic clock that moves `step` forward at each reading.
class FakeClock final : public ptv::MonotonicClock {
 public:
  std::chrono::steady_clock::time_point t{std::chrono::hours(1)};
  std::chrono::seconds step{0};
  std::chrono::steady_clock::time_point now() override {
    const auto r = t;
    t += step;
    return r;
  }
};

// Random bytes that make the Messaging code kGoodCode (each byte its digit,
// below 250, so none is drawn again).
inline std::expected<void, std::string> good_code_random(unsigned char* out,
                                                        std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<unsigned char>(kGoodCode[i % kGoodCode.size()] - '0');
  return {};
}
inline std::expected<void, std::string> failing_random(unsigned char*, std::size_t) {
  return std::unexpected(std::string("getrandom: Function not implemented"));
}

// What a fake phone source answers, in one struct: values, no entry, or a
// failure of one kind.
struct Answer {
  enum class Kind { Values, NotFound, Unavailable, Failed, Misconfigured, Internal };
  Kind kind = Kind::NotFound;
  std::vector<std::string> values;
  std::string problem;
};

inline ptv::SourceValues to_values(const Answer& a) {
  using K = Answer::Kind;
  using E = ptv::PhoneErrorKind;
  switch (a.kind) {
    case K::Values:
      return a.values;
    case K::NotFound:
      return std::vector<std::string>{};
    case K::Unavailable:
      return ptv::phone_error(E::Unavailable, a.problem);
    case K::Failed:
      return ptv::phone_error(E::Failed, a.problem);
    case K::Misconfigured:
      return ptv::phone_error(E::Misconfigured, a.problem);
    case K::Internal:
      break;
  }
  return ptv::phone_error(E::Internal, a.problem);
}

// A real source's answer, in the same struct.
inline Answer answer_of(const ptv::SourceValues& v) {
  using K = Answer::Kind;
  if (v) return Answer{v->empty() ? K::NotFound : K::Values, *v, {}};
  using E = ptv::PhoneErrorKind;
  const E e = v.error().kind;
  const K kind = e == E::Unavailable     ? K::Unavailable
                 : e == E::Misconfigured ? K::Misconfigured
                 : e == E::Internal      ? K::Internal
                                         : K::Failed;
  return Answer{kind, {}, v.error().detail};
}

// A source that gives the scripted answer, counting its calls.
class FakeSource final : public ptv::NumberSource {
 public:
  FakeSource(std::string name, Answer a) : name_(std::move(name)), answer(std::move(a)) {}
  std::string_view name() const override { return name_; }
  ptv::SourceValues values(const std::string& account) override {
    ++calls;
    asked = account;
    return to_values(answer);
  }

 private:
  std::string name_;

 public:
  Answer answer;
  int calls = 0;
  std::string asked;
};

// The helper's world, of fakes: the configuration from a text (or a
// function), transports over a FakeHttp, the remote sources from a
// function (every account: `answer`), and no sleeping.
class FakeWorld final : public ptv::HelperWorld {
 public:
  std::function<std::expected<ptv::Config, ptv::ConfigError>(const std::string&)> config;
  std::function<std::expected<std::unique_ptr<ptv::HttpTransport>, TransportError>()>
      transport;
  // Each remote source's answer for an account.
  std::function<Answer(ptv::PhoneSource, const std::string&)> answer;
  std::string unfit_text;

  std::expected<ptv::Config, ptv::ConfigError> load_config(const std::string& path) override {
    return config(path);
  }
  std::expected<std::unique_ptr<ptv::HttpTransport>, TransportError> make_transport(
      const ptv::TwilioSettings&) override {
    return transport();
  }
  std::unique_ptr<ptv::NumberSource> remote_source(ptv::PhoneSource which,
                                                   const ptv::PhoneSettings&,
                                                   ptv::Logger&) override {
    return std::make_unique<Remote>(*this, which);
  }
  ptv::Sleeper* sleeper() override { return &no_sleep_; }
  std::string_view unfit() const override { return unfit_text; }

 private:
  class Remote final : public ptv::NumberSource {
   public:
    Remote(FakeWorld& w, ptv::PhoneSource which) : w_(w), which_(which) {}
    std::string_view name() const override {
      return which_ == ptv::PhoneSource::Ldap ? "ldap" : "command";
    }
    ptv::SourceValues values(const std::string& account) override {
      return to_values(w_.answer(which_, account));
    }

   private:
    FakeWorld& w_;
    ptv::PhoneSource which_;
  };
  NoSleep no_sleep_;
};

// The helper's end in a thread of this process: tests and fuzzers run the
// module's side against it with a world of fakes.
class ThreadHelper final : public ptv::HelperLink {
 public:
  explicit ThreadHelper(std::unique_ptr<ptv::HelperWorld> world)
      : world_(std::move(world)) {
    int fds[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    ours_ = ptv::FileDescriptor(fds[0]);
    theirs_ = ptv::FileDescriptor(fds[1]);
    channel_ = std::make_unique<ptv::MessageChannel>(ours_.get());
    thread_ = std::thread([this] {
      ptv::MessageChannel ch(theirs_.get());
      status_ = ptv::serve_login(ch, *world_);
      theirs_.reset();  // as a helper process that ends closes its socket
    });
  }
  ~ThreadHelper() override {
    ours_.reset();
    thread_.join();
  }
  ptv::MessageChannel& channel() override { return *channel_; }

 private:
  std::unique_ptr<ptv::HelperWorld> world_;
  ptv::FileDescriptor ours_, theirs_;
  std::unique_ptr<ptv::MessageChannel> channel_;
  std::thread thread_;
  int status_ = -1;
};

// Starts helpers with a function (a thread, a scripted link), counting.
class FakeStarter final : public ptv::HelperStarter {
 public:
  std::function<std::expected<std::unique_ptr<ptv::HelperLink>, std::string>()> make;
  int starts = 0;
  std::expected<std::unique_ptr<ptv::HelperLink>, std::string> start() override {
    ++starts;
    return make();
  }
};

// Group names and memberships from a table: `gids` maps names that
// resolve to their ids, `member_of` is the account's list (every account
// has the same); `unreadable` makes that list fail.
class FakeGroups final : public ptv::GroupDirectory {
 public:
  std::map<std::string, gid_t> gids;
  std::vector<gid_t> member_of;
  bool unreadable = false;
  int lookups = 0;
  std::optional<gid_t> group_id(const std::string& name) override {
    ++lookups;
    auto it = gids.find(name);
    if (it == gids.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::vector<gid_t>> groups_of(const ptv::Account&) override {
    ++lookups;
    if (unreadable) return std::nullopt;
    return member_of;
  }
};

// Grace entries in memory, on a clock the test moves (`now`); `broken`
// makes every call fail as a state store that cannot be used.
class FakeGrace final : public ptv::GraceStore {
 public:
  std::int64_t now = 1'000'000;
  std::map<std::string, std::int64_t> until;  // "account address" -> expiry
  int finds = 0, records = 0;
  bool broken = false;
  std::expected<std::optional<std::int64_t>, ptv::StateError> find(
      const std::string& account, const std::string& address) override {
    ++finds;
    if (broken) return std::unexpected(ptv::StateError{"state broken"});
    auto it = until.find(account + " " + address);
    if (it == until.end() || it->second <= now) return std::nullopt;
    return it->second;
  }
  std::expected<void, ptv::StateError> record(const std::string& account,
                                              const std::string& address,
                                              std::int64_t period_s) override {
    ++records;
    if (broken) return std::unexpected(ptv::StateError{"state broken"});
    until[account + " " + address] = now + period_s;
    return {};
  }
};

}  // namespace ptv_fakes
