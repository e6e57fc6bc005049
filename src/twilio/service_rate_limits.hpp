// The Verify service's rate limits and buckets, read and changed through
// the API (twilio-verify-admin rate-limits and check), and the changes that
// make the service hold what rate_limits = { ... } declares.
#pragma once

#include <expected>
#include <string>
#include <vector>

#include "net/http_transport.hpp"
#include "twilio/settings.hpp"
#include "twilio/verify_client.hpp"
#include "twilio/verify_response.hpp"

namespace ptv {

// The requests, each within timeout_ms and never retried.
class ServiceRateLimits {
 public:
  ServiceRateLimits(const TwilioSettings& settings, HttpTransport& http)
      : settings_(settings), http_(http) {}
  // GET .../RateLimits and, for each, GET .../Buckets (one page of 1000).
  std::expected<std::vector<ServiceRateLimit>, VerifyFailure> fetch();
  // POST .../RateLimits UniqueName: the new rate limit's SID.
  std::expected<std::string, VerifyFailure> create_limit(const std::string& unique_name);
  // POST .../RateLimits/{sid}/Buckets Max, Interval: the bucket's SID.
  std::expected<std::string, VerifyFailure> create_bucket(const std::string& limit_sid,
                                                          const RateLimitBucket& b);
  // POST .../RateLimits/{sid}/Buckets/{sid} Max, Interval.
  std::expected<void, VerifyFailure> update_bucket(const std::string& limit_sid,
                                                   const std::string& bucket_sid,
                                                   const RateLimitBucket& b);
  // DELETE .../RateLimits/{sid}/Buckets/{sid}, DELETE .../RateLimits/{sid}.
  std::expected<void, VerifyFailure> delete_bucket(const std::string& limit_sid,
                                                   const std::string& bucket_sid);
  std::expected<void, VerifyFailure> delete_limit(const std::string& limit_sid);

 private:
  [[nodiscard]] std::string limits_url() const;
  [[nodiscard]] std::chrono::milliseconds budget() const {
    return std::chrono::milliseconds{settings_.timeout_ms};
  }
  const TwilioSettings& settings_;
  HttpTransport& http_;
};

// One change that brings the service to the configuration.
struct RateLimitChange {
  enum class Kind { CreateLimit, CreateBucket, UpdateBucket, DeleteBucket, DeleteLimit };
  Kind kind = Kind::CreateLimit;
  std::string limit_name;  // the rate limit's unique name
  std::string limit_sid;   // empty when the rate limit is still to be made
  std::string bucket_sid;  // UpdateBucket, DeleteBucket
  RateLimitBucket bucket;  // CreateBucket, UpdateBucket: the declared one
  RateLimitBucket was;     // UpdateBucket, DeleteBucket: the service's
};
std::string describe(const RateLimitChange& c);

// The changes, in the order they can be made: declared rate limits that
// are missing, their buckets (a bucket is matched by its interval, then a
// remaining one is updated to a remaining declaration), buckets the
// configuration does not declare, then rate limits it does not name
// (the last two only with --prune). Empty: the service holds what is
// declared.
std::vector<RateLimitChange> plan_rate_limits(const RateLimitSettings& declared,
                                              const std::vector<ServiceRateLimit>& service);

}  // namespace ptv
