#include "twilio/service_rate_limits.hpp"

#include <algorithm>

#include "twilio/form_encoding.hpp"

namespace ptv {

namespace {

template <typename T, typename... Extra>
std::expected<T, VerifyFailure> answer(
    std::expected<HttpResponse, TransportError> response,
    std::expected<T, Refusal> (*interpret)(const HttpResponse&, Extra...),
    Extra... extra) {
  if (!response) return std::unexpected(VerifyFailure(std::move(response.error())));
  auto a = interpret(*response, extra...);
  if (!a) return std::unexpected(VerifyFailure(std::move(a.error())));
  if constexpr (std::is_void_v<T>) {
    return {};
  } else {
    return std::move(*a);
  }
}

Secret bucket_form(const RateLimitBucket& b) {
  const std::string max = std::to_string(b.max);
  const std::string interval = std::to_string(b.interval_s);
  return form_encode({{"Max", max}, {"Interval", interval}});
}

}  // namespace

std::string ServiceRateLimits::limits_url() const {
  return settings_.api_url + "/v2/Services/" + url_encode(settings_.service_sid) +
         "/RateLimits";
}

std::expected<std::vector<ServiceRateLimit>, VerifyFailure> ServiceRateLimits::fetch() {
  auto limits = answer<std::vector<ServiceRateLimit>>(
      http_.get(limits_url() + "?PageSize=1000", budget()), interpret_rate_limits);
  if (!limits) return limits;
  for (ServiceRateLimit& l : *limits) {
    auto buckets = answer<std::vector<ServiceBucket>>(
        http_.get(limits_url() + "/" + url_encode(l.sid) + "/Buckets?PageSize=1000",
                  budget()),
        interpret_buckets);
    if (!buckets) return std::unexpected(std::move(buckets.error()));
    l.buckets = std::move(*buckets);
  }
  return limits;
}

std::expected<std::string, VerifyFailure> ServiceRateLimits::create_limit(
    const std::string& unique_name) {
  return answer<std::string, std::string_view>(
      http_.post_form(limits_url(), form_encode({{"UniqueName", unique_name}}), budget()),
      interpret_resource, "RK");
}

std::expected<std::string, VerifyFailure> ServiceRateLimits::create_bucket(
    const std::string& limit_sid, const RateLimitBucket& b) {
  return answer<std::string, std::string_view>(
      http_.post_form(limits_url() + "/" + url_encode(limit_sid) + "/Buckets",
                      bucket_form(b), budget()),
      interpret_resource, "BL");
}

std::expected<void, VerifyFailure> ServiceRateLimits::update_bucket(
    const std::string& limit_sid, const std::string& bucket_sid,
    const RateLimitBucket& b) {
  auto updated = answer<std::string, std::string_view>(
      http_.post_form(limits_url() + "/" + url_encode(limit_sid) + "/Buckets/" +
                          url_encode(bucket_sid),
                      bucket_form(b), budget()),
      interpret_resource, "BL");
  if (!updated) return std::unexpected(std::move(updated.error()));
  return {};
}

std::expected<void, VerifyFailure> ServiceRateLimits::delete_bucket(
    const std::string& limit_sid, const std::string& bucket_sid) {
  return answer<void>(http_.del(limits_url() + "/" + url_encode(limit_sid) +
                                    "/Buckets/" + url_encode(bucket_sid),
                                budget()),
                      interpret_delete);
}

std::expected<void, VerifyFailure> ServiceRateLimits::delete_limit(
    const std::string& limit_sid) {
  return answer<void>(http_.del(limits_url() + "/" + url_encode(limit_sid), budget()),
                      interpret_delete);
}

std::string describe(const RateLimitChange& c) {
  using K = RateLimitChange::Kind;
  const auto text = [](const RateLimitBucket& b) {
    return "max " + std::to_string(b.max) + " per " + std::to_string(b.interval_s) + " s";
  };
  const std::string limit = "rate limit \"" + c.limit_name + "\"";
  switch (c.kind) {
    case K::CreateLimit:
      return limit + " is missing on the service";
    case K::CreateBucket:
      return limit + ": bucket " + text(c.bucket) + " is missing on the service";
    case K::UpdateBucket:
      return limit + ": bucket " + c.bucket_sid + " is " + text(c.was) +
             " on the service, " + text(c.bucket) + " in the configuration";
    case K::DeleteBucket:
      return limit + ": bucket " + c.bucket_sid + " (" + text(c.was) +
             ") is on the service but not in the configuration";
    case K::DeleteLimit:
      return limit + " (" + c.limit_sid +
             ") is on the service but not in the configuration";
  }
  return limit;
}

namespace {

using Kind = RateLimitChange::Kind;

// The bucket changes of one declared rate limit against what the service
// has of it (nothing when it is to be made).
void plan_buckets(const RateLimit& want, const ServiceRateLimit* have,
                  std::vector<RateLimitChange>& out) {
  std::vector<ServiceBucket> left = have != nullptr ? have->buckets
                                                    : std::vector<ServiceBucket>{};
  const std::string sid = have != nullptr ? have->sid : std::string();
  std::vector<RateLimitBucket> unmatched;
  for (const RateLimitBucket& b : want.buckets) {
    const auto same = std::find_if(left.begin(), left.end(), [&b](const auto& x) {
      return x.interval_s == b.interval_s;
    });
    if (same == left.end()) {
      unmatched.push_back(b);
      continue;
    }
    if (same->max != b.max)
      out.push_back({Kind::UpdateBucket, want.unique_name, sid, same->sid, b,
                     {same->max, same->interval_s}});
    left.erase(same);
  }
  for (const RateLimitBucket& b : unmatched) {
    if (left.empty()) {
      out.push_back({Kind::CreateBucket, want.unique_name, sid, {}, b, {}});
      continue;
    }
    const ServiceBucket& x = left.front();
    out.push_back({Kind::UpdateBucket, want.unique_name, sid, x.sid, b,
                   {x.max, x.interval_s}});
    left.erase(left.begin());
  }
  for (const ServiceBucket& x : left)
    out.push_back({Kind::DeleteBucket, want.unique_name, sid, x.sid, {},
                   {x.max, x.interval_s}});
}

}  // namespace

std::vector<RateLimitChange> plan_rate_limits(
    const RateLimitSettings& declared, const std::vector<ServiceRateLimit>& service) {
  std::vector<RateLimitChange> out;
  std::vector<std::string> names;
  for (const RateLimit* want : {&declared.account, &declared.client_ip}) {
    if (!want->declared()) continue;
    names.push_back(want->unique_name);
    const auto have = std::find_if(service.begin(), service.end(), [want](const auto& l) {
      return l.unique_name == want->unique_name;
    });
    if (have == service.end())
      out.push_back({Kind::CreateLimit, want->unique_name, {}, {}, {}, {}});
    plan_buckets(*want, have == service.end() ? nullptr : &*have, out);
  }
  for (const ServiceRateLimit& l : service)
    if (std::find(names.begin(), names.end(), l.unique_name) == names.end())
      out.push_back({Kind::DeleteLimit, l.unique_name, l.sid, {}, {}, {}});
  return out;
}

}  // namespace ptv
