#include "twilio/messaging_sender.hpp"

#include "twilio/form_encoding.hpp"
#include "twilio/message_body.hpp"

namespace ptv {

namespace {

using std::chrono::milliseconds;

std::unexpected<VerifyFailure> refused(VerifyError e) {
  return std::unexpected(VerifyFailure(Refusal{e, 0, {}}));
}

}  // namespace

MessagingSender::MessagingSender(const TwilioSettings& settings,
                                 HttpTransport& http, int max_attempts,
                                 MonotonicClock* clock, RandomBytes random)
    : settings_(settings),
      http_(http),
      max_attempts_(max_attempts),
      clock_(clock),
      random_(random != nullptr ? random : system_random) {}

std::string MessagingSender::messages_url() const {
  return settings_.messaging.api_url + "/2010-04-01/Accounts/" +
         url_encode(settings_.account_sid) + "/Messages.json";
}

std::string MessagingSender::not_found_hint() const {
  return "Twilio answered 404 for " + messages_url() +
         "; check account_sid and messaging.api_url";
}

bool MessagingSender::expired() {
  const auto now = clock_ != nullptr ? clock_->now() : std::chrono::steady_clock::now();
  return now - made_ >= std::chrono::seconds(settings_.messaging.code_ttl_s);
}

// One message with the code; retried once only when nothing left the host.
std::expected<std::string, VerifyFailure> MessagingSender::send(const std::string& to) {
  const MessagingSettings& m = settings_.messaging;
  const Secret text = render_body(m.body, code_.view(), short_host_name());
  const std::string ttl = std::to_string(m.code_ttl_s);
  std::vector<FormField> fields = {{"To", to}, {"Body", text.view()}};
  if (!m.from.empty()) {
    fields.push_back({"From", m.from});
  } else {
    fields.push_back({"MessagingServiceSid", m.messaging_service_sid});
  }
  fields.push_back({"ValidityPeriod", ttl});
  const Secret body = form_encode(fields);
  const milliseconds budget{settings_.timeout_ms};
  auto response = http_.post_form(messages_url(), body, budget);
  if (!response && response.error().kind == TransportErrorKind::Unreachable)
    response = http_.post_form(messages_url(), body, budget);
  if (!response) return std::unexpected(VerifyFailure(std::move(response.error())));
  auto sid = interpret_message(*response);
  if (!sid) return std::unexpected(VerifyFailure(std::move(sid.error())));
  return std::move(*sid);
}

std::expected<std::string, VerifyFailure> MessagingSender::start(
    const std::string& to, const std::string& /*channel*/,
    const std::string& /*locale*/, const std::string& /*rate_limits*/) {
  auto code = generate_code(static_cast<std::size_t>(settings_.messaging.code_length),
                            random_);
  if (!code)
    return std::unexpected(VerifyFailure(
        TransportError{TransportErrorKind::LocalResource, code.error()}));
  code_ = std::move(*code);
  made_ = clock_ != nullptr ? clock_->now() : std::chrono::steady_clock::now();
  checks_ = 0;
  auto sid = send(to);
  if (!sid) {
    code_.wipe();
    return sid;
  }
  sid_ = *sid;
  return sid;
}

std::expected<std::string, VerifyFailure> MessagingSender::resend(
    const std::string& to, const std::string& /*channel*/,
    const std::string& /*locale*/, const std::string& /*rate_limits*/) {
  if (code_.empty() || expired()) return refused(VerifyError::Expired);
  auto sid = send(to);
  if (!sid) return sid;
  return sid_;
}

std::expected<CheckStatus, VerifyFailure> MessagingSender::check(
    const std::string& /*sid*/, const Secret& code) {
  if (code_.empty() || expired()) {
    code_.wipe();
    return refused(VerifyError::Expired);
  }
  if (++checks_ > max_attempts_) {
    code_.wipe();
    return refused(VerifyError::MaxChecks);
  }
  if (!codes_equal(code_.view(), code.view())) return CheckStatus::Pending;
  code_.wipe();  // used once
  return CheckStatus::Approved;
}

std::expected<void, VerifyFailure> MessagingSender::cancel(const std::string& /*sid*/) {
  code_.wipe();
  return {};
}

}  // namespace ptv
