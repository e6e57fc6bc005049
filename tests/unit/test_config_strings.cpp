// The masking of string literals before libconfig sees the configuration
// (src/config_strings.*): our scanner must find exactly the literals
// libconfig 1.5 finds, decode them exactly as it does, and leave it the
// same lines, so that everything parsed, and every error with its line,
// is what libconfig alone would give.
#include <algorithm>
#include <cstdio>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/config_strings.hpp"
#include "config_tree.hpp"
#include "fakes.hpp"
#include "unit_test.hpp"

using ptv::ConfigStrings;
using ptv_fakes::kAccount;
using ptv_fakes::kService;

// libconfig 1.5 leaks the buffer of a string literal that stands where a
// setting name belongs (the generated texts below have such mistakes, in
// libconfig alone as behind the masking); the leak is the library's, as
// tests/fuzz/fuzz_config.cpp explains.
extern "C" __attribute__((visibility("default"))) const char*
__lsan_default_suppressions() {
  return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

namespace {

const char* kName = "test.conf";

// libconfig alone and libconfig behind the masking agree on `text`.
void check_same_as_libconfig(const std::string& text, const char* file,
                             int line) {
  const std::string unmasked = ptv_test::describe_unmasked(text);
  const std::string masked = ptv_test::describe_masked(text);
  if (unmasked == masked) return;
  print_error("text:\n%s\n--- libconfig alone:\n%s\n--- masked:\n%s\n",
              text.c_str(), unmasked.c_str(), masked.c_str());
  _fail(file, line);
}
#define assert_same_as_libconfig(text) \
  check_same_as_libconfig((text), __FILE__, __LINE__)

// The decoded literals of `text`, in order.
std::vector<std::string> literals(const std::string& text) {
  const ConfigStrings s = ConfigStrings::mask(text);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.literal_count(); ++i)
    out.emplace_back(s.literal(i).view());
  return out;
}

// What libconfig reads for the string setting `path` of the masked text
// of `s`: its placeholders, or nothing when it reads none.
std::optional<std::string> placeholders(const ConfigStrings& s,
                                        const char* path) {
  config_t cfg;
  config_init(&cfg);
  std::optional<std::string> out;
  const char* v = nullptr;
  if (config_read_string(&cfg, s.masked_text().c_str()) == CONFIG_TRUE &&
      config_lookup_string(&cfg, path, &v) == CONFIG_TRUE)
    out = v;
  config_destroy(&cfg);
  return out;
}

// The value our table gives for the string setting `path` of `text`.
std::string masked_value(const std::string& text, const char* path) {
  const ConfigStrings s = ConfigStrings::mask(text);
  const auto p = placeholders(s, path);
  if (!p) return "<no such string>";
  auto real = s.value_of(*p);
  return real ? std::string(real->view()) : "<unresolved>";
}

// The string settings of `text` have these values through the masking,
// and libconfig alone agrees with libconfig behind it on `text`.
struct Setting {
  const char* path;
  const char* value;
};
void check_values(const std::string& text, std::initializer_list<Setting> settings,
                  const char* file, int line) {
  for (const Setting& s : settings) {
    const std::string expr = std::string("masked_value(text, \"") + s.path + "\")";
    ptv_test::check_equal(masked_value(text, s.path), s.value, expr.c_str(), file,
                          line);
  }
  check_same_as_libconfig(text, file, line);
}
#define assert_values(text, ...) \
  check_values((text), {__VA_ARGS__}, __FILE__, __LINE__)

std::string minimal() {
  return "twilio = {\n"
         "  account_sid = \"" + kAccount + "\";\n"
         "  auth_token = \"tok3n-value\";\n"
         "  service_sid = \"" + kService + "\";\n"
         "};\n";
}

std::string refused(const std::string& text) {
  auto r = ptv::parse_config_text(text, kName);
  if (r.has_value()) fail_msg("accepted:\n%s", text.c_str());
  return r.error().message;
}

// ------------------------------------------------------------ the scanner

void test_comments_with_quotes(void**) {
  const std::string text =
      "# a \"quoted\" word in a comment\n"
      "// and \"another\" one\n"
      "/* a block \"comment\n"
      "   over lines\" */\n"
      "a = \"value\"; # \"trailing\"\n"
      "b = 1; // \"x\n"
      "c = /* \"inline\" */ \"c-value\";\n";
  const auto l = literals(text);
  assert_int_equal(l.size(), 2);
  assert_str_eq(l[0], "value");
  assert_str_eq(l[1], "c-value");
  assert_values(text, {"a", "value"}, {"c", "c-value"});
  // "//*" is a line comment, "/*/" does not close itself.
  assert_same_as_libconfig("//* \"x\"\nb = \"y\";\n/*/ \"z\" */ c = \"w\";\n");
  assert_int_equal(literals("//* \"x\"\nb = \"y\";\n/*/ \"z\" */\n").size(), 1);
}

void test_comment_markers_inside_strings(void**) {
  const std::string text =
      "a = \"# not a comment // nor /* this */ either\";\n"
      "b = \"//\"; c = \"#\"; d = \"/*\"; e = \"*/\";\n";
  assert_values(text, {"a", "# not a comment // nor /* this */ either"},
                {"b", "//"}, {"c", "#"}, {"d", "/*"}, {"e", "*/"});
}

void test_escapes(void**) {
  // \\ \" \f \n \r \t \xHH and \XHH; \x00 is dropped (libconfig appends
  // it as an empty C string); any other backslash stays as it is.
  const std::string text =
      "a = \"1\\\\2\\\"3\\f4\\n5\\r6\\t7\\x41\\X4a\\x7e8\\x009\";\n"
      "b = \"\\q \\x4 \\x4g \\X \\N \\ \";\n"
      "c = \"\\\\\\\"\";\n"
      "d = \"\\xc3\\xa9\";\n";
  assert_values(text, {"a", "1\\2\"3\f4\n5\r6\t7AJ~89"},
                {"b", "\\q \\x4 \\x4g \\X \\N \\ "}, {"c", "\\\""},
                {"d", "\xc3\xa9"});
  // An escaped quote does not end the literal; an escaped backslash
  // before a quote does not escape it.
  assert_int_equal(literals("a = \"x\\\"y\"; b = \"z\\\\\"; c = 1;").size(), 2);
}

void test_adjacent_literals(void**) {
  const std::string text =
      "a = \"ab\" \"cd\"\n"
      "    /* between */ \"ef\" # here\n"
      "    \"gh\";\n"
      "b = ( \"x\" \"y\", \"z\" );\n";
  assert_values(text, {"a", "abcdefgh"});
  // The placeholders libconfig concatenated.
  assert_str_eq(placeholders(ConfigStrings::mask(text), "a")
                    .value_or("<no such string>"),
                "@0;@1;@2;@3;");
  // Through the loader: a token and a user split over literals.
  auto c = ptv::parse_config_text(
      "twilio = {\n  account_sid = \"AC0123456789abcdef\" \"0123456789abcdef\";\n"
      "  auth_token = \"tok\" \"en\" \"\" \"-x\";\n"
      "  service_sid = \"" + kService + "\";\n};\n"
      "users = ( ( \"ali\" \"ce\", \"+1555\" \"1234567\" ) );\n",
      kName);
  if (!c) fail_msg("%s", c.error().message.c_str());
  assert_str_eq(c->twilio.account_sid, kAccount);
  assert_str_eq(c->twilio.auth_token.view(), "token-x");
  assert_str_eq(c->phone.users[0].first, "alice");
  assert_str_eq(c->phone.users[0].second, "+15551234567");
}

void test_unterminated_string(void**) {
  // libconfig reads an unterminated literal to the end of the text and
  // then reports the syntax error at the last line: the literal opens on
  // line 5, and the text ends on line 7.
  const std::string text = minimal().substr(0, minimal().size() - 3) +
                           "  proxy = \"http://x\n\n";
  assert_str_eq(ptv_test::describe_unmasked(text), "error 7: syntax error");
  assert_same_as_libconfig(text);
  assert_str_eq(refused(text), "test.conf:7: parse error: syntax error");
  // Ended by a backslash, and at the very start.
  assert_same_as_libconfig("a = \"abc\\");
  assert_same_as_libconfig("\"");
  // An unterminated block comment hides the rest, as libconfig has it.
  assert_same_as_libconfig("a = \"x\"; /* b = \"y\";\n c = 1;\n");
  // A comment at the very end without a newline is garbage to libconfig.
  assert_same_as_libconfig("a = \"x\";\n# \"no newline\"");
  assert_same_as_libconfig("a = \"x\";\n// \"no newline\"");
}

void test_literal_holding_placeholder_syntax(void**) {
  const std::string text =
      "a = \"@0;\"; b = \"@1;@0;\"; c = \"@99;\"; d = \"@\" \"1;\";\n"
      "e = \"@0;\\n@1;\";\n";
  assert_str_eq(masked_value(text, "a"), "@0;");
  assert_str_eq(masked_value(text, "b"), "@1;@0;");
  assert_str_eq(masked_value(text, "c"), "@99;");
  assert_str_eq(masked_value(text, "d"), "@1;");
  assert_str_eq(masked_value(text, "e"), "@0;\n@1;");
  assert_same_as_libconfig(text);
  auto c = ptv::parse_config_text(
      minimal() + "users = ( ( \"@0;\", \"+15551234567\" ), ( \"@1;\" \"@2;\", "
                  "\"+15557654321\" ) );\nlookup_command_user = \"@3;\";\n",
      kName);
  if (!c) fail_msg("%s", c.error().message.c_str());
  assert_str_eq(c->phone.users[0].first, "@0;");
  assert_str_eq(c->phone.users[1].first, "@1;@2;");
  assert_str_eq(c->phone.command.user, "@3;");
}

void test_multi_line_literals_keep_line_numbers(void**) {
  // A bind password over three lines, then a bad user entry on line 11 and
  // a bad number on line 13: the lines are the file's.
  const std::string ldap =
      "phone_sources = [ \"users\" ];\n"          // 6
      "ldap = { uri = \"ldaps://d.example.com\"; base = \"dc=x\";\n"  // 7
      "  bind_dn = \"cn=pam\"; bind_password = \"line one\n"        // 8
      "line two\n"                                                  // 9
      "line three\"; };\n";                                         // 10
  auto c = ptv::parse_config_text(minimal() + ldap, kName);
  if (!c) fail_msg("%s", c.error().message.c_str());
  assert_str_eq(c->phone.ldap.bind_password.view(), "line one\nline two\nline three");
  const std::string users =
      "users = ( (\"a\n"                      // 11
      "b\", \"+15551234567\"),\n"              // 12
      "  (\"carol\", \"12345\") );\n";         // 13
  const std::string msg = refused(minimal() + ldap + users);
  assert_contains(msg, "test.conf:13: users: the number of user \"carol\"");
  // libconfig alone puts that entry on the same line.
  assert_contains(ptv_test::describe_unmasked(minimal() + ldap + users),
                  "- line 13 aggregate");
  assert_same_as_libconfig(minimal() + ldap + users);
  // A syntax error at a literal over lines: libconfig reports the line of
  // its closing quote (4), not of the opening one (2).
  const std::string broken = "a = 1;\n\"x\ny\nz\" = 1;\n";
  assert_str_eq(ptv_test::describe_unmasked(broken), "error 4: syntax error");
  assert_same_as_libconfig(broken);
  assert_str_eq(refused(broken), "test.conf:4: parse error: syntax error");
}

void test_masked_text_holds_no_value(void**) {
  const std::string token = "Tok3n-In-The-File-7d1e";
  const std::string comment =
      "# old token: auth_token = \"Old-Tok3n-Commented-Out\";";
  const std::string text =
      comment + "\n"
      "twilio = {\n  account_sid = \"" + kAccount + "\";\n"
      "  auth_token = \"" + token + "\"; /* Block-Comment-Secret */\n"
      "  service_sid = \"" + kService + "\";\n};\n"
      "// Line-Comment-Secret\n";
  const ConfigStrings s = ConfigStrings::mask(text);
  const std::string_view masked = s.masked_text().view();
  for (const char* word : {"Tok3n", "Old-Tok3n", "Block-Comment-Secret",
                           "Line-Comment-Secret", "account_sid = \"AC"})
    assert_not_contains(masked, word);
  // Same length of lines, same tokens outside the literals.
  assert_contains(masked, "auth_token = \"@1;\";");
  assert_true(masked.starts_with("#" + std::string(comment.size() - 1, ' ') +
                                 "\n"));
  assert_int_equal(std::count(masked.begin(), masked.end(), '\n'),
                   std::count(text.begin(), text.end(), '\n'));
  auto c = ptv::parse_config_text(text, kName);
  if (!c) fail_msg("%s", c.error().message.c_str());
  assert_str_eq(c->twilio.auth_token.view(), token);
}

void test_value_of_takes_only_placeholders(void**) {
  const ConfigStrings s = ConfigStrings::mask("a = \"x\" \"y\";");
  assert_int_equal(s.literal_count(), 2);
  assert_str_eq(s.value_of("@0;")->view(), "x");
  assert_str_eq(s.value_of("@1;@0;\n\n")->view(), "yx");
  for (const char* bad : {"", "x", "@", "@0", "@;", "@2;", "@0;x", "x@0;",
                          "@-1;", "@0;;", "@18446744073709551617;", "\n@0;"})
    assert_false(s.value_of(bad).has_value());
  assert_str_eq(ptv::config_placeholder(7), "@7;");
}

// Errors libconfig reports keep their text and line behind the masking.
void test_parse_errors_as_libconfig_reports_them(void**) {
  const std::vector<std::string> texts = {
      "twilio = {\n  account_sid = ;\n};\n",
      "a = \"x\"\n\"y\" = 2;\n",
      "a = \"multi\nline\" b = 1;\n",
      "a = [ \"x\", 1 ];\n",
      "a = \"x\";\na = \"y\";\n",
      "a = \"x\" 5;\n",
      "\"lonely\"",
      "a = ( \"x\",\n \"y\"\n\n\n",
      "/* \"open\n comment\n",
      "a = \"x\"; $ b = 1;\n",
      "a = \"\\\"\";\nb = \"\\\\\" c;\n",
  };
  for (const std::string& text : texts) {
    assert_same_as_libconfig(text);
    const std::string direct = ptv_test::describe_unmasked(text);
    if (!direct.starts_with("error ")) continue;
    // "error N: what" from libconfig alone; the loader says
    // "test.conf:N: parse error: what".
    const std::size_t colon = direct.find(':');
    const std::string line = direct.substr(6, colon - 6);
    assert_str_eq(refused(text), std::string(kName) + ":" + line +
                                     ": parse error:" + direct.substr(colon + 1));
  }
}

// ------------------------------------------------------ property: any text

struct Gen {
  std::mt19937 rng;
  explicit Gen(unsigned seed) : rng(seed) {}
  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  bool chance(int percent) { return below(100) < percent; }
};

// What may stand between two tokens.
std::string gap(Gen& g) {
  static const char* const kGaps[] = {
      " ", "\n", "\t", "\r\n", "  ", "/**/", " # c \"q\" // /* x\n",
      " // \"q\" # \"y\n", "/* \"a\n b\" # // */", "\n\n", "#\n", "\f"};
  std::string out;
  for (int n = g.below(3); n > 0; --n) out += kGaps[g.below(std::size(kGaps))];
  return out;
}

// One literal, quotes included, of pieces that exercise the scanner.
std::string literal_source(Gen& g) {
  static const char* const kPieces[] = {
      "a", "Z", "0", " ", "#", "//", "/*", "*/", "'", "@", ";", "@0;",
      "@12;", "\\\\", "\\\"", "\\n", "\\r", "\\t", "\\f", "\\x41", "\\x7e",
      "\\X4a", "\\x00", "\\xff", "\\q", "\\x4g", "\\X", "\n", "\t",
      "\xc3\xa9", "\x01", "=", "{", "(", "[", ",", "}", ")", "]", "\r"};
  std::string out = "\"";
  for (int n = g.below(10); n > 0; --n) out += kPieces[g.below(std::size(kPieces))];
  return out + "\"";
}

std::string string_value(Gen& g) {
  std::string out = literal_source(g);
  while (g.chance(30)) out += gap(g) + literal_source(g);
  return out;
}

std::string scalar(Gen& g, int kind) {
  static const char* const kNumbers[] = {"42", "-7", "0x1F", "9000000000",
                                         "5L", "1.5", "-2e3", "true", "FALSE"};
  if (kind == 0) return string_value(g);
  return kNumbers[g.below(std::size(kNumbers))];
}

std::string settings(Gen& g, int depth);

std::string value(Gen& g, int depth) {
  const int what = depth > 2 ? g.below(2) : g.below(5);
  if (what < 2) return scalar(g, g.below(3) == 0 ? 1 : 0);
  std::string out;
  const int n = g.below(4);
  if (what == 2) {  // array: scalars of one kind
    const int kind = g.below(2);
    out = "[" + gap(g);
    for (int i = 0; i < n; ++i)
      out += (i ? "," + gap(g) : "") + scalar(g, kind) + gap(g);
    return out + "]";
  }
  if (what == 3) {
    out = "(" + gap(g);
    for (int i = 0; i < n; ++i)
      out += (i ? "," + gap(g) : "") + value(g, depth + 1) + gap(g);
    return out + ")";
  }
  return "{" + gap(g) + settings(g, depth + 1) + "}";
}

std::string settings(Gen& g, int depth) {
  std::string out;
  const int n = g.below(depth == 0 ? 8 : 4);
  for (int i = 0; i < n; ++i) {
    out += "s" + std::to_string(i) + gap(g) + (g.chance(50) ? "=" : ":") +
           gap(g) + value(g, depth) + gap(g);
    const int end = g.below(4);
    out += end == 0 ? ";" : end == 1 ? "," : end == 2 ? ";\n" : "";
    out += gap(g);
  }
  return out;
}

// Breaks a text the way a typo would, to compare errors too.
void mutate(Gen& g, std::string& text) {
  if (text.empty()) return;
  const std::size_t at = static_cast<std::size_t>(g.below(static_cast<int>(text.size())));
  switch (g.below(4)) {
    case 0: text.resize(at); break;                // cut off
    case 1: text.erase(at, 1); break;              // a character lost
    case 2: text.insert(at, 1, '"'); break;        // a quote too many
    default: text.insert(at, "/*"); break;         // a comment opened
  }
}

void test_property_generated_texts_parse_as_libconfig_alone(void**) {
  Gen g(20240617);
  int accepted = 0, errors = 0;
  for (int i = 0; i < 600; ++i) {
    std::string text = settings(g, 0);
    if (g.chance(30)) mutate(g, text);
    check_same_as_libconfig(text, __FILE__, __LINE__);
    (ptv_test::describe_unmasked(text).starts_with("error ") ? errors
                                                             : accepted)++;
  }
  // Both kinds of outcome were compared, plenty of each.
  std::printf("generated texts: %d accepted, %d refused by libconfig\n",
              accepted, errors);
  assert_true(accepted >= 200);
  assert_true(errors >= 50);
}

// ------------------------------------------- property: the loader's values

// The source form of `value`: one to three adjacent literals, characters
// escaped in every way libconfig knows, newlines raw or escaped.
std::string source_of(Gen& g, const std::string& value) {
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (i > 0 && g.chance(8)) out += "\"" + gap(g) + "\"";
    const char c = value[i];
    if (c == '"') out += g.chance(50) ? "\\\"" : "\\x22";
    else if (c == '\\') out += g.chance(50) ? "\\\\" : "\\x5C";
    else if (c == '\n') out += g.chance(50) ? "\\n" : "\n";
    else if (c == '\t') out += g.chance(50) ? "\\t" : "\t";
    else if (g.chance(10)) {
      char hex[8];
      std::snprintf(hex, sizeof hex, g.chance(50) ? "\\x%02x" : "\\X%02X",
                    static_cast<unsigned char>(c));
      out += hex;
    } else out += c;
  }
  return out + "\"";
}

std::string random_text(Gen& g, const std::string& alphabet, int min, int max) {
  std::string out;
  for (int n = min + g.below(max - min + 1); n > 0; --n)
    out += alphabet[static_cast<std::size_t>(g.below(static_cast<int>(alphabet.size())))];
  return out;
}

std::string printable_ascii() {
  std::string s;
  for (char c = 0x21; c < 0x7f; ++c) s += c;
  return s;
}

void test_property_loader_values_equal_libconfig_alone(void**) {
  Gen g(77031);
  const std::string printable = printable_ascii();
  const std::string any = printable + " \t\n\r\xc3\xa9\x7f\x01";
  for (int i = 0; i < 300; ++i) {
    const std::string token = random_text(g, printable, 8, 64);
    const std::string password = random_text(g, any, 1, 40);
    const std::string user = random_text(g, any, 1, 12);
    const std::string base = random_text(g, any, 1, 20);
    const std::string text =
        gap(g) + "twilio = {" + gap(g) + "account_sid = " + source_of(g, kAccount) +
        ";" + gap(g) + "auth_token =" + gap(g) + source_of(g, token) + ";" +
        gap(g) + "service_sid = \"" + kService + "\";\n};" + gap(g) +
        "users = ( (" + source_of(g, user) + "," + gap(g) +
        source_of(g, "+1 555 123 4567") + ") );" + gap(g) +
        "ldap = { uri = \"ldaps://d.example.com\"; base = " + source_of(g, base) +
        "; bind_dn = \"cn=pam\";" + gap(g) + "bind_password = " +
        source_of(g, password) + "; };\n";
    auto c = ptv::parse_config_text(text, kName);
    if (!c) fail_msg("refused: %s\n%s", c.error().message.c_str(), text.c_str());
    assert_str_eq(c->twilio.account_sid, kAccount);
    assert_str_eq(c->twilio.auth_token.view(), token);
    assert_str_eq(c->phone.ldap.bind_password.view(), password);
    assert_str_eq(c->phone.ldap.base, base);
    assert_str_eq(c->phone.users.at(0).first, user);
    // And libconfig alone reads the same values from the same text.
    const std::string direct = ptv_test::describe_unmasked(text);
    std::string expected;
    ptv_test::describe_bytes(expected, token);
    assert_contains(direct, "auth_token line ");
    assert_contains(direct, "string " + expected + "\n");
    expected.clear();
    ptv_test::describe_bytes(expected, password);
    assert_contains(direct, "string " + expected + "\n");
    check_same_as_libconfig(text, __FILE__, __LINE__);
  }
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_comments_with_quotes),
      cmocka_unit_test(test_comment_markers_inside_strings),
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_adjacent_literals),
      cmocka_unit_test(test_unterminated_string),
      cmocka_unit_test(test_literal_holding_placeholder_syntax),
      cmocka_unit_test(test_multi_line_literals_keep_line_numbers),
      cmocka_unit_test(test_masked_text_holds_no_value),
      cmocka_unit_test(test_value_of_takes_only_placeholders),
      cmocka_unit_test(test_parse_errors_as_libconfig_reports_them),
      cmocka_unit_test(test_property_generated_texts_parse_as_libconfig_alone),
      cmocka_unit_test(test_property_loader_values_equal_libconfig_alone),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
