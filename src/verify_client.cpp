#include "verify_client.hpp"

#include "form_encoding.hpp"

namespace ptv {

namespace {

template <typename Answer, typename Interpret>
Reply<Answer> send(HttpTransport& http, const std::string& url,
                   const Secret& body, Interpret interpret) {
  Reply<Answer> reply;
  auto response = http.post_form(url, body);
  if (!response) {
    reply.transport_failed = true;
    reply.transport = std::move(response.error());
  } else {
    reply.answer = interpret(*response);
  }
  return reply;
}

}  // namespace

std::string VerifyClient::service_url() const {
  return config_.api_url + "/v2/Services/" + url_encode(config_.service_sid);
}

Reply<StartResult> VerifyClient::start(const std::string& to) {
  const Secret body =
      form_encode({{"To", to}, {"Channel", config_.channel}});
  return send<StartResult>(http_, service_url() + "/Verifications", body,
                           interpret_start);
}

Reply<CheckResult> VerifyClient::check(const std::string& verification_sid,
                                       const Secret& code) {
  const Secret body = form_encode(
      {{"VerificationSid", verification_sid}, {"Code", code.view()}});
  return send<CheckResult>(http_, service_url() + "/VerificationCheck", body,
                           interpret_check);
}

Reply<VerifyError> VerifyClient::cancel(const std::string& verification_sid) {
  const Secret body = form_encode({{"Status", "canceled"}});
  return send<VerifyError>(
      http_, service_url() + "/Verifications/" + url_encode(verification_sid),
      body, interpret_cancel);
}

}  // namespace ptv
