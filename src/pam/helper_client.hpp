// The module's end of the helper: starting twilio-verify-helper so that the
// caller owns nothing of it, and relaying its questions (prompts, the send
// limit, log lines) until it answers with the result.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "core/client_flow.hpp"
#include "core/conversation.hpp"
#include "core/outcome.hpp"
#include "core/send_gate.hpp"
#include "phone/settings.hpp"
#include "protocol/protocol.hpp"
#include "twilio/settings.hpp"
#include "util/log.hpp"

namespace ptv {

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

// Starts a helper: the real program, or in tests a thread.
class HelperStarter {
 public:
  virtual ~HelperStarter() = default;
  virtual std::expected<std::unique_ptr<HelperLink>, std::string> start() = 0;
};

// The real helper. The program must pass the rules of lookup_command
// (root-owned, not writable by group or others, in root-owned directories
// that are not either). It is started with fork and exec, with real,
// effective and saved ids all root (an invoking user of su or sudo cannot
// signal it), an empty environment, known resource limits, no controlling
// terminal (a session of its own), no descriptor but its socket, and all
// signals at their defaults. Needs root. The error text is safe to log.
std::expected<std::unique_ptr<HelperLink>, std::string> start_helper_process(
    const std::string& path);

class HelperProgram final : public HelperStarter {
 public:
  explicit HelperProgram(std::string path) : path_(std::move(path)) {}
  std::expected<std::unique_ptr<HelperLink>, std::string> start() override {
    return start_helper_process(path_);
  }

 private:
  std::string path_;
};

// The outer bound on each wait for the helper: everything it may do between
// two messages (the directory and command lookups, a request and its
// retry, a check and a cancel) and its start, with room to spare. The
// helper keeps the real time budgets itself.
std::chrono::milliseconds helper_wait_bound(const TwilioSettings& twilio,
                                            const PhoneSettings& phone);

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

// The module's remote part of a login: starts the helper, hands it the
// account and the configuration file's path (it reads the file itself),
// and relays its questions to the conversation, the log and the send
// limit until its result.
class HelperVerifier final : public RemoteVerifier {
 public:
  struct Wiring {
    HelperStarter& starter;
    const std::string& config_path;
    std::chrono::milliseconds wait_bound;
    Conversation& conversation;
    Logger& log;
    SendGate* send_gate = nullptr;  // null: no limit (tests)
  };
  explicit HelperVerifier(const Wiring& w) : w_(w) {}
  AuthResult verify(const Account& account, std::uint32_t first_source,
                    bool set_id_caller, std::string_view remote_host) override;

 private:
  Wiring w_;
};

}  // namespace ptv
