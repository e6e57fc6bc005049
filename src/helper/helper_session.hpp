// The helper's end of the protocol: reads the module's request, loads the
// configuration itself, runs the verification flow with the conversation,
// the send limit and the log relayed to the module, and answers with the
// result. The world it reaches (configuration file, HTTPS, directory,
// lookup command) is an interface, so that unit tests and fuzzers can run
// the real session against fakes.
#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "net/http_transport.hpp"
#include "phone/source.hpp"
#include "protocol/protocol.hpp"
#include "twilio/verify_client.hpp"
#include "util/log.hpp"

namespace ptv {

class HelperWorld {
 public:
  virtual ~HelperWorld() = default;
  virtual std::expected<Config, ConfigError> load_config(const std::string& path) = 0;
  virtual std::expected<std::unique_ptr<HttpTransport>, TransportError> make_transport(
      const TwilioSettings& twilio) = 0;
  // The source that reaches out: "ldap" or "command" (`which`).
  virtual std::unique_ptr<NumberSource> remote_source(PhoneSource which,
                                                      const PhoneSettings& phone,
                                                      Logger& log) = 0;
  // The wait before a 429 retry (null: really sleep).
  virtual Sleeper* sleeper() { return nullptr; }
  // Not empty when the helper's own resource limits are below what it
  // needs: every request is then answered with this as an internal error.
  [[nodiscard]] virtual std::string_view unfit() const { return {}; }
};

// The real world: the configuration file, libcurl, libldap, the command.
class RealWorld final : public HelperWorld {
 public:
  std::expected<Config, ConfigError> load_config(const std::string& path) override;
  std::expected<std::unique_ptr<HttpTransport>, TransportError> make_transport(
      const TwilioSettings& twilio) override;
  std::unique_ptr<NumberSource> remote_source(PhoneSource which,
                                              const PhoneSettings& phone,
                                              Logger& log) override;
  [[nodiscard]] std::string_view unfit() const override { return unfit_; }
  std::string unfit_;
};

// How long the helper waits for the module: the request and the send
// limit's answers come at once; a code comes when the person has typed it.
inline constexpr std::chrono::milliseconds kRequestWait{10000};
inline constexpr std::chrono::milliseconds kAnswerWait{15000};
inline constexpr std::chrono::milliseconds kCodeWait{3600 * 1000};

// Serves one login. Returns 0 when a result was sent, else 1 (the module
// went away or broke the protocol; nothing more can be said to it).
int serve_login(MessageChannel& channel, HelperWorld& world);

}  // namespace ptv
