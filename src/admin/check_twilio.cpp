// check (b): Twilio through the configured trust store and proxy, with the
// configured credentials and service: GET of the Service (Verify) or of one
// page of the account's messages (Messaging), which send nothing and cost
// nothing.
#include <variant>

#include "twilio/form_encoding.hpp"
#include "twilio/verify_response.hpp"

#include "admin/setup.hpp"
#include "phone/phone.hpp"
#include "net/curl_transport.hpp"
#include "twilio/verify_client.hpp"

namespace ptv::admin {

namespace {

std::string trust_store(const TwilioSettings& t) {
  return t.ca_file.empty() ? std::string("the system trust store")
                           : "ca_file " + t.ca_file;
}

std::string route(const TwilioSettings& t) {
  return t.proxy.empty() ? std::string("no proxy") : "proxy " + log_safe(t.proxy, 200);
}

// The base URL the backend uses, and the setting that holds it.
const std::string& url_of(const TwilioSettings& t) {
  return t.backend == Backend::Messaging ? t.messaging.api_url : t.api_url;
}
const char* url_setting(const TwilioSettings& t) {
  return t.backend == Backend::Messaging ? "messaging.api_url" : "twilio.api_url";
}

// The setting to fix for a transport failure.
std::string transport_problem(const TwilioSettings& t, const TransportError& e) {
  const std::string what = std::string(describe(e.kind)) + ": " + e.detail;
  switch (e.kind) {
    case TransportErrorKind::Tls:
      return "twilio: TLS with " + url_of(t) + " failed (" + what +
             "); check twilio.ca_file (now " + trust_store(t) + ")";
    case TransportErrorKind::Unreachable:
    case TransportErrorKind::Timeout:
    case TransportErrorKind::Protocol:
      return "twilio: cannot reach " + url_of(t) + " (" + what + "); check " +
             url_setting(t) + " and twilio.proxy (now " + route(t) + ")";
    default:
      return "twilio: request to " + url_of(t) + " failed (" + what + ")";
  }
}

// The setting to fix for Twilio's refusal.
std::string refusal_problem(const TwilioSettings& t, const Refusal& r) {
  const std::string what = describe(r);
  if (r.error == VerifyError::AuthFailed)
    return "twilio: " + what + "; check " +
           (t.api_key_sid.empty()
                ? std::string("twilio.account_sid and twilio.auth_token")
                : std::string("twilio.api_key_sid and twilio.api_key_secret"));
  if (r.error == VerifyError::NotFound)
    return "twilio: service " + t.service_sid +
           " is not a Verify service of this account (404, 20404); check "
           "twilio.service_sid";
  return "twilio: the service fetch was refused: " + what;
}

std::string credentials(const TwilioSettings& t) {
  return t.api_key_sid.empty() ? "account_sid " + t.account_sid
                               : "api_key_sid " + t.api_key_sid;
}

// Messaging: GET .../Accounts/{AccountSid}/Messages.json?PageSize=1.
void check_messaging(const TwilioSettings& twilio, HttpTransport& http,
                     Report& report) {
  const std::string url = twilio.messaging.api_url + "/2010-04-01/Accounts/" +
                          url_encode(twilio.account_sid) +
                          "/Messages.json?PageSize=1";
  auto answer = http.get(url, std::chrono::milliseconds{twilio.timeout_ms});
  if (!answer) {
    report.problem(transport_problem(twilio, answer.error()));
    return;
  }
  if (answer->status == 401)
    return report.problem(refusal_problem(twilio, Refusal{VerifyError::AuthFailed, 20003, {}}));
  if (answer->status == 404)
    return report.problem("twilio: " + url + " answered 404; check "
                          "twilio.account_sid and messaging.api_url");
  if (answer->status < 200 || answer->status > 299)
    return report.problem("twilio: " + url + " answered HTTP " +
                          std::to_string(answer->status));
  report.ok("twilio: " + twilio.messaging.api_url + " reached through " +
            trust_store(twilio) + " and " + route(twilio) +
            "; credentials accepted (" + credentials(twilio) +
            "); backend messaging, sender " +
            (twilio.messaging.from.empty()
                 ? "messaging_service_sid " + twilio.messaging.messaging_service_sid
                 : "from " + mask_phone(twilio.messaging.from)));
}

}  // namespace

void check_twilio(const TwilioSettings& twilio, Report& report) {
  auto transport = CurlTransport::create(twilio);
  if (!transport) {
    report.problem(transport_problem(twilio, transport.error()));
    return;
  }
  if (twilio.backend == Backend::Messaging)
    return check_messaging(twilio, **transport, report);
  VerifyClient client(twilio, **transport);
  const auto service = client.fetch_service();
  if (!service) {
    const VerifyFailure& f = service.error();
    if (const auto* t = std::get_if<TransportError>(&f))
      report.problem(transport_problem(twilio, *t));
    else
      report.problem(refusal_problem(twilio, std::get<Refusal>(f)));
    return;
  }
  report.ok("twilio: " + twilio.api_url + " reached through " +
            trust_store(twilio) + " and " + route(twilio) +
            "; credentials accepted (" + credentials(twilio) + ")");
  report.ok("twilio: service " + service->sid + " \"" +
            log_safe(service->friendly_name, 200) + "\", code_length " +
            std::to_string(service->code_length));
}

}  // namespace ptv::admin
