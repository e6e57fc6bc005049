#include "helper/helper_session.hpp"

#include <syslog.h>

#include <utility>

#include "core/account.hpp"
#include "core/verification_flow.hpp"
#include "net/curl_transport.hpp"
#include "phone/ldap_source.hpp"
#include "util/log.hpp"
#include "phone/command_source.hpp"

namespace ptv {

namespace {

// The module's conversation, one prompt per round trip. The module checked
// the reply where it was typed (digits, not the password): only a
// well-formed code crosses, once.
class RelayedConversation final : public Conversation {
 public:
  explicit RelayedConversation(MessageChannel& ch) : ch_(ch) {}

  std::expected<Secret, ConversationError> ask_hidden(std::string_view) override {
    return std::unexpected(ConversationError::Failed);  // only ask_code
  }
  std::expected<CodeCheck, ConversationError> ask_code(
      std::string_view prompt) override {
    if (!ch_.send(PromptMsg{std::string(prompt)})) return lost();
    auto reply = ch_.receive(kCodeWait);
    if (!reply) return lost();
    if (auto* code = std::get_if<CodeMsg>(&*reply)) {
      CodeCheck c;
      c.problem = code->problem;
      c.code = std::move(code->digits);
      return c;
    }
    if (auto* failed = std::get_if<ConversationFailedMsg>(&*reply))
      return std::unexpected(failed->error);
    return lost();
  }
  void show_error(std::string_view message) override {
    (void)ch_.send(ShowErrorMsg{std::string(message)});
  }

 private:
  // The module went away or answered out of turn: as if the application
  // could not ask.
  static std::unexpected<ConversationError> lost() {
    return std::unexpected(ConversationError::Failed);
  }
  MessageChannel& ch_;
};

// The send limit lives with its state, in the module: asked before each
// send.
class RelayedSendGate final : public SendGate {
 public:
  explicit RelayedSendGate(MessageChannel& ch) : ch_(ch) {}
  SendReservation reserve(const std::string&) override {
    SendReservation refused;
    refused.detail = "the module did not answer the send limit's question";
    if (!ch_.send(ReserveMsg{})) return refused;
    auto reply = ch_.receive(kAnswerWait);
    if (!reply) return refused;
    if (auto* r = std::get_if<ReservedMsg>(&*reply)) return std::move(r->reservation);
    return refused;
  }
  std::string release(const std::string&, std::int64_t stamp) override {
    if (!ch_.send(ReleaseMsg{stamp})) return "the module went away";
    auto reply = ch_.receive(kAnswerWait);
    if (!reply) return "the module did not answer";
    if (auto* r = std::get_if<ReleasedMsg>(&*reply)) return std::move(r->problem);
    return "the module answered out of turn";
  }

 private:
  MessageChannel& ch_;
};

// Log lines go to the module, which writes them with pam_syslog.
class RelayedLogger final : public Logger {
 public:
  explicit RelayedLogger(MessageChannel& ch) : ch_(ch) {}
  void log(int priority, std::string_view message) override {
    (void)ch_.send(LogMsg{priority, std::string(message)});
  }

 private:
  MessageChannel& ch_;
};

AuthResult internal_error(std::string detail) {
  AuthResult r;
  r.outcome = Outcome::InternalError;
  r.detail = std::move(detail);
  return r;
}

AuthResult run_flow(MessageChannel& ch, const HelperWorld& world,
                    const RequestMsg& req) {
  auto config = world.load_config(req.config_path);
  if (!config) {
    AuthResult r;
    r.outcome = Outcome::ConfigError;
    r.detail = config.error().message;
    return r;
  }
  Config& cfg = *config;
  if (req.first_source >= cfg.phone_sources.size())
    return internal_error("the module asked for a phone source the "
                          "configuration does not list");
  // The sources before this one were the module's: it found nothing there.
  cfg.phone_sources.erase(cfg.phone_sources.begin(),
                          cfg.phone_sources.begin() + req.first_source);

  RelayedConversation conversation(ch);
  RelayedSendGate gate(ch);
  RelayedLogger log(ch);
  log.set_debug(req.debug);
  // The module resolved the account; its name and GECOS field come along.
  const Account account{req.account, req.gecos, 0, 0};
  const AccountResolver resolve =
      [&account](const std::string&) -> std::expected<Account, AccountError> {
    return account;
  };
  const TransportFactory transport = [&world, &cfg]() {
    return world.make_transport(cfg);
  };
  AuthRequest request{cfg, req.account, conversation, log, resolve, transport,
                      world.sleep};
  request.send_gate = &gate;
  request.query_ldap = [&world, &cfg, &log](const std::string& u) {
    if (cfg.ldap.uri.starts_with("ldap://") && !cfg.ldap.starttls)
      log.warning("ldap: reading the phone number without TLS (starttls = "
                  "false): anyone on the network path can change it");
    return world.query_ldap(cfg, u);
  };
  request.query_command = [&world, &cfg](const std::string& u) {
    return world.query_command(cfg, u);
  };
  request.set_id_caller = req.set_id;
  return authenticate(request);
}

}  // namespace

HelperWorld real_world() {
  HelperWorld w;
  w.load_config = [](const std::string& path) { return load_config_file(path); };
  w.make_transport = [](const Config& c)
      -> std::expected<std::unique_ptr<HttpTransport>, TransportError> {
    auto t = CurlTransport::create(c);
    if (!t) return std::unexpected(t.error());
    return std::unique_ptr<HttpTransport>(std::move(*t));
  };
  w.query_ldap = [](const Config& c, const std::string& user) {
    return query_ldap(c.ldap, user);
  };
  w.query_command = [](const Config& c, const std::string& user) {
    return run_lookup_command(c.command, user);
  };
  return w;
}

int serve_login(MessageChannel& ch, const HelperWorld& world) {
  auto first = ch.receive(kRequestWait);
  if (!first && first.error().error != ChannelError::Malformed) return 1;
  const auto* req = first ? std::get_if<RequestMsg>(&*first) : nullptr;
  AuthResult result;
  if (!first) {
    result = internal_error("the module's request was malformed (" +
                            first.error().detail + ")");
  } else if (req == nullptr) {
    result = internal_error("the module's first message was no request");
  } else if (req->version != kProtocolVersion) {
    result = internal_error("protocol version " + std::to_string(req->version) +
                            " asked, the helper speaks " +
                            std::to_string(kProtocolVersion) +
                            ": the module and the helper come from different "
                            "versions of the package");
  } else if (!world.unfit.empty()) {
    result = internal_error(world.unfit);
  } else {
    try {
      result = run_flow(ch, world, *req);
    } catch (const std::bad_alloc&) {
      result = internal_error("the helper ran out of memory");
    }
  }
  result.account.clear();
  return ch.send(ResultMsg{std::move(result)}) ? 0 : 1;
}

}  // namespace ptv
