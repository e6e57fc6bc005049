// rate-limits: the Verify service's rate limits and buckets next to those
// rate_limits = { ... } declares; with --apply the missing ones are made
// and differing buckets updated, with --prune what is not declared is
// deleted. check's comparison (check_rate_limits) is the same plan.
#include <map>
#include <variant>

#include "admin/setup.hpp"
#include "net/curl_transport.hpp"
#include "twilio/service_rate_limits.hpp"

namespace ptv::admin {

namespace {

std::string bucket_text(long max, long interval_s) {
  return "max " + std::to_string(max) + " per " + std::to_string(interval_s) + " s";
}

// The service's rate limits, or nothing (the problem reported).
std::optional<std::vector<ServiceRateLimit>> fetch(const TwilioSettings& twilio,
                                                   Report& report) {
  auto transport = CurlTransport::create(twilio);
  if (!transport) {
    report.problem("rate_limits: cannot set up HTTP: " + transport.error().detail);
    return std::nullopt;
  }
  auto limits = ServiceRateLimits(twilio, **transport).fetch();
  if (!limits) {
    report.problem("rate_limits: reading the service's rate limits failed: " +
                   describe(limits.error()));
    return std::nullopt;
  }
  return std::move(*limits);
}

void show(const RateLimitSettings& declared,
          const std::vector<ServiceRateLimit>& service, Report& report) {
  for (const ServiceRateLimit& l : service) {
    report.info("service: rate limit \"" + log_safe(l.unique_name, 100) + "\" " + l.sid);
    for (const ServiceBucket& b : l.buckets)
      report.info("service:   bucket " + b.sid + " " + bucket_text(b.max, b.interval_s));
  }
  if (service.empty()) report.info("service: no rate limits");
  for (const char* part : {"account", "client_ip"}) {
    const RateLimit& l = part[0] == 'a' ? declared.account : declared.client_ip;
    if (!l.declared()) continue;
    report.info(std::string("configuration: rate_limits.") + part + " \"" +
                l.unique_name + "\"");
    for (const RateLimitBucket& b : l.buckets)
      report.info("configuration:   bucket " + bucket_text(b.max, b.interval_s));
  }
  if (!declared.account.declared() && !declared.client_ip.declared())
    report.info("configuration: no rate_limits");
}

// Makes one change; false (reported) when Twilio refused it.
bool apply(ServiceRateLimits& api, const RateLimitChange& c,
           std::map<std::string, std::string>& sids, Report& report) {
  using K = RateLimitChange::Kind;
  const std::string sid = c.limit_sid.empty() ? sids[c.limit_name] : c.limit_sid;
  std::expected<void, VerifyFailure> done;
  if (c.kind == K::CreateLimit) {
    auto made = api.create_limit(c.limit_name);
    if (made) sids[c.limit_name] = *made;
    done = made ? std::expected<void, VerifyFailure>()
                : std::unexpected(std::move(made.error()));
  } else if (c.kind == K::CreateBucket) {
    auto made = api.create_bucket(sid, c.bucket);
    done = made ? std::expected<void, VerifyFailure>()
                : std::unexpected(std::move(made.error()));
  } else if (c.kind == K::UpdateBucket) {
    done = api.update_bucket(sid, c.bucket_sid, c.bucket);
  } else if (c.kind == K::DeleteBucket) {
    done = api.delete_bucket(sid, c.bucket_sid);
  } else {
    done = api.delete_limit(sid);
  }
  if (!done) {
    report.problem("rate_limits: " + describe(c) + "; the change failed: " +
                   describe(done.error()));
    return false;
  }
  report.ok("rate_limits: " + describe(c) + ": done");
  return true;
}

bool is_prune(const RateLimitChange& c) {
  return c.kind == RateLimitChange::Kind::DeleteBucket ||
         c.kind == RateLimitChange::Kind::DeleteLimit;
}

}  // namespace

void check_rate_limits(const TwilioSettings& twilio, Report& report) {
  const RateLimitSettings& declared = twilio.rate_limits;
  if (!declared.account.declared() && !declared.client_ip.declared()) return;
  const auto service = fetch(twilio, report);
  if (!service) return;
  bool differs = false;
  for (const RateLimitChange& c : plan_rate_limits(declared, *service)) {
    if (c.kind == RateLimitChange::Kind::DeleteLimit) {
      report.warning("rate_limits: " + describe(c) + " (the module never sends its key)");
      continue;
    }
    differs = true;
    report.problem("rate_limits: " + describe(c) + "; run twilio-verify-admin "
                   "rate-limits --apply" + (is_prune(c) ? " --prune" : ""));
  }
  if (!differs)
    report.ok("rate_limits: the service holds the declared rate limits and buckets");
}

int run_rate_limits(const Options& options) {
  Report report;
  const auto config = load_setup(options.conf, report);
  if (!config) return report.exit_status();
  const TwilioSettings& twilio = config->twilio;
  const auto service = fetch(twilio, report);
  if (!service) return report.exit_status();
  show(twilio.rate_limits, *service, report);
  const auto changes = plan_rate_limits(twilio.rate_limits, *service);
  auto transport = CurlTransport::create(twilio);
  if (!transport) return report.exit_status();
  ServiceRateLimits api(twilio, **transport);
  std::map<std::string, std::string> sids;
  int left = 0;
  for (const RateLimitChange& c : changes) {
    const bool allowed = is_prune(c) ? options.prune : options.apply;
    if (allowed) {
      if (!apply(api, c, sids, report)) return report.exit_status();
      continue;
    }
    ++left;
    report.info("differs: " + describe(c) + (is_prune(c) ? " (--prune deletes it)"
                                                         : " (--apply makes it)"));
  }
  if (changes.empty()) report.ok("rate_limits: the service holds what is declared");
  else if (left == 0) report.ok("rate_limits: the service now holds what is declared");
  return report.exit_status();
}

}  // namespace ptv::admin
