// Both ends of the protocol between the module and its helper, fed what the
// other end might send: well-formed messages in any order, with any field
// values, and raw frames and bytes.
//
// Input: one byte picks the end (even: the module's, run_helper; odd: the
// helper's, serve_login), one byte the caller (set-id or not); then a list
// of frames, each one byte of kind (a message of one of the eleven types
// built from the input, or raw bytes) and what it needs. The frames go into
// a socket pair ahead of time, then the writing side is shut, so that the
// end under test reads them and then the end of the stream.
//
// Invariants:
//  - decode_body(encode_body(m)) gives back m's type, for every m built;
//  - the module's end returns PAM_SUCCESS only when the stream held a
//    result message saying approved, or saying fail-open for a caller that
//    is not set-id; never for a set-id caller's fail-open, and never an
//    outcome only the module decides (skipped-service, unknown user);
//  - the module's end never sends the password (its conversation says every
//    reply is the password; no code may cross), and answers nothing with
//    digits that the conversation did not type;
//  - the helper's end never touches the network unless the module asked
//    with a request, and always ends with a result or 1.
#include <fuzzer/FuzzedDataProvider.h>
#include <security/pam_modules.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "util/file_descriptor.hpp"
#include "fuzz_common.hpp"
#include "pam/helper_client.hpp"
#include "helper/helper_session.hpp"
#include "protocol/protocol.hpp"
#include "fakes.hpp"

namespace {

constexpr char kPassword[] = "20240607";

ptv::Message build(FuzzedDataProvider& in, std::uint8_t kind) {
  auto text = [&in] { return in.ConsumeRandomLengthString(40); };
  switch (kind % 12) {
    case 0: {
      ptv::RequestMsg m;
      m.version = in.ConsumeBool() ? ptv::kProtocolVersion
                                   : in.ConsumeIntegral<std::uint32_t>();
      m.config_path = in.ConsumeBool() ? "/fuzz/ptv.conf" : text();
      m.account = text();
      m.gecos = text();
      m.first_source = in.ConsumeIntegralInRange<std::uint32_t>(0, 20);
      m.set_id = in.ConsumeBool();
      m.debug = in.ConsumeBool();
      return m;
    }
    case 1:
      return ptv::CodeMsg{
          static_cast<ptv::CodeProblem>(in.ConsumeIntegralInRange(0, 5)),
          ptv::Secret(in.ConsumeBool() ? "918273" : text())};
    case 2:
      return ptv::ConversationFailedMsg{
          static_cast<ptv::ConversationError>(in.ConsumeIntegralInRange(0, 2))};
    case 3: {
      ptv::SendReservation r;
      r.decision = static_cast<ptv::SendDecision>(in.ConsumeIntegralInRange(0, 2));
      r.stamp = in.ConsumeIntegral<std::int64_t>();
      r.used = in.ConsumeIntegralInRange(0, 200);
      r.detail = text();
      return ptv::ReservedMsg{std::move(r)};
    }
    case 4: {
      ptv::ReleasedMsg m;
      if (in.ConsumeBool()) m.released = std::unexpected(ptv::StateError{text()});
      return m;
    }
    case 5:
      return ptv::PromptMsg{text()};
    case 6:
      return ptv::ShowErrorMsg{text()};
    case 7:
      return ptv::LogMsg{in.ConsumeIntegralInRange(0, 9), text()};
    case 8:
      return ptv::ReserveMsg{};
    case 9:
      return ptv::ReleaseMsg{in.ConsumeIntegral<std::int64_t>()};
    default: {
      ptv::AuthResult a;
      a.outcome = static_cast<ptv::Outcome>(in.ConsumeIntegralInRange(0, 17));
      a.masked_phone = in.ConsumeBool() ? "+1******4567" : text();
      a.verification_sid =
          in.ConsumeBool() ? "VE00112233445566778899aabbccddeeff" : text();
      a.attempts = in.ConsumeIntegralInRange(0, 150);
      a.detail = text();
      return ptv::ResultMsg{std::move(a)};
    }
    case 11:
      return ptv::ResendMsg{
          static_cast<ptv::CodeRequest>(in.ConsumeIntegralInRange(0, 2))};
  }
}

// Writes the frames into the socket and shuts it for writing. Returns what
// the end under test may accept as its peer's last word.
struct Written {
  bool approving_result = false;  // a well-formed Approved result
  bool fail_open_result = false;  // a well-formed FailOpen result
  bool request = false;           // a well-formed request of this version
};

Written write_frames(FuzzedDataProvider& in, int fd) {
  Written w;
  // Nobody reads yet: never block on a full socket buffer.
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  std::size_t total = 0;
  while (in.remaining_bytes() > 0 && total < 32768) {
    const auto kind = in.ConsumeIntegral<std::uint8_t>();
    std::string frame;
    if (kind >= 240) {  // raw bytes, framed or not
      frame = in.ConsumeRandomLengthString(64);
    } else {
      const ptv::Message m = build(in, kind);
      const ptv::Secret body = ptv::encode_body(m);
      auto back = ptv::decode_body(body.view());
      // What the encoder writes, the decoder reads, unless a field was
      // built out of the decoder's bounds (then it refuses: fine).
      if (back) FUZZ_CHECK(back->index() == m.index());
      if (back && std::holds_alternative<ptv::ResultMsg>(*back)) {
        const auto o = std::get<ptv::ResultMsg>(*back).result.outcome;
        w.approving_result |= o == ptv::Outcome::Approved;
        w.fail_open_result |= o == ptv::Outcome::FailOpen;
      }
      if (back && std::holds_alternative<ptv::RequestMsg>(*back) &&
          std::get<ptv::RequestMsg>(*back).version == ptv::kProtocolVersion)
        w.request = true;
      for (int i = 0; i < 4; ++i)
        frame.push_back(static_cast<char>(body.size() >> (8 * i)));
      frame.append(body.view());
    }
    if (frame.size() > 16384) break;
    const ssize_t n = write(fd, frame.data(), frame.size());
    if (n < 0) break;
    total += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  fcntl(fd, F_SETFL, flags);
  return w;
}

class PasswordTyping final : public ptv::Conversation {
 public:
  std::expected<ptv::Secret, ptv::ConversationError> ask_hidden(
      std::string_view) override {
    return ptv::Secret(kPassword);
  }
  void show_error(std::string_view) override {}
  bool is_password(std::string_view reply) override { return reply == kPassword; }
};

class Quiet final : public ptv::Logger {
 public:
  void log(int, std::string_view) override {}
};

class Link final : public ptv::HelperLink {
 public:
  explicit Link(int fd) : ch_(fd) {}
  ptv::MessageChannel& channel() override { return ch_; }

 private:
  ptv::MessageChannel ch_;
};

// Reads everything the module sent: no password, and no code at all.
void check_module_output(int fd) {
  std::string all;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) all.append(buffer, n);
  FUZZ_CHECK(all.find(kPassword) == std::string::npos);
  std::string_view rest = all;
  while (rest.size() >= 4) {
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i)
      len |= std::uint32_t{static_cast<unsigned char>(rest[i])} << (8 * i);
    FUZZ_CHECK(len <= rest.size() - 4);
    auto m = ptv::decode_body(rest.substr(4, len));
    FUZZ_CHECK(m.has_value());  // the module writes only valid messages
    if (const auto* c = std::get_if<ptv::CodeMsg>(&*m))
      FUZZ_CHECK(c->digits.empty());  // every reply was the password
    rest.remove_prefix(4 + len);
  }
  FUZZ_CHECK(rest.empty());
}

void module_end(FuzzedDataProvider& in, bool set_id) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return;
  ptv::FileDescriptor module_fd(fds[0]), helper_fd(fds[1]);
  const Written w = write_frames(in, helper_fd.get());
  PasswordTyping conv;
  Quiet log;
  Link link(module_fd.get());
  ptv::RequestMsg req;
  req.config_path = "/fuzz/ptv.conf";
  req.account = "alice";
  req.set_id = set_id;
  const ptv::HelperCall call{std::move(req), conv, log, nullptr,
                             std::chrono::milliseconds(100)};
  const ptv::AuthResult r = ptv::run_helper(link, call);
  if (ptv::pam_result_for(r.outcome) == PAM_SUCCESS) {
    FUZZ_CHECK(r.outcome == ptv::Outcome::Approved ? w.approving_result
                                                   : w.fail_open_result);
    FUZZ_CHECK(!(set_id && r.outcome == ptv::Outcome::FailOpen));
  }
  // Outcomes only the module decides (services, the account, the access
  // policy) never come from the helper.
  FUZZ_CHECK(r.outcome != ptv::Outcome::ServiceSkipped &&
             r.outcome != ptv::Outcome::UnknownUser &&
             r.outcome != ptv::Outcome::ExemptGroup &&
             r.outcome != ptv::Outcome::ExemptNetwork &&
             r.outcome != ptv::Outcome::Grace);
  module_fd.reset();
  check_module_output(helper_fd.get());
}

void helper_end(FuzzedDataProvider& in) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return;
  ptv::FileDescriptor module_fd(fds[0]), helper_fd(fds[1]);
  const Written w = write_frames(in, module_fd.get());
  int transports = 0;
  ptv_fakes::FakeWorld world;
  world.config = [](const std::string& path)
      -> std::expected<ptv::Config, ptv::ConfigError> {
    return ptv::parse_config_text(
        "twilio = { account_sid = \"AC0123456789abcdef0123456789abcdef\"; "
        "auth_token = \"tok\"; service_sid = "
        "\"VA0123456789abcdef0123456789abcdef\"; };\n"
        "users = ( (\"alice\", \"+15551234567\") );\n",
        path);
  };
  world.transport = [&transports]()
      -> std::expected<std::unique_ptr<ptv::HttpTransport>, ptv::TransportError> {
    ++transports;
    return std::unexpected(
        ptv::TransportError{ptv::TransportErrorKind::Unreachable, "fuzz"});
  };
  world.answer = [](ptv::PhoneSource, const std::string&) {
    return ptv_fakes::Answer{ptv_fakes::Answer::Kind::NotFound, {}, {}};
  };
  // What the helper sends is read (and dropped) as it comes, as the module
  // would: a full socket must not stall it.
  const int drain_fd = module_fd.get();
  std::thread drain([drain_fd] {
    char buffer[4096];
    while (read(drain_fd, buffer, sizeof buffer) > 0) {
    }
  });
  ptv::MessageChannel ch(helper_fd.get());
  const int status = ptv::serve_login(ch, world);
  helper_fd.reset();
  drain.join();
  FUZZ_CHECK(status == 0 || status == 1);
  if (!w.request) FUZZ_CHECK(transports == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const auto end = in.ConsumeIntegral<std::uint8_t>();
  const bool set_id = in.ConsumeBool();
  if (end % 2 == 0) {
    module_end(in, set_id);
  } else {
    helper_end(in);
  }
  return 0;
}
