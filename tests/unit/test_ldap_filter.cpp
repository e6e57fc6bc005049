// The LDAP search filter: RFC 4515 escaping of the user name, the checks on
// the configured template and the substitution of %u.
#include <string>

#include "phone/ldap_filter.hpp"
#include "unit_test.hpp"

namespace {

void test_escape_specials(void**) {
  assert_each_eq(
      ptv::ldap_escape_filter_value,
      // RFC 4515 section 3: the four specials and NUL, as \XX.
      {"*", "\\2a"},
      {"(", "\\28"},
      {")", "\\29"},
      {"\\", "\\5c"},
      {std::string_view("\0", 1), "\\00"},
      {"a*b(c)d\\e", "a\\2ab\\28c\\29d\\5ce"},
      {std::string_view("al\0ice", 6), "al\\00ice"},
      // A user name that would widen the search unescaped.
      {"*)(uid=*", "\\2a\\29\\28uid=\\2a"});
}

void test_escape_keeps_the_rest(void**) {
  assert_each_eq(
      ptv::ldap_escape_filter_value,
      {"", ""},
      {"alice", "alice"},
      {"a.b-c_d@example.com", "a.b-c_d@example.com"},
      {"j\xc3\xb6rg", "j\xc3\xb6rg"},
      {"a=b&c|d!e~f", "a=b&c|d!e~f"},
      // Escaping is not applied twice: a backslash that was already there is
      // itself escaped.
      {"\\2a", "\\5c2a"});
}

void test_build_filter(void**) {
  assert_str_eq(ptv::build_ldap_filter("(uid=%u)", "alice"), "(uid=alice)");
  assert_str_eq(ptv::build_ldap_filter("(uid=%u)", "*"), "(uid=\\2a)");
  assert_str_eq(
      ptv::build_ldap_filter("(&(objectClass=person)(|(uid=%u)(mail=%u)))", "a(b"),
      "(&(objectClass=person)(|(uid=a\\28b)(mail=a\\28b)))");
  assert_str_eq(ptv::build_ldap_filter("(&(uid=%u)(note=100%%))", "bob"),
                "(&(uid=bob)(note=100%))");
}

void test_template_accepted(void**) {
  for (const char* ok : {"(uid=%u)", "(sAMAccountName=%u)",
                         "(&(objectClass=inetOrgPerson)(uid=%u))",
                         "(|(uid=%u)(mail=%u@example.com))",
                         "(&(uid=%u)(description=100%%))",
                         "(&(uid=%u)(cn=a\\2ab))"})
    assert_str_eq(ptv::check_ldap_filter_template(ok), "");
}

void test_template_refused(void**) {
  assert_each_contains(
      ptv::check_ldap_filter_template,
      {"uid=%u", "parentheses"},
      {"(uid=%u", "parentheses"},
      {"(uid=%u))", "parentheses"},
      {"(uid=%u)(cn=x)", "one filter"},
      {"(uid=alice)", "%u"},
      {"(uid=%s)", "'%'"},
      {"(uid=%u%)", "'%'"},
      {"(uid=%u\n)", "control"},
      {"", "parentheses"},
      // An escape must be complete in the template itself.
      {"(uid=\\%u)", "hexadecimal"},
      {"(uid=\\2%u)", "hexadecimal"},
      {"(uid=%u\\)", "hexadecimal"});
}

void test_attribute_names(void**) {
  for (const char* ok : {"mobile", "telephoneNumber", "x-phone", "pager",
                         "2.5.4.20", "mobile;lang-en"})
    assert_true(ptv::is_ldap_attribute_name(ok));
  for (const char* bad : {"", "1mobile", "mob ile", "mobile)", "2.5..4",
                          "2.5.4.", "-mobile", "mobile;", "*", "mobile,cn"})
    assert_false(ptv::is_ldap_attribute_name(bad));
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test(test_escape_specials),
      cmocka_unit_test(test_escape_keeps_the_rest),
      cmocka_unit_test(test_build_filter),
      cmocka_unit_test(test_template_accepted),
      cmocka_unit_test(test_template_refused),
      cmocka_unit_test(test_attribute_names),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
