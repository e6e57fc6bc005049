// The module's end of the helper: starting twilio-verify-helper so that the
// caller owns nothing of it, and relaying its questions (prompts, the send
// limit, log lines) until it answers with the result.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "core/conversation.hpp"
#include "util/log.hpp"
#include "core/outcome.hpp"
#include "protocol/protocol.hpp"
#include "core/send_gate.hpp"

namespace ptv {

struct Config;

// A running helper: the channel to it (and, for the real one, the process
// behind it, stopped and reaped when the link goes).
class HelperLink {
 public:
  virtual ~HelperLink() = default;
  virtual MessageChannel& channel() = 0;
  // A helper that broke the protocol or stayed silent is stopped at once
  // rather than given time to end.
  virtual void abandon() {}
};

using HelperStarter =
    std::function<std::expected<std::unique_ptr<HelperLink>, std::string>()>;

// The real helper. The program must pass the rules of lookup_command
// (root-owned, not writable by group or others, in root-owned directories
// that are not either). It is started with fork and exec, with real,
// effective and saved ids all root (an invoking user of su or sudo cannot
// signal it), an empty environment, known resource limits, no controlling
// terminal (a session of its own), no descriptor but its socket, and all
// signals at their defaults. Needs root. The error text is safe to log.
std::expected<std::unique_ptr<HelperLink>, std::string> start_helper_process(
    const std::string& path);

// The outer bound on each wait for the helper: everything it may do between
// two messages (the directory and command lookups, a request and its
// retry, a check and a cancel) and its start, with room to spare. The
// helper keeps the real time budgets itself.
std::chrono::milliseconds helper_wait_bound(const Config& config);

struct HelperCall {
  RequestMsg request;
  Conversation& conversation;
  Logger& log;
  SendGate* send_gate = nullptr;  // null: no limit (tests)
  std::chrono::milliseconds wait_bound{30000};
};

// Sends the request and answers the helper until its result. A helper that
// dies, stays silent past the bound, or says anything malformed or out of
// turn is an internal error (denied under both failmodes).
AuthResult run_helper(HelperLink& link, const HelperCall& call);

}  // namespace ptv
