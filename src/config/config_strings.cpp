#include "config/config_strings.hpp"

#include <limits>

namespace ptv {

namespace {

enum class SpanKind { String, LineComment, BlockComment };

// A literal or a comment of the text: [begin, end). A line comment ends
// before its newline; an unterminated literal or block comment at the end
// of the text.
struct Span {
  std::size_t begin;
  std::size_t end;
  SpanKind kind;
  bool closed;  // has its closing quote or "*/"
};

// The end of the literal whose opening quote is at `open`. In libconfig's
// STRING state a backslash always takes the character after it or stands
// alone before an ordinary one (\" \\ \n \r \t \f \xHH, and a lone
// backslash otherwise), so a quote ends the literal unless a backslash is
// right before it, and a backslash never escapes the backslash after the
// one it pairs with. Newlines are ordinary characters there.
std::size_t string_end(std::string_view text, std::size_t open, bool& closed) {
  std::size_t i = open + 1;
  while (i < text.size()) {
    if (text[i] == '"') {
      closed = true;
      return i + 1;
    }
    i += text[i] == '\\' ? 2 : 1;
  }
  closed = false;
  return text.size();
}

// libconfig 1.5's scanner (lib/scanner.l), reduced to what separates
// literals and comments from everything else. In its INITIAL state a quote
// opens a literal; "#" or "//" a comment to the end of the line (at the
// very end of a text without a newline, libconfig calls the "#" or "/"
// garbage, which fails the parse: masked as a comment it fails the same
// way at the same line); "/*" a comment to the next "*/" (or to the end).
// No other token can contain a quote, "#" or "/", so the first of these
// characters outside a literal or comment always starts one. (@include,
// whose file name is a literal of another kind, is refused before.)
std::vector<Span> find_spans(std::string_view text) {
  std::vector<Span> spans;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (c == '"') {
      bool closed = false;
      const std::size_t end = string_end(text, i, closed);
      spans.push_back({i, end, SpanKind::String, closed});
      i = end;
    } else if (c == '#' || (c == '/' && next == '/')) {
      std::size_t end = text.find('\n', i);
      if (end == std::string_view::npos) end = text.size();
      spans.push_back({i, end, SpanKind::LineComment, true});
      i = end;
    } else if (c == '/' && next == '*') {
      const std::size_t close = text.find("*/", i + 2);
      const std::size_t end = close == std::string_view::npos ? text.size()
                                                              : close + 2;
      spans.push_back({i, end, SpanKind::BlockComment,
                       close != std::string_view::npos});
      i = end;
    } else {
      ++i;
    }
  }
  return spans;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// One escape at body[i] (a backslash), as libconfig's STRING rules decode
// it: the character it stands for (none for \x00, which libconfig appends
// as an empty C string) and how many characters it takes. Anything else
// after the backslash leaves the backslash as it is.
std::size_t decode_escape(std::string_view body, std::size_t i, Secret& out) {
  const char e = i + 1 < body.size() ? body[i + 1] : '\0';
  switch (e) {
    case 'n': out.push_back('\n'); return 2;
    case 'r': out.push_back('\r'); return 2;
    case 't': out.push_back('\t'); return 2;
    case 'f': out.push_back('\f'); return 2;
    case '\\': out.push_back('\\'); return 2;
    case '"': out.push_back('"'); return 2;
    case 'x':
    case 'X':
      if (i + 3 < body.size() && is_hex(body[i + 2]) && is_hex(body[i + 3])) {
        const int v = hex_value(body[i + 2]) * 16 + hex_value(body[i + 3]);
        if (v != 0) out.push_back(static_cast<char>(v));
        return 4;
      }
      break;
    default:
      break;
  }
  out.push_back('\\');
  return 1;
}

// The value of a literal, from the characters between its quotes. The
// value is never longer than that, so the one reserve() means no
// reallocation leaves a partial copy behind.
Secret decode_literal(std::string_view body) {
  Secret out;
  out.reserve(body.size());
  std::size_t i = 0;
  while (i < body.size()) {
    if (body[i] == '\\') {
      i += decode_escape(body, i, out);
    } else {
      out.push_back(body[i]);
      ++i;
    }
  }
  return out;
}

std::size_t count_newlines(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

// The placeholder literal for `literal`: quote, "@index;", the literal's
// newlines (libconfig returns a string token at the line of its closing
// quote, and reports errors there), and the closing quote if it had one.
std::size_t placeholder_literal_size(std::size_t index, const Span& s,
                                     std::string_view text) {
  return 1 + config_placeholder(index).size() +
         count_newlines(text.substr(s.begin, s.end - s.begin)) +
         (s.closed ? 1 : 0);
}

void append_placeholder_literal(Secret& out, std::size_t index, const Span& s,
                                std::string_view text) {
  out.push_back('"');
  out.append(config_placeholder(index));
  const std::size_t lines = count_newlines(text.substr(s.begin, s.end - s.begin));
  for (std::size_t i = 0; i < lines; ++i) out.push_back('\n');
  if (s.closed) out.push_back('"');
}

// A comment as libconfig still sees a comment of the same lines: its
// opening and closing marks kept, everything between them a space but the
// newlines.
void append_blanked_comment(Secret& out, const Span& s, std::string_view text) {
  const std::string_view comment = text.substr(s.begin, s.end - s.begin);
  const std::size_t open = comment.front() == '#' ? 1 : 2;
  const std::size_t close =
      s.kind == SpanKind::BlockComment && s.closed ? 2 : 0;
  out.append(comment.substr(0, open));
  for (std::size_t i = open; i + close < comment.size(); ++i)
    out.push_back(comment[i] == '\n' ? '\n' : ' ');
  out.append(comment.substr(comment.size() - close));
}

}  // namespace

std::string config_placeholder(std::size_t index) {
  return "@" + std::to_string(index) + ";";
}

ConfigStrings ConfigStrings::mask(std::string_view text) {
  const std::vector<Span> spans = find_spans(text);
  std::size_t size = text.size();
  std::size_t strings = 0;
  for (const Span& s : spans) {
    if (s.kind != SpanKind::String) continue;
    size = size - (s.end - s.begin) + placeholder_literal_size(strings, s, text);
    ++strings;
  }
  ConfigStrings out;
  out.masked_.reserve(size);
  out.literals_.reserve(strings);
  std::size_t pos = 0;
  for (const Span& s : spans) {
    out.masked_.append(text.substr(pos, s.begin - pos));
    if (s.kind == SpanKind::String) {
      const std::size_t body_end = s.closed ? s.end - 1 : s.end;
      append_placeholder_literal(out.masked_, out.literals_.size(), s, text);
      out.literals_.push_back(
          decode_literal(text.substr(s.begin + 1, body_end - s.begin - 1)));
    } else {
      append_blanked_comment(out.masked_, s, text);
    }
    pos = s.end;
  }
  out.masked_.append(text.substr(pos));
  return out;
}

std::optional<Secret> ConfigStrings::value_of(
    std::string_view masked_value) const {
  std::vector<std::size_t> indices;
  std::size_t total = 0;
  std::size_t i = 0;
  while (i < masked_value.size()) {
    if (masked_value[i] != '@') return std::nullopt;
    ++i;
    std::size_t index = 0;
    const std::size_t first_digit = i;
    while (i < masked_value.size() && masked_value[i] >= '0' &&
           masked_value[i] <= '9') {
      if (index > std::numeric_limits<std::size_t>::max() / 10 - 1)
        return std::nullopt;
      index = index * 10 + static_cast<std::size_t>(masked_value[i] - '0');
      ++i;
    }
    if (i == first_digit || i >= masked_value.size() ||
        masked_value[i] != ';' || index >= literals_.size())
      return std::nullopt;
    ++i;
    while (i < masked_value.size() && masked_value[i] == '\n') ++i;
    indices.push_back(index);
    total += literals_[index].size();
  }
  if (indices.empty()) return std::nullopt;
  Secret value;
  value.reserve(total);
  for (std::size_t index : indices) value.append(literals_[index].view());
  return value;
}

}  // namespace ptv
