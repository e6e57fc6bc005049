// The protocol between the module and its helper: small, versioned,
// length-prefixed messages over a stream socket, one request and one
// result, with the helper's questions (a prompt, a send to reserve) in
// between. Each frame is a 32-bit little-endian length, then the body: a
// one-byte type and the type's fields in a fixed order (32- and 64-bit
// little-endian integers, strings as a 32-bit length and the bytes). A
// decoder accepts exactly that and nothing more.
//
//   module                                helper
//   Request (version, config, account,  ->
//            PAM_RHOST)
//                                      <- Log*, ShowError*
//                                      <- Reserve          (before each send)
//   Reserved (the send limit's answer) ->
//                                      <- Release          (nothing was sent)
//   Released                           ->
//                                      <- Prompt
//   Code | ConversationFailed          ->  (the typed code crosses once)
//   | Resend                               (resend or call typed: a request,
//                                           then Reserve, Reserved, Prompt)
//                                      <- Result           (last)
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <variant>

#include "core/code_input.hpp"
#include "core/conversation.hpp"
#include "core/outcome.hpp"
#include "util/secret.hpp"
#include "core/send_gate.hpp"

namespace ptv {

inline constexpr std::uint32_t kProtocolVersion = 4;
inline constexpr std::size_t kMaxFrameBytes = 64 * 1024;
inline constexpr std::size_t kMaxFieldBytes = 16 * 1024;
// A longer PAM_RHOST is no IP address: the module sends none.
inline constexpr std::size_t kMaxRemoteHostBytes = 1024;

// Module to helper.
struct RequestMsg {
  std::uint32_t version = kProtocolVersion;
  std::string config_path;   // the file the module loaded (conf=)
  std::string account;       // the account's own name
  std::string gecos;         // its GECOS field, for the "gecos" source
  std::uint32_t first_source = 0;  // where the phone lookup goes on
  bool set_id = false;       // the caller runs set-id: failmode safe denies
  bool debug = false;        // the module argument debug
  std::string remote_host;   // PAM_RHOST (the client_ip rate limit), may be empty
};
struct CodeMsg {
  CodeProblem problem = CodeProblem::Empty;
  Secret digits;  // the code when problem is None, else empty
};
struct ConversationFailedMsg {
  ConversationError error = ConversationError::Failed;
};
// `resend` or `call` typed at the prompt instead of a code (never None).
struct ResendMsg {
  CodeRequest request = CodeRequest::Resend;
};
struct ReservedMsg {
  SendReservation reservation;
};
struct ReleasedMsg {
  std::expected<void, StateError> released;  // given back, or why not
};

// Helper to module.
struct PromptMsg {
  std::string text;
};
struct ShowErrorMsg {
  std::string text;
};
struct LogMsg {
  int priority = 0;  // syslog priority, LOG_ERR to LOG_DEBUG
  std::string text;
};
struct ReserveMsg {};
struct ReleaseMsg {
  std::int64_t stamp = 0;
};
struct ResultMsg {
  AuthResult result;  // account unused: the module knows it
};

using Message =
    std::variant<RequestMsg, CodeMsg, ConversationFailedMsg, ReservedMsg,
                 ReleasedMsg, PromptMsg, ShowErrorMsg, LogMsg, ReserveMsg,
                 ReleaseMsg, ResultMsg, ResendMsg>;

// A human name for a message's type, for log lines.
const char* message_name(const Message& m);

// The body of a frame (type and fields), in memory that is wiped.
Secret encode_body(const Message& m);

// The message in a body; an error text for anything malformed: an unknown
// type, a field out of range or too long, bytes left over.
std::expected<Message, std::string> decode_body(std::string_view body);

enum class ChannelError {
  Closed,     // the other end closed the connection (or died)
  TimedOut,   // nothing arrived within the bound while we waited
  Malformed,  // a frame that is too long or does not decode
  Io,         // a read or write failed
};
const char* describe(ChannelError e);

struct ChannelFailure {
  ChannelError error = ChannelError::Io;
  std::string detail;  // safe to log
};

// One end of the connection. Writes never raise SIGPIPE and never wait
// without a bound; reads return whatever has arrived before judging the
// deadline, and time this process spends stopped (SIGSTOP) is given back.
class MessageChannel {
 public:
  explicit MessageChannel(int fd) : fd_(fd) {}
  // Waits at most `bound` for room when the other end does not read.
  std::expected<void, ChannelFailure> send(
      const Message& m,
      std::chrono::milliseconds bound = std::chrono::milliseconds(15000));
  std::expected<Message, ChannelFailure> receive(
      std::chrono::milliseconds bound);
  [[nodiscard]] int fd() const { return fd_; }

 private:
  std::expected<void, ChannelFailure> read_exactly(
      char* out, std::size_t n, std::chrono::steady_clock::time_point& deadline,
      std::chrono::milliseconds bound);
  int fd_;
};

}  // namespace ptv
