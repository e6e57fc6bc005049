#include "helper/helper_session.hpp"

#include <syslog.h>

#include <utility>

#include "core/account.hpp"
#include "core/verification_flow.hpp"
#include "net/curl_transport.hpp"
#include "phone/command_source.hpp"
#include "phone/gecos_source.hpp"
#include "phone/ldap_source.hpp"
#include "phone/users_source.hpp"
#include "util/log.hpp"

namespace ptv {

namespace {

// The module's conversation, one prompt per round trip. The module checked
// the reply where it was typed (digits, not the password): only a
// well-formed code crosses, once; resend and call cross as a request.
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
    if (auto* resend = std::get_if<ResendMsg>(&*reply)) {
      CodeCheck c;
      c.problem = CodeProblem::NotDigits;
      c.request = resend->request;
      return c;
    }
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
  std::expected<void, StateError> release(const std::string&,
                                          std::int64_t stamp) override {
    const auto failed = [](const char* what) {
      return std::unexpected(StateError{what});
    };
    if (!ch_.send(ReleaseMsg{stamp})) return failed("the module went away");
    auto reply = ch_.receive(kAnswerWait);
    if (!reply) return failed("the module did not answer");
    if (auto* r = std::get_if<ReleasedMsg>(&*reply)) return std::move(r->released);
    return failed("the module answered out of turn");
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
  return decided(Outcome::InternalError, {}, std::move(detail));
}

// The module resolved the account; its name and GECOS field come along.
class RequestAccount final : public AccountDirectory {
 public:
  explicit RequestAccount(const RequestMsg& req) : account_{req.account, req.gecos, 0, 0} {}
  std::expected<Account, AccountError> resolve(const std::string&) override {
    return account_;
  }
  const Account account_;
};

class WorldTransports final : public TransportMaker {
 public:
  WorldTransports(HelperWorld& world, const TwilioSettings& twilio)
      : world_(world), twilio_(twilio) {}
  std::expected<std::unique_ptr<HttpTransport>, TransportError> make() override {
    return world_.make_transport(twilio_);
  }

 private:
  HelperWorld& world_;
  const TwilioSettings& twilio_;
};

// The sources from the module's first unanswered one on (the ones before
// it were the module's, and it found nothing there).
std::vector<std::unique_ptr<NumberSource>> sources_from(
    std::uint32_t first, const Config& cfg, const Account& account,
    HelperWorld& world, Logger& log) {
  std::vector<std::unique_ptr<NumberSource>> sources;
  const auto& all = cfg.phone.sources;
  for (std::size_t i = first; i < all.size(); ++i) {
    if (all[i] == PhoneSource::Users) {
      sources.push_back(std::make_unique<UsersSource>(cfg.phone.users));
    } else if (all[i] == PhoneSource::Gecos) {
      sources.push_back(
          std::make_unique<GecosSource>(account.gecos, cfg.phone.gecos_field));
    } else {
      sources.push_back(world.remote_source(all[i], cfg.phone, log));
    }
  }
  return sources;
}

AuthResult run_flow(MessageChannel& ch, HelperWorld& world, const RequestMsg& req) {
  auto config = world.load_config(req.config_path);
  if (!config) return decided(Outcome::ConfigError, {}, config.error().message);
  const Config& cfg = *config;
  if (req.first_source >= cfg.phone.sources.size())
    return internal_error("the module asked for a phone source the "
                          "configuration does not list");
  RelayedConversation conversation(ch);
  RelayedSendGate gate(ch);
  RelayedLogger log(ch);
  log.set_debug(req.debug);
  RequestAccount accounts(req);
  WorldTransports transports(world, cfg.twilio);
  const auto owned = sources_from(req.first_source, cfg, accounts.account_, world, log);
  std::vector<NumberSource*> sources;
  for (const auto& s : owned) sources.push_back(s.get());
  const FlowDeps deps{conversation, log,     accounts,        transports,
                      sources,      &gate,   world.sleeper()};
  const AuthRequest request{{cfg.policy, cfg.twilio, cfg.state}, deps, req.account,
                            req.set_id, req.remote_host};
  return authenticate(request);
}

}  // namespace

std::expected<Config, ConfigError> RealWorld::load_config(const std::string& path) {
  return load_config_file(path);
}

std::expected<std::unique_ptr<HttpTransport>, TransportError>
RealWorld::make_transport(const TwilioSettings& twilio) {
  auto t = CurlTransport::create(twilio);
  if (!t) return std::unexpected(t.error());
  return std::unique_ptr<HttpTransport>(std::move(*t));
}

std::unique_ptr<NumberSource> RealWorld::remote_source(PhoneSource which,
                                                       const PhoneSettings& phone,
                                                       Logger& log) {
  if (which == PhoneSource::Ldap) return std::make_unique<LdapSource>(phone.ldap, log);
  return std::make_unique<CommandSource>(phone.command);
}

int serve_login(MessageChannel& ch, HelperWorld& world) {
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
  } else if (!world.unfit().empty()) {
    result = internal_error(std::string(world.unfit()));
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
