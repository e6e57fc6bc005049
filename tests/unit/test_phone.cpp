// Phone numbers: E.164 validation, normalisation, masking, GECOS fields and
// the lookup over the configured sources.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "fakes.hpp"
#include "phone/gecos_source.hpp"
#include "phone/lookup.hpp"
#include "phone/phone.hpp"
#include "phone/users_source.hpp"
#include "unit_test.hpp"

using ptv::PhoneSource;
using ptv_fakes::Answer;
using ptv_fakes::FakeSource;

namespace {

void test_is_e164_valid(void**) {
  assert_true(ptv::is_e164("+1234567"));          // 7 digits, the minimum
  assert_true(ptv::is_e164("+123456789012345"));  // 15 digits, the maximum
  assert_true(ptv::is_e164("+15551234567"));
  assert_true(ptv::is_e164("+442079460000"));
  assert_true(ptv::is_e164("+9000000"));
}

void test_is_e164_invalid(void**) {
  assert_false(ptv::is_e164("+123456"));           // 6 digits
  assert_false(ptv::is_e164("+1234567890123456"));  // 16 digits
  assert_false(ptv::is_e164("+05551234567"));       // leading zero
  assert_false(ptv::is_e164("+0"));
  assert_false(ptv::is_e164("15551234567"));        // no plus
  assert_false(ptv::is_e164("0015551234567"));
  assert_false(ptv::is_e164("+1555123456a"));       // letter
  assert_false(ptv::is_e164("+1555CALLNOW"));
  assert_false(ptv::is_e164("+1 5551234567"));      // space
  assert_false(ptv::is_e164("+1555123 4567"));
  assert_false(ptv::is_e164("+15551234567 "));
  assert_false(ptv::is_e164(" +15551234567"));
  assert_false(ptv::is_e164("+1-555-123-4567"));
  assert_false(ptv::is_e164("++15551234567"));
  assert_false(ptv::is_e164("+"));
  assert_false(ptv::is_e164(""));
  assert_false(ptv::is_e164(std::string_view("+1555123\0" "4567", 13)));
  assert_false(ptv::is_e164("+\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xd9\xa7"));
}

void test_normalise_phone(void**) {
  assert_each_eq(
      ptv::normalise_phone,
      {"+1 555 123 4567", "+15551234567"},
      {"+1-555-123-4567", "+15551234567"},
      {"+1.555.123.4567", "+15551234567"},
      {"+1 (555) 123-4567", "+15551234567"},
      {"+44\t20 7946 0000", "+442079460000"},
      {"+15551234567", "+15551234567"},
      // Nothing else is changed or removed.
      {"+1/555/1234567", "+1/555/1234567"},
      {"+1555123x4567", "+1555123x4567"},
      {"tel:+15551234567", "tel:+15551234567"},
      {"+1555\n1234567", "+1555\n1234567"},
      // Never adds or guesses a country code.
      {"555 123 4567", "5551234567"},
      {"00 44 20 7946 0000", "00442079460000"},
      {"(0) 20 7946 0000", "02079460000"},
      {"", ""},
      {" - . ( ) ", ""});
  // A number without its country code stays one that is not E.164.
  assert_false(ptv::is_e164(ptv::normalise_phone("555 123 4567")));
}

void test_mask_phone(void**) {
  assert_each_eq(
      ptv::mask_phone,
      {"+15551234567", "+1******4567"},
      // Numbers shorter than ten digits show only their last two.
      {"+1234567", "+1****67"},
      {"+123456789", "+1******89"},
      {"+1234567890", "+1*****7890"},
      {"+123456789012345", "+1**********2345"},
      {"+442079460000", "+4*******0000"});
  // Never the full number.
  assert_not_contains(ptv::mask_phone("+15551234567"), "5551234567");
}

void test_mask_phone_invalid(void**) {
  assert_each_eq(
      ptv::mask_phone,
      {"15551234567", "(invalid)"},
      {"+123456", "(invalid)"},
      {"+1 555 123 4567", "(invalid)"},
      {"+1555123456\x1b", "(invalid)"},
      {"", "(invalid)"},
      {"+", "(invalid)"});
}

void test_gecos_field(void**) {
  const std::string g = "Alice Example,Room 12,+1 555 123 4567,+1 555 765 4321,other";
  assert_str_eq(ptv::gecos_field(g, 1), "Alice Example");
  assert_str_eq(ptv::gecos_field(g, 2), "Room 12");
  assert_str_eq(ptv::gecos_field(g, 3), "+1 555 123 4567");
  assert_str_eq(ptv::gecos_field(g, 4), "+1 555 765 4321");
  assert_str_eq(ptv::gecos_field(g, 5), "other");
}

void test_gecos_field_missing(void**) {
  assert_str_eq(ptv::gecos_field("Alice", 1), "Alice");
  assert_str_eq(ptv::gecos_field("Alice", 2), "");
  assert_str_eq(ptv::gecos_field("Alice,Room", 3), "");
  assert_str_eq(ptv::gecos_field("a,b,c,d,e", 6), "");
  assert_str_eq(ptv::gecos_field("a,,c", 2), "");
  assert_str_eq(ptv::gecos_field("a,b,", 3), "");
  assert_str_eq(ptv::gecos_field("", 1), "");
  assert_str_eq(ptv::gecos_field("", 3), "");
  assert_str_eq(ptv::gecos_field("a,b,c", 0), "");
  assert_str_eq(ptv::gecos_field("a,b,c", -1), "");
}

void test_gecos_field_trim(void**) {
  assert_str_eq(ptv::gecos_field("a,b,  +15551234567 \t,d", 3), "+15551234567");
  assert_str_eq(ptv::gecos_field("\t x y \t", 1), "x y");
  assert_str_eq(ptv::gecos_field("a, \t ,c", 2), "");
}

// The accounts' GECOS strings, counting how often the gecos source is
// asked.
struct FakePasswd {
  std::map<std::string, std::string> gecos;
  int calls = 0;
};

// The gecos source over FakePasswd: the real GecosSource, asked through a
// counter.
class CountingGecos final : public ptv::NumberSource {
 public:
  CountingGecos(FakePasswd& pw, int field) : pw_(pw), field_(field) {}
  std::string_view name() const override { return "gecos"; }
  ptv::SourceValues values(const std::string& account) override {
    ++pw_.calls;
    auto it = pw_.gecos.find(account);
    if (it == pw_.gecos.end()) return std::vector<std::string>{};
    return ptv::GecosSource(it->second, field_).values(account);
  }

 private:
  FakePasswd& pw_;
  int field_;
};

// The sources each test hands the lookup: FakePasswd for GECOS, fakes for
// the directory and the command (null: that source is not listed here).
struct Readers {
  FakePasswd* pw = nullptr;
  FakeSource* ldap = nullptr;
  FakeSource* command = nullptr;
};

// The lookup's answer in one struct, as the cases below read it.
struct Lookup {
  enum class Kind { Found, NotFound, Invalid, Unavailable, Failed, Misconfigured, Internal };
  Kind kind = Kind::NotFound;
  std::string number, source, problem;
};
using PhoneLookup = Lookup;

// The real lookup over the configured sources, in the configured order.
Lookup lookup(const ptv::Config& c, const std::string& user, const Readers& r) {
  ptv::UsersSource users(c.phone.users);
  CountingGecos gecos(*r.pw, c.phone.gecos_field);
  std::vector<ptv::NumberSource*> sources;
  for (PhoneSource s : c.phone.sources) {
    if (s == PhoneSource::Users) sources.push_back(&users);
    if (s == PhoneSource::Gecos) sources.push_back(&gecos);
    if (s == PhoneSource::Ldap) sources.push_back(r.ldap);
    if (s == PhoneSource::Command) sources.push_back(r.command);
  }
  const ptv::PhoneLookup found = ptv::lookup_phone(sources, user);
  Lookup out;
  if (found && found->has_value()) {
    out.kind = Lookup::Kind::Found;
    out.number = (*found)->number;
    out.source = (*found)->source;
  } else if (!found) {
    using E = ptv::PhoneErrorKind;
    using K = Lookup::Kind;
    const E e = found.error().kind;
    out.kind = e == E::Invalid         ? K::Invalid
               : e == E::Unavailable   ? K::Unavailable
               : e == E::Failed        ? K::Failed
               : e == E::Misconfigured ? K::Misconfigured
                                       : K::Internal;
    out.source = found.error().source;
    out.problem = found.error().detail;
  }
  return out;
}

// The lookup found `number` in source `source`.
void check_found(const Lookup& r, const char* number, const char* source,
                 const char* file, int line) {
  if (r.kind == Lookup::Kind::Found && r.number == number && r.source == source)
    return;
  print_error("lookup: kind %d, number \"%s\" from \"%s\" (%s); expected "
              "\"%s\" found in \"%s\"\n",
              static_cast<int>(r.kind), r.number.c_str(), r.source.c_str(),
              r.problem.c_str(), number, source);
  _fail(file, line);
}
#define assert_found(r, number, source) \
  check_found((r), (number), (source), __FILE__, __LINE__)

ptv::Config config_with(std::vector<PhoneSource> sources) {
  ptv::Config c;
  c.phone.sources = std::move(sources);
  c.phone.users = {{"alice", "+15551234567"}, {"carol", "+15550000001"}};
  return c;
}

// The lookup of `user` over config_with(sources), GECOS strings from `pw`.
Lookup lookup_in(std::vector<PhoneSource> sources, const std::string& user,
                 FakePasswd& pw) {
  return lookup(config_with(std::move(sources)), user, {&pw});
}

void test_lookup_users_source(void**) {
  FakePasswd pw;
  const ptv::Config c = config_with({PhoneSource::Users});
  const PhoneLookup r = lookup(c, "alice", {&pw});
  assert_found(r, "+15551234567", "users");
  assert_int_equal(pw.calls, 0);
  const PhoneLookup r2 = lookup(c, "carol", {&pw});
  assert_str_eq(r2.number, "+15550000001");
}

void test_lookup_gecos_source(void**) {
  FakePasswd pw{.gecos = {{"dave", "Dave,Room 1,+1 (555) 222-3333,"}}};
  ptv::Config c = config_with({PhoneSource::Users, PhoneSource::Gecos});
  PhoneLookup r = lookup(c, "dave", {&pw});
  assert_found(r, "+15552223333", "gecos");
  assert_int_equal(pw.calls, 1);
  // The configured field is the one read.
  c.phone.gecos_field = 2;
  r = lookup(c, "dave", {&pw});
  assert_true(r.kind == PhoneLookup::Kind::Invalid);
  pw.gecos["dave"] = "Dave,+15554445555,+1 (555) 222-3333";
  r = lookup(c, "dave", {&pw});
  assert_str_eq(r.number, "+15554445555");
}

void test_lookup_order_matters(void**) {
  FakePasswd pw{.gecos = {{"alice", "Alice,,+15559998888"}}};
  PhoneLookup r = lookup_in({PhoneSource::Users, PhoneSource::Gecos}, "alice", pw);
  assert_found(r, "+15551234567", "users");

  r = lookup_in({PhoneSource::Gecos, PhoneSource::Users}, "alice", pw);
  assert_found(r, "+15559998888", "gecos");
}

void test_lookup_falls_through_empty_source(void**) {
  FakePasswd pw{.gecos = {{"alice", "Alice,Room 1,,home"}}};  // field 3 empty
  const PhoneLookup r =
      lookup_in({PhoneSource::Gecos, PhoneSource::Users}, "alice", pw);
  assert_true(r.kind == PhoneLookup::Kind::Found);
  assert_str_eq(r.source, "users");
}

void test_lookup_not_found(void**) {
  FakePasswd pw{.gecos = {{"erin", "Erin"}}};
  PhoneLookup r = lookup_in({PhoneSource::Users, PhoneSource::Gecos}, "erin", pw);
  assert_true(r.kind == PhoneLookup::Kind::NotFound);
  assert_true(r.number.empty());
  // Users only: the GECOS field is not consulted.
  pw.gecos["erin"] = "Erin,,+15551112222";
  r = lookup_in({PhoneSource::Users}, "erin", pw);
  assert_true(r.kind == PhoneLookup::Kind::NotFound);
  assert_int_equal(pw.calls, 1);
}

void test_lookup_unknown_user(void**) {
  FakePasswd pw;
  const PhoneLookup r =
      lookup_in({PhoneSource::Users, PhoneSource::Gecos}, "nobody-here", pw);
  assert_true(r.kind == PhoneLookup::Kind::NotFound);
  assert_int_equal(pw.calls, 1);
}

void test_lookup_invalid_not_skipped(void**) {
  FakePasswd pw{.gecos = {{"alice", "Alice,,call me maybe"}}};
  // GECOS first: its garbage must not fall through to the users entry.
  PhoneLookup r = lookup_in({PhoneSource::Gecos, PhoneSource::Users}, "alice", pw);
  assert_true(r.kind == PhoneLookup::Kind::Invalid);
  assert_true(r.number.empty());
  assert_str_eq(r.source, "gecos");
  assert_contains(r.problem, "gecos");
  assert_not_contains(r.problem, "call me");
  for (const char* bad : {"5551234567", "+05551234567", "+1555", "+1 555 CALL",
                          "-", "+1555123456x", "+1555123456789012"}) {
    pw.gecos["alice"] = std::string("Alice,,") + bad;
    r = lookup_in({PhoneSource::Gecos, PhoneSource::Users}, "alice", pw);
    assert_true(r.kind == PhoneLookup::Kind::Invalid);
  }
}

void test_lookup_invalid_users_entry(void**) {
  FakePasswd pw{.gecos = {{"frank", "Frank,,+15557776666"}}};
  ptv::Config c = config_with({PhoneSource::Users, PhoneSource::Gecos});
  c.phone.users.emplace_back("frank", "5557776666");
  const PhoneLookup r = lookup(c, "frank", {&pw});
  assert_true(r.kind == PhoneLookup::Kind::Invalid);
  assert_str_eq(r.source, "users");
  assert_not_contains(r.problem, "5557776666");
}

// ---------------------------------------------- directory and command sources

void test_lookup_ldap_first_valid_value_wins(void**) {
  FakePasswd pw;
  FakeSource ldap("ldap", Answer{Answer::Kind::Values, {"not a number", "+44 7700 900003",
                                          "+15550100001"}, {}});
  const ptv::Config c = config_with({PhoneSource::Ldap, PhoneSource::Users});
  PhoneLookup r = lookup(c, "alice", {&pw, &ldap, nullptr});
  assert_found(r, "+447700900003", "ldap");
  assert_str_eq(ldap.asked, "alice");
  // Only invalid values: Invalid, and the users list is not consulted.
  ldap.answer.values = {"555-0104", "call me"};
  r = lookup(c, "alice", {&pw, &ldap, nullptr});
  assert_true(r.kind == PhoneLookup::Kind::Invalid);
  assert_str_eq(r.source, "ldap");
  assert_contains(r.problem, "2 values");
  assert_not_contains(r.problem, "555");
}

void test_lookup_source_not_found_falls_through(void**) {
  FakePasswd pw;
  FakeSource ldap("ldap", Answer{Answer::Kind::NotFound, {}, "no entry"});
  FakeSource command("command", Answer{Answer::Kind::Values, {"+15550100077"}, {}});
  const ptv::Config c = config_with(
      {PhoneSource::Ldap, PhoneSource::Command, PhoneSource::Users});
  PhoneLookup r =
      lookup(c, "alice", {&pw, &ldap, &command});
  assert_found(r, "+15550100077", "command");
  command.answer = {Answer::Kind::NotFound, {}, "printed nothing"};
  r = lookup(c, "alice", {&pw, &ldap, &command});
  assert_true(r.kind == PhoneLookup::Kind::Found);
  assert_str_eq(r.source, "users");
  r = lookup(c, "zoe", {&pw, &ldap, &command});
  assert_true(r.kind == PhoneLookup::Kind::NotFound);
}

void test_lookup_failing_source_stops_the_lookup(void**) {
  FakePasswd pw;
  // alice has a number in the users list, after the directory; a failing
  // directory must not hand the decision to that later source.
  const ptv::Config c = config_with({PhoneSource::Ldap, PhoneSource::Users});
  for (auto [kind, want] :
       {std::pair{Answer::Kind::Unavailable, PhoneLookup::Kind::Unavailable},
        std::pair{Answer::Kind::Failed, PhoneLookup::Kind::Failed},
        std::pair{Answer::Kind::Misconfigured, PhoneLookup::Kind::Misconfigured}}) {
    FakeSource ldap("ldap", Answer{kind, {}, "what went wrong"});
    const PhoneLookup r = lookup(c, "alice", {&pw, &ldap, nullptr});
    assert_true(r.kind == want);
    assert_str_eq(r.source, "ldap");
    assert_str_eq(r.problem, "what went wrong");
    assert_true(r.number.empty());
  }
  // The same source answering Values lets the lookup succeed.
  FakeSource ok("ldap", Answer{Answer::Kind::Values, {"+15550100001"}, {}});
  assert_true(lookup(c, "alice", {&pw, &ok, nullptr}).kind ==
              PhoneLookup::Kind::Found);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_is_e164_valid),
      cmocka_unit_test(test_lookup_ldap_first_valid_value_wins),
      cmocka_unit_test(test_lookup_source_not_found_falls_through),
      cmocka_unit_test(test_lookup_failing_source_stops_the_lookup),
      cmocka_unit_test(test_is_e164_invalid),
      cmocka_unit_test(test_normalise_phone),
      cmocka_unit_test(test_mask_phone),
      cmocka_unit_test(test_mask_phone_invalid),
      cmocka_unit_test(test_gecos_field),
      cmocka_unit_test(test_gecos_field_missing),
      cmocka_unit_test(test_gecos_field_trim),
      cmocka_unit_test(test_lookup_users_source),
      cmocka_unit_test(test_lookup_gecos_source),
      cmocka_unit_test(test_lookup_order_matters),
      cmocka_unit_test(test_lookup_falls_through_empty_source),
      cmocka_unit_test(test_lookup_not_found),
      cmocka_unit_test(test_lookup_unknown_user),
      cmocka_unit_test(test_lookup_invalid_not_skipped),
      cmocka_unit_test(test_lookup_invalid_users_entry),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
