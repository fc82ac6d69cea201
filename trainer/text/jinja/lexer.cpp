#include "trainer/text/jinja/lexer.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "trainer/text/jinja/location.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

// Longest first, so "**" is not read as two "*".
constexpr std::array<std::string_view, 26> kOperators = {
    "**", "//", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
    "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return c == '_' || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

// Jinja2 reads the template with every \r\n and \r turned into \n, then drops one final
// newline (keep_trailing_newline=False).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\r') {
      out += source[i];
      continue;
    }
    out += '\n';
    if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view source, const TemplateOptions& options, const std::string& name)
      : src_(normalize_newlines(source)), options_(options), name_(name) {
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') newlines_.push_back(i);
    }
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_text(src_.substr(pos_));
        break;
      }
      const char type = src_[tag + 1];
      size_t after = tag + 2;
      const char sign =
          after < src_.size() && (src_[after] == '-' || src_[after] == '+') ? src_[after] : '\0';
      if (sign != '\0') ++after;
      const bool is_block = type != '{';
      emit_text(strip_before(src_.substr(pos_, tag - pos_), sign, is_block));
      size_t raw_body = 0;
      if (type == '%' && match_raw_begin(after, &raw_body)) {
        lex_raw(tag, raw_body);
      } else if (type == '#') {
        lex_comment(tag, after);
      } else {
        lex_tag(type == '%', tag, after);
      }
    }
    tokens_.push_back({TokenKind::End, "", line_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  int line_at(size_t offset) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), offset) -
                                newlines_.begin());
  }

  [[noreturn]] void fail(size_t offset, const std::string& what) const {
    throw located_error(name_, line_at(offset), what);
  }

  bool starts_with(size_t at, std::string_view s) const {
    return src_.compare(at, s.size(), s) == 0;
  }

  // Python's \s and str.isspace agree; both include Unicode spaces.
  size_t space_len(size_t at) const {
    if (at >= src_.size()) return 0;
    const auto d = unicode::decode(src_, at);
    return unicode::is_space(d.cp) ? d.len : 0;
  }

  size_t skip_space(size_t at) const {
    while (size_t len = space_len(at))
      at += len;
    return at;
  }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return std::string::npos;
  }

  void emit_text(std::string_view text) {
    if (!text.empty()) tokens_.push_back({TokenKind::Text, std::string(text), 0});
  }

  // The text before a tag loses its trailing whitespace to a "-" marker; before a block or
  // comment with lstrip_blocks, it loses the spaces and tabs that open the tag's line.
  std::string_view strip_before(std::string_view text, char sign, bool is_block) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
          --start;
        const auto d = unicode::decode(text, start);
        if (start + d.len != end || !unicode::is_space(d.cp)) break;
        end = start;
      }
      return text.substr(0, end);
    }
    if (sign == '+' || !options_.lstrip_blocks || !is_block) return text;
    const size_t line_start = text.rfind('\n') == std::string_view::npos ? 0 : text.rfind('\n') + 1;
    if (line_start == 0 && !line_starting_) return text;
    if (line_start == text.size()) return text;
    for (size_t i = line_start; i < text.size();) {
      const auto d = unicode::decode(text, i);
      if (!unicode::is_space(d.cp)) return text;
      i += d.len;
    }
    return text.substr(0, line_start);
  }

  // After a tag's closing marker: a "-" eats all following whitespace, trim_blocks one
  // newline (not after "+"), and the next text starts a line if a newline was eaten last.
  void close_tag(size_t marker_end, char sign, bool trims) {
    size_t end = marker_end;
    if (sign == '-') {
      end = skip_space(end);
    } else if (sign != '+' && trims && options_.trim_blocks && end < src_.size() &&
               src_[end] == '\n') {
      ++end;
    }
    line_starting_ = src_[end - 1] == '\n';
    pos_ = end;
  }

  // {% raw %}: the name raw alone in the tag, closed by %} or -%} (never +%}).
  bool match_raw_begin(size_t at, size_t* body) const {
    at = skip_space(at);
    if (!starts_with(at, "raw")) return false;
    at = skip_space(at + 3);
    if (starts_with(at, "-%}")) {
      *body = skip_space(at + 3);
      return true;
    }
    if (starts_with(at, "%}")) {
      *body = at + 2;
      return true;
    }
    return false;
  }

  void lex_raw(size_t tag, size_t body) {
    line_starting_ = src_[body - 1] == '\n';
    for (size_t at = src_.find("{%", body); at != std::string::npos; at = src_.find("{%", at + 1)) {
      size_t p = at + 2;
      const char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : '\0';
      if (sign != '\0') ++p;
      p = skip_space(p);
      if (!starts_with(p, "endraw")) continue;
      p = skip_space(p + 6);
      const char end_sign = src_[p] == '-' || src_[p] == '+' ? src_[p] : '\0';
      if (!starts_with(p + (end_sign ? 1 : 0), "%}")) continue;
      emit_text(strip_before(std::string_view(src_).substr(body, at - body), sign, true));
      close_tag(p + (end_sign ? 3 : 2), end_sign, true);
      return;
    }
    fail(tag, "missing {% endraw %} for this {% raw %}");
  }

  void lex_comment(size_t tag, size_t body) {
    const size_t close = src_.find("#}", body);
    if (close == std::string::npos) fail(tag, "missing end of comment tag '#}'");
    const char sign =
        close > body && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : '\0';
    close_tag(close + 2, sign, true);
  }

  void lex_tag(bool block, size_t tag, size_t at) {
    tokens_.push_back({block ? TokenKind::BlockBegin : TokenKind::VariableBegin,
                       block ? "{%" : "{{", line_at(tag)});
    const std::string_view closer = block ? "%}" : "}}";
    std::vector<char> open_brackets;
    while (true) {
      if (at >= src_.size()) {
        fail(tag, "unexpected end of template, expected '" + std::string(closer) + "'");
      }
      if (open_brackets.empty()) {
        const char sign = src_[at] == '-' || (block && src_[at] == '+') ? src_[at] : '\0';
        if (starts_with(at + (sign ? 1 : 0), closer)) {
          tokens_.push_back({block ? TokenKind::BlockEnd : TokenKind::VariableEnd,
                             std::string(closer), line_at(at)});
          close_tag(at + (sign ? 3 : 2), sign, block);
          return;
        }
      }
      if (const size_t len = space_len(at)) {
        at += len;
        continue;
      }
      at = lex_token(at, &open_brackets);
    }
  }

  // Digits with single underscores between them, as Python and Jinja2 write numbers.
  size_t scan_digits(size_t at) const {
    if (at >= src_.size() || !is_digit(src_[at])) return at;
    while (at < src_.size()) {
      if (is_digit(src_[at])) {
        ++at;
      } else if (src_[at] == '_' && at + 1 < src_.size() && is_digit(src_[at + 1])) {
        ++at;
      } else {
        break;
      }
    }
    return at;
  }

  // One token inside a tag; returns the offset after it.
  size_t lex_token(size_t at, std::vector<char>* open_brackets) {
    const char c = src_[at];
    const int line = line_at(at);
    if (is_digit(c)) return lex_number(at);
    if (is_name_start(c)) {
      size_t end = at;
      while (end < src_.size() && is_name_char(src_[end]))
        ++end;
      tokens_.push_back({TokenKind::Name, src_.substr(at, end - at), line});
      return end;
    }
    if (c == '\'' || c == '"') return lex_string(at);
    for (const std::string_view op : kOperators) {
      if (!starts_with(at, op)) continue;
      if (op == "(" || op == "[" || op == "{") {
        open_brackets->push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (open_brackets->empty() || open_brackets->back() != op[0]) {
          fail(at, "unexpected '" + std::string(op) + "'");
        }
        open_brackets->pop_back();
      }
      tokens_.push_back({TokenKind::Operator, std::string(op), line});
      return at + op.size();
    }
    const auto d = unicode::decode(src_, at);
    fail(at, "unexpected character '" + src_.substr(at, d.len) + "'");
  }

  size_t lex_number(size_t at) {
    const int line = line_at(at);
    const auto digits_of = [&](size_t from, size_t to) {
      std::string s;
      for (size_t i = from; i < to; ++i) {
        if (src_[i] != '_') s += src_[i];
      }
      return s;
    };
    const char next = at + 1 < src_.size() ? static_cast<char>(src_[at + 1] | 0x20) : '\0';
    if (src_[at] == '0' && (next == 'x' || next == 'o' || next == 'b')) {
      const int base = next == 'x' ? 16 : next == 'o' ? 8 : 2;
      size_t end = at + 2;
      const auto in_base = [&](char ch) {
        const int v = is_digit(ch) ? ch - '0' : (ch | 0x20) >= 'a' ? (ch | 0x20) - 'a' + 10 : 99;
        return v < base;
      };
      while (end < src_.size() && (in_base(src_[end]) || src_[end] == '_'))
        ++end;
      const std::string digits = digits_of(at + 2, end);
      Token t{TokenKind::Integer, src_.substr(at, end - at), line};
      const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), t.integer, base);
      if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size()) {
        fail(at, "invalid integer literal '" + t.text + "'");
      }
      tokens_.push_back(std::move(t));
      return end;
    }
    size_t end = scan_digits(at);
    bool is_float = false;
    // A float needs digits after its point ("1." is the integer 1 and an attribute dot),
    // and is never read right after a dot, so foo.0.1 stays two subscripts.
    const bool after_dot = at > 0 && src_[at - 1] == '.';
    if (!after_dot && end < src_.size() && src_[end] == '.' && scan_digits(end + 1) > end + 1) {
      end = scan_digits(end + 1);
      is_float = true;
    }
    if (!after_dot && end < src_.size() && (src_[end] | 0x20) == 'e') {
      size_t exp = end + 1;
      if (exp < src_.size() && (src_[exp] == '+' || src_[exp] == '-')) ++exp;
      if (scan_digits(exp) > exp) {
        end = scan_digits(exp);
        is_float = true;
      }
    }
    const std::string digits = digits_of(at, end);
    Token t{is_float ? TokenKind::Float : TokenKind::Integer, src_.substr(at, end - at), line};
    const char* first = digits.data();
    const char* last = digits.data() + digits.size();
    const auto r =
        is_float ? std::from_chars(first, last, t.number) : std::from_chars(first, last, t.integer);
    if (r.ec == std::errc::result_out_of_range && is_float) {
      t.number = digits.find_first_of("eE") != std::string::npos &&
                         digits.find("e-") == std::string::npos &&
                         digits.find("E-") == std::string::npos
                     ? HUGE_VAL
                     : 0.0;
    } else if (r.ec != std::errc()) {
      fail(at, "integer literal '" + t.text + "' does not fit in 64 bits");
    }
    if (!is_float && digits.size() > 1 && digits[0] == '0' &&
        digits.find_first_not_of('0') != std::string::npos) {
      fail(at, "invalid integer literal '" + t.text + "' (leading zeros)");
    }
    tokens_.push_back(std::move(t));
    return end;
  }

  // Quoted text with Python's escapes: \n \t \\ \' \" \xhh \uhhhh \Uhhhhhhhh and octal;
  // an unknown escape keeps its backslash, as Python does.
  size_t lex_string(size_t at) {
    const char quote = src_[at];
    std::string value;
    size_t i = at + 1;
    while (true) {
      if (i >= src_.size()) fail(at, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) fail(at, "unterminated string literal");
      i = unescape(i, at, &value);
    }
    tokens_.push_back({TokenKind::String, std::move(value), line_at(at)});
    return i + 1;
  }

  // Decodes the escape at src_[i] == '\\' into *out; returns the offset after it.
  size_t unescape(size_t i, size_t literal, std::string* out) const {
    const char e = src_[i + 1];
    switch (e) {
      case '\n':
        return i + 2;
      case '\\':
      case '\'':
      case '"':
        *out += e;
        return i + 2;
      case 'a':
        *out += '\a';
        return i + 2;
      case 'b':
        *out += '\b';
        return i + 2;
      case 'f':
        *out += '\f';
        return i + 2;
      case 'n':
        *out += '\n';
        return i + 2;
      case 'r':
        *out += '\r';
        return i + 2;
      case 't':
        *out += '\t';
        return i + 2;
      case 'v':
        *out += '\v';
        return i + 2;
      default:
        break;
    }
    if (e >= '0' && e <= '7') {
      size_t end = i + 1;
      char32_t cp = 0;
      while (end < src_.size() && end < i + 4 && src_[end] >= '0' && src_[end] <= '7') {
        cp = cp * 8 + (src_[end++] - '0');
      }
      unicode::append_utf8(*out, cp);
      return end;
    }
    const int width = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (width == 0) {
      *out += '\\';
      return i + 1;  // the character after the backslash is read as ordinary text
    }
    uint32_t cp = 0;
    const char* first = src_.data() + i + 2;
    const char* last = src_.data() + std::min(src_.size(), i + 2 + width);
    const auto r = std::from_chars(first, last, cp, 16);
    if (r.ptr != first + width || cp > 0x10FFFF) {
      fail(literal, std::string("invalid \\") + e + " escape in string literal");
    }
    unicode::append_utf8(*out, cp);
    return i + 2 + width;
  }

  std::string src_;
  const TemplateOptions& options_;
  const std::string& name_;
  std::vector<size_t> newlines_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // the text that follows begins a line (for lstrip_blocks)
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const TemplateOptions& options,
                            const std::string& name) {
  return Lexer(source, options, name).run();
}

}  // namespace flywheel::jinja
