// check (b): Twilio through the configured trust store and proxy, with the
// configured credentials and service: GET of the Service, which sends
// nothing and costs nothing.
#include <variant>

#include "admin/setup.hpp"
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

// The setting to fix for a transport failure.
std::string transport_problem(const TwilioSettings& t, const TransportError& e) {
  const std::string what = std::string(describe(e.kind)) + ": " + e.detail;
  switch (e.kind) {
    case TransportErrorKind::Tls:
      return "twilio: TLS with " + t.api_url + " failed (" + what +
             "); check twilio.ca_file (now " + trust_store(t) + ")";
    case TransportErrorKind::Unreachable:
    case TransportErrorKind::Timeout:
    case TransportErrorKind::Protocol:
      return "twilio: cannot reach " + t.api_url + " (" + what +
             "); check twilio.api_url and twilio.proxy (now " + route(t) + ")";
    default:
      return "twilio: request to " + t.api_url + " failed (" + what + ")";
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

}  // namespace

void check_twilio(const TwilioSettings& twilio, Report& report) {
  auto transport = CurlTransport::create(twilio);
  if (!transport) {
    report.problem(transport_problem(twilio, transport.error()));
    return;
  }
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
            "; credentials accepted (" +
            (twilio.api_key_sid.empty() ? "account_sid " + twilio.account_sid
                                        : "api_key_sid " + twilio.api_key_sid) +
            ")");
  report.ok("twilio: service " + service->sid + " \"" +
            log_safe(service->friendly_name, 200) + "\", code_length " +
            std::to_string(service->code_length));
}

}  // namespace ptv::admin
