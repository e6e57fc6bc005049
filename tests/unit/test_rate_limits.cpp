// The RateLimits field of a create: the account's pseudonym (HMAC-SHA-256
// under the account's secret, checked against vectors computed with
// Python's hmac module), the JSON object built from the declared rate
// limits and PAM_RHOST; and the plan that brings the service's rate limits
// to the configuration.
#include <string>
#include <vector>

#include "twilio/rate_limits.hpp"
#include "twilio/service_rate_limits.hpp"
#include "unit_test.hpp"

namespace {

using ptv::RateLimitChange;
using Kind = ptv::RateLimitChange::Kind;

const std::string kToken = "t0kenVALUEs3cret_4f2a9c81e7d3b6a5";
const std::string kKeySecret = "k3ySECRETvalue_9a8b7c6d5e4f3a2b1c";
// python3 -c "import hmac,hashlib; print(hmac.new(b'<secret>', b'alice',
//             hashlib.sha256).hexdigest()[:32])"
const std::string kAliceUnderToken = "e50bfc7ce7cb9a3705c7e45638203690";
const std::string kAliceUnderKey = "c91b87fbc0761a7e6874529d25c7d9b9";

ptv::TwilioSettings settings(bool account, bool client_ip) {
  ptv::TwilioSettings t;
  t.auth_token = ptv::Secret(kToken);
  if (account) t.rate_limits.account = {"pam_account", {{10, 3600}}};
  if (client_ip) t.rate_limits.client_ip = {"pam_client_ip", {{30, 3600}, {5, 60}}};
  return t;
}

void test_pseudonym_vectors(void**) {
  ptv::TwilioSettings t = settings(true, false);
  assert_str_eq(ptv::account_pseudonym(t, "alice"), kAliceUnderToken);
  // With an API key, its secret is the key.
  t.api_key_sid = "SKfedcba9876543210fedcba9876543210";
  t.api_key_secret = ptv::Secret(kKeySecret);
  assert_str_eq(ptv::account_pseudonym(t, "alice"), kAliceUnderKey);
  assert_int_equal(ptv::account_pseudonym(t, "bob").size(), 32);
  assert_true(ptv::account_pseudonym(t, "bob") != kAliceUnderKey);
}

void test_json_both_keys(void**) {
  const auto t = settings(true, true);
  assert_str_eq(ptv::rate_limits_json(t, "alice", "192.0.2.7"),
                "{\"pam_account\":\"" + kAliceUnderToken +
                    "\",\"pam_client_ip\":\"192.0.2.7\"}");
  // The address in its canonical text.
  assert_str_eq(ptv::rate_limits_json(t, "alice", "::ffff:192.0.2.7"),
                "{\"pam_account\":\"" + kAliceUnderToken +
                    "\",\"pam_client_ip\":\"192.0.2.7\"}");
  assert_str_eq(ptv::rate_limits_json(t, "alice", "2001:DB8:0:0::1"),
                "{\"pam_account\":\"" + kAliceUnderToken +
                    "\",\"pam_client_ip\":\"2001:db8::1\"}");
}

// A host name, no PAM_RHOST, or a zone: no client key; never the name.
void test_json_no_client_key(void**) {
  const auto t = settings(true, true);
  const std::string only_account = "{\"pam_account\":\"" + kAliceUnderToken + "\"}";
  assert_str_eq(ptv::rate_limits_json(t, "alice", "host.example.com"), only_account);
  assert_str_eq(ptv::rate_limits_json(t, "alice", ""), only_account);
  assert_str_eq(ptv::rate_limits_json(t, "alice", "fe80::1%eth0"), only_account);
  const std::string json = ptv::rate_limits_json(t, "alice", "alice.example.com");
  assert_true(json.find("alice") == std::string::npos);
}

void test_json_declared_only(void**) {
  assert_str_eq(ptv::rate_limits_json(settings(false, false), "alice", "192.0.2.7"), "");
  assert_str_eq(ptv::rate_limits_json(settings(false, true), "alice", "192.0.2.7"),
                "{\"pam_client_ip\":\"192.0.2.7\"}");
  assert_str_eq(ptv::rate_limits_json(settings(false, true), "alice", "gw.example"), "");
}

ptv::ServiceRateLimit service_limit(const std::string& name, const std::string& sid,
                                    std::vector<ptv::ServiceBucket> buckets) {
  return {sid, name, std::move(buckets)};
}

const std::string kRk(std::string("RK") + std::string(32, '1'));
const std::string kBl1(std::string("BL") + std::string(32, '1'));
const std::string kBl2(std::string("BL") + std::string(32, '2'));

void test_plan_from_nothing(void**) {
  const auto changes = ptv::plan_rate_limits(settings(true, true).rate_limits, {});
  assert_int_equal(changes.size(), 5);
  assert_int_equal(static_cast<int>(changes[0].kind), static_cast<int>(Kind::CreateLimit));
  assert_str_eq(changes[0].limit_name, "pam_account");
  assert_int_equal(static_cast<int>(changes[1].kind), static_cast<int>(Kind::CreateBucket));
  assert_int_equal(changes[1].bucket.max, 10);
  assert_str_eq(changes[2].limit_name, "pam_client_ip");
  assert_int_equal(changes[4].bucket.interval_s, 60);
}

void test_plan_matches_updates_prunes(void**) {
  const auto declared = settings(true, false).rate_limits;
  // The same: nothing to do.
  assert_int_equal(ptv::plan_rate_limits(declared, {service_limit("pam_account", kRk,
                                                                  {{kBl1, 10, 3600}})})
                       .size(),
                   0);
  // Another max: updated. Another interval: updated too.
  for (const ptv::ServiceBucket& b : {ptv::ServiceBucket{kBl1, 3, 3600},
                                      ptv::ServiceBucket{kBl1, 10, 60}}) {
    const auto c = ptv::plan_rate_limits(declared, {service_limit("pam_account", kRk, {b})});
    assert_int_equal(c.size(), 1);
    assert_int_equal(static_cast<int>(c[0].kind), static_cast<int>(Kind::UpdateBucket));
    assert_str_eq(c[0].bucket_sid, kBl1);
    assert_str_eq(c[0].limit_sid, kRk);
    assert_int_equal(c[0].bucket.max, 10);
    assert_int_equal(c[0].bucket.interval_s, 3600);
  }
  // A bucket and a rate limit not declared: deletions (for --prune).
  const auto c = ptv::plan_rate_limits(
      declared, {service_limit("pam_account", kRk, {{kBl1, 10, 3600}, {kBl2, 1, 60}}),
                 service_limit("other", kRk, {})});
  assert_int_equal(c.size(), 2);
  assert_int_equal(static_cast<int>(c[0].kind), static_cast<int>(Kind::DeleteBucket));
  assert_str_eq(c[0].bucket_sid, kBl2);
  assert_int_equal(static_cast<int>(c[1].kind), static_cast<int>(Kind::DeleteLimit));
  assert_str_eq(c[1].limit_name, "other");
  assert_str_eq(ptv::describe(c[0]),
                "rate limit \"pam_account\": bucket " + kBl2 +
                    " (max 1 per 60 s) is on the service but not in the configuration");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pseudonym_vectors),
      cmocka_unit_test(test_json_both_keys),
      cmocka_unit_test(test_json_no_client_key),
      cmocka_unit_test(test_json_declared_only),
      cmocka_unit_test(test_plan_from_nothing),
      cmocka_unit_test(test_plan_matches_updates_prunes),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
