#include "protocol/protocol.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "util/stop_signals.hpp"

namespace ptv {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class Type : std::uint8_t {
  Request = 1,
  Code = 2,
  ConversationFailed = 3,
  Reserved = 4,
  Released = 5,
  Resend = 6,
  Prompt = 16,
  ShowError = 17,
  Log = 18,
  Reserve = 19,
  Release = 20,
  Result = 21,
};

class Writer {
 public:
  Writer() { out_.reserve(256); }
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void i64(std::int64_t v) {
    const auto u = static_cast<std::uint64_t>(v);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(u >> (8 * i)));
  }
  void str(std::string_view s) {
    const std::size_t n = std::min(s.size(), kMaxFieldBytes);
    u32(static_cast<std::uint32_t>(n));
    // Room first, so that appending a secret never reallocates it.
    out_.reserve(out_.size() + n + 1);
    out_.append(s.substr(0, n));
  }
  Secret take() { return std::move(out_); }

 private:
  Secret out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(std::uint8_t& v) {
    if (in_.size() < 1) return false;
    v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (in_.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(4);
    return true;
  }
  bool i64(std::int64_t& v) {
    if (in_.size() < 8) return false;
    std::uint64_t u = 0;
    for (int i = 0; i < 8; ++i)
      u |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    v = static_cast<std::int64_t>(u);
    return true;
  }
  bool str(std::string_view& s, std::size_t max = kMaxFieldBytes) {
    std::uint32_t n = 0;
    if (!u32(n) || n > max || n > in_.size()) return false;
    s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool str(std::string& s, std::size_t max = kMaxFieldBytes) {
    std::string_view v;
    if (!str(v, max)) return false;
    s = std::string(v);
    return true;
  }
  bool flag(bool& b) {
    std::uint8_t v = 0;
    if (!u8(v) || v > 1) return false;
    b = v == 1;
    return true;
  }
  template <typename Enum>
  bool enumerator(Enum& e, Enum last) {
    std::uint32_t v = 0;
    if (!u32(v) || v > static_cast<std::uint32_t>(last)) return false;
    e = static_cast<Enum>(v);
    return true;
  }
  [[nodiscard]] bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

template <typename E>
std::uint32_t as_u32(E e) {
  return static_cast<std::uint32_t>(e);
}

void write_result(Writer& w, const AuthResult& r) {
  w.u32(as_u32(r.outcome));
  w.str(r.masked_phone);
  w.str(r.verification_sid);
  w.u32(static_cast<std::uint32_t>(r.attempts));
  w.str(r.detail);
}

void write_reservation(Writer& w, const SendReservation& r) {
  w.u32(as_u32(r.decision));
  w.i64(r.stamp);
  w.u32(static_cast<std::uint32_t>(r.used));
  w.i64(r.retry_in_s);
  w.str(r.detail);
}

struct Encoder {
  Writer& w;
  void operator()(const RequestMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Request));
    w.u32(m.version);
    w.str(m.config_path);
    w.str(m.account);
    w.str(m.gecos);
    w.u32(m.first_source);
    w.u8(m.set_id ? 1 : 0);
    w.u8(m.debug ? 1 : 0);
    w.str(m.remote_host);
  }
  void operator()(const CodeMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Code));
    w.u32(as_u32(m.problem));
    w.str(m.digits.view());
  }
  void operator()(const ConversationFailedMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::ConversationFailed));
    w.u32(as_u32(m.error));
  }
  void operator()(const ResendMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Resend));
    w.u32(as_u32(m.request));
  }
  void operator()(const ReservedMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Reserved));
    write_reservation(w, m.reservation);
  }
  void operator()(const ReleasedMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Released));
    w.u8(m.released ? 1 : 0);
    w.str(m.released ? std::string_view() : std::string_view(m.released.error().detail));
  }
  void operator()(const PromptMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Prompt));
    w.str(m.text);
  }
  void operator()(const ShowErrorMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::ShowError));
    w.str(m.text);
  }
  void operator()(const LogMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Log));
    w.u32(static_cast<std::uint32_t>(m.priority));
    w.str(m.text);
  }
  void operator()(const ReserveMsg&) {
    w.u8(static_cast<std::uint8_t>(Type::Reserve));
  }
  void operator()(const ReleaseMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Release));
    w.i64(m.stamp);
  }
  void operator()(const ResultMsg& m) {
    w.u8(static_cast<std::uint8_t>(Type::Result));
    write_result(w, m.result);
  }
};

bool is_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool read_request(Reader& r, RequestMsg& m) {
  std::string_view path;
  if (!r.u32(m.version) || !r.str(path, 4096) || !r.str(m.account, 1024) ||
      !r.str(m.gecos, 4096) || !r.u32(m.first_source) || !r.flag(m.set_id) ||
      !r.flag(m.debug) || !r.str(m.remote_host, kMaxRemoteHostBytes))
    return false;
  if (path.empty() || path.front() != '/' ||
      path.find('\0') != std::string_view::npos || m.account.empty() ||
      m.account.find('\0') != std::string::npos || m.first_source > 16 ||
      m.remote_host.find('\0') != std::string::npos)
    return false;
  m.config_path = std::string(path);
  return true;
}

bool read_code(Reader& r, CodeMsg& m) {
  std::string_view digits;
  if (!r.enumerator(m.problem, CodeProblem::IsPassword) ||
      !r.str(digits, kMaxCodeLength))
    return false;
  // Digits exactly when the reply was a well-formed code.
  if (m.problem == CodeProblem::None) {
    if (digits.size() < kMinCodeLength || !is_digits(digits)) return false;
    m.digits.reserve(kMaxCodeLength + 1);
    m.digits.append(digits);
  } else if (!digits.empty()) {
    return false;
  }
  return true;
}

bool read_reservation(Reader& r, SendReservation& s) {
  std::uint32_t used = 0;
  if (!r.enumerator(s.decision, SendDecision::Error) || !r.i64(s.stamp) ||
      !r.u32(used) || used > 1000 || !r.i64(s.retry_in_s) || !r.str(s.detail, 2048))
    return false;
  s.used = static_cast<int>(used);
  return true;
}

bool read_result(Reader& r, AuthResult& a) {
  std::uint32_t attempts = 0;
  if (!r.enumerator(a.outcome, Outcome::InternalError) ||
      !r.str(a.masked_phone, 64) || !r.str(a.verification_sid, 64) ||
      !r.u32(attempts) || attempts > 100 || !r.str(a.detail, 4096))
    return false;
  a.attempts = static_cast<int>(attempts);
  return true;
}

// Given back (no text), or the state's error (its text).
bool read_released(Reader& r, ReleasedMsg& m) {
  bool given = false;
  std::string problem;
  if (!r.flag(given) || !r.str(problem, 2048) || (given && !problem.empty()))
    return false;
  if (!given) m.released = std::unexpected(StateError{std::move(problem)});
  return true;
}

// A request is resend or call, never None.
bool read_resend(Reader& r, ResendMsg& m) {
  return r.enumerator(m.request, CodeRequest::Call) &&
         m.request != CodeRequest::None;
}

bool read_log(Reader& r, LogMsg& m) {
  std::uint32_t priority = 0;
  if (!r.u32(priority) || priority > 7 || !r.str(m.text, 4096)) return false;
  m.priority = static_cast<int>(priority);
  return true;
}

std::expected<Message, std::string> decode_fields(Type type, Reader& r) {
  const auto bad = [] { return std::unexpected(std::string("malformed fields")); };
  switch (type) {
    case Type::Request: {
      RequestMsg m;
      if (!read_request(r, m)) return bad();
      return m;
    }
    case Type::Code: {
      CodeMsg m;
      if (!read_code(r, m)) return bad();
      return m;
    }
    case Type::ConversationFailed: {
      ConversationFailedMsg m;
      if (!r.enumerator(m.error, ConversationError::NoReply)) return bad();
      return m;
    }
    case Type::Resend: {
      ResendMsg m;
      if (!read_resend(r, m)) return bad();
      return m;
    }
    case Type::Reserved: {
      ReservedMsg m;
      if (!read_reservation(r, m.reservation)) return bad();
      return m;
    }
    case Type::Released: {
      ReleasedMsg m;
      if (!read_released(r, m)) return bad();
      return m;
    }
    case Type::Prompt:
    case Type::ShowError: {
      std::string text;
      if (!r.str(text, 1024)) return bad();
      if (type == Type::Prompt) return PromptMsg{std::move(text)};
      return ShowErrorMsg{std::move(text)};
    }
    case Type::Log: {
      LogMsg m;
      if (!read_log(r, m)) return bad();
      return m;
    }
    case Type::Reserve:
      return ReserveMsg{};
    case Type::Release: {
      ReleaseMsg m;
      if (!r.i64(m.stamp)) return bad();
      return m;
    }
    case Type::Result: {
      ResultMsg m;
      if (!read_result(r, m.result)) return bad();
      return m;
    }
  }
  return std::unexpected(std::string("unknown message type"));
}

bool known_type(std::uint8_t t) {
  return (t >= 1 && t <= 6) || (t >= 16 && t <= 21);
}

}  // namespace

const char* message_name(const Message& m) {
  static constexpr const char* kNames[] = {
      "request", "code",   "conversation failure", "reserved", "released",
      "prompt",  "error message", "log line", "reserve", "release", "result",
      "resend request"};
  return kNames[m.index()];
}

Secret encode_body(const Message& m) {
  Writer w;
  std::visit(Encoder{w}, m);
  return w.take();
}

std::expected<Message, std::string> decode_body(std::string_view body) {
  Reader r(body);
  std::uint8_t type = 0;
  if (!r.u8(type) || !known_type(type))
    return std::unexpected(std::string("unknown message type"));
  auto m = decode_fields(static_cast<Type>(type), r);
  if (!m) return m;
  if (!r.done()) return std::unexpected(std::string("bytes after the last field"));
  return m;
}

const char* describe(ChannelError e) {
  switch (e) {
    case ChannelError::Closed:
      return "the connection was closed";
    case ChannelError::TimedOut:
      return "no answer in time";
    case ChannelError::Malformed:
      return "a malformed message";
    case ChannelError::Io:
      return "an I/O error";
  }
  return "channel error";
}

std::expected<void, ChannelFailure> MessageChannel::send(const Message& m,
                                                         milliseconds bound) {
  const Secret body = encode_body(m);
  Secret frame;
  frame.reserve(body.size() + 5);
  for (int i = 0; i < 4; ++i)
    frame.push_back(static_cast<char>(body.size() >> (8 * i)));
  frame.append(body.view());
  std::string_view rest = frame.view();
  // A peer that stops reading must not hang this end: the wait for room
  // is bounded too.
  const auto deadline = Clock::now() + bound;
  while (!rest.empty()) {
    const ssize_t n =
        ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      rest.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return std::unexpected(ChannelFailure{ChannelError::Closed, "write"});
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLOUT, 0};
      const int ready = poll(&p, 1, static_cast<int>(std::clamp<long long>(
                                        left.count(), 0, INT_MAX)));
      if (ready == 0 && Clock::now() >= deadline)
        return std::unexpected(ChannelFailure{ChannelError::TimedOut, "write"});
      continue;
    }
    return std::unexpected(ChannelFailure{
        ChannelError::Io, std::string("write: ") + std::strerror(errno)});
  }
  return {};
}

std::expected<void, ChannelFailure> MessageChannel::read_exactly(
    char* out, std::size_t n, Clock::time_point& deadline, milliseconds bound) {
  HoldStopSignals hold;
  std::size_t got = 0;
  while (got < n) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    pollfd p{fd_, POLLIN, 0};
    // At the deadline a last look (timeout 0): what has arrived counts.
    const int ready = poll(&p, 1, static_cast<int>(std::clamp<long long>(
                                      left.count(), 0, INT_MAX)));
    if (ready < 0 && errno != EINTR)
      return std::unexpected(ChannelFailure{
          ChannelError::Io, std::string("poll: ") + std::strerror(errno)});
    if (ready > 0) {
      const ssize_t r = ::read(fd_, out + got, n - got);
      if (r == 0) return std::unexpected(ChannelFailure{ChannelError::Closed, {}});
      if (r < 0 && errno != EINTR && errno != EAGAIN)
        return std::unexpected(ChannelFailure{
            ChannelError::Io, std::string("read: ") + std::strerror(errno)});
      if (r > 0) got += static_cast<std::size_t>(r);
      continue;
    }
    if (hold.continued()) deadline = std::max(deadline, Clock::now() + bound);
    if (ready == 0 && Clock::now() >= deadline)
      return std::unexpected(ChannelFailure{ChannelError::TimedOut, {}});
  }
  return {};
}

std::expected<Message, ChannelFailure> MessageChannel::receive(
    milliseconds bound) {
  auto deadline = Clock::now() + bound;
  unsigned char header[4];
  if (auto ok = read_exactly(reinterpret_cast<char*>(header), 4, deadline, bound);
      !ok)
    return std::unexpected(ok.error());
  std::uint32_t length = 0;
  for (int i = 0; i < 4; ++i) length |= std::uint32_t{header[i]} << (8 * i);
  if (length == 0 || length > kMaxFrameBytes)
    return std::unexpected(ChannelFailure{
        ChannelError::Malformed, "a frame of " + std::to_string(length) + " bytes"});
  Secret body;
  body.reserve(length + 1);
  body.resize(length);
  if (auto ok = read_exactly(body.data(), length, deadline, bound);
      !ok)
    return std::unexpected(ok.error());
  auto m = decode_body(body.view());
  if (!m) return std::unexpected(ChannelFailure{ChannelError::Malformed, m.error()});
  return std::move(*m);
}

}  // namespace ptv
