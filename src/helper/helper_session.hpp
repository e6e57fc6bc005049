// The helper's end of the protocol: reads the module's request, loads the
// configuration itself, runs the verification flow with the conversation,
// the send limit and the log relayed to the module, and answers with the
// result. The world it reaches (configuration file, HTTPS, directory,
// lookup command) is a struct of functions, so that unit tests and fuzzers
// can run the real session against fakes.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "net/http_transport.hpp"
#include "phone/phone.hpp"
#include "protocol/protocol.hpp"
#include "twilio/verify_client.hpp"

namespace ptv {

struct HelperWorld {
  std::function<std::expected<Config, ConfigError>(const std::string& path)>
      load_config;
  std::function<std::expected<std::unique_ptr<HttpTransport>, TransportError>(
      const Config&)>
      make_transport;
  std::function<SourceAnswer(const Config&, const std::string& user)> query_ldap;
  std::function<SourceAnswer(const Config&, const std::string& user)>
      query_command;
  VerifyClient::Sleeper sleep = nullptr;  // nullptr: really sleep
  // Set when the helper's own resource limits are below what it needs:
  // every request is then answered with this as an internal error.
  std::string unfit;
};

// The real world: the configuration file, libcurl, libldap, the command.
HelperWorld real_world();

// How long the helper waits for the module: the request and the send
// limit's answers come at once; a code comes when the person has typed it.
inline constexpr std::chrono::milliseconds kRequestWait{10000};
inline constexpr std::chrono::milliseconds kAnswerWait{15000};
inline constexpr std::chrono::milliseconds kCodeWait{3600 * 1000};

// Serves one login. Returns 0 when a result was sent, else 1 (the module
// went away or broke the protocol; nothing more can be said to it).
int serve_login(MessageChannel& channel, const HelperWorld& world);

}  // namespace ptv
