#include "trainer/text/jinja/pystr.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja::pystr {

namespace {

using unicode::decode;

bool contains_cp(std::string_view set, char32_t cp) {
  for (size_t i = 0; i < set.size();) {
    const auto d = decode(set, i);
    if (d.cp == cp) return true;
    i += d.len;
  }
  return false;
}

// The byte length of the code point that ends at `end` (UTF-8 continuation bytes walk back).
size_t last_cp_start(std::string_view s, size_t end) {
  size_t start = end - 1;
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
    --start;
  }
  // A stray continuation byte is a code point of its own.
  if (decode(s, start).len != end - start) start = end - 1;
  return start;
}

bool is_space_at(std::string_view s, size_t i, size_t* len) {
  const auto d = decode(s, i);
  *len = d.len;
  return unicode::is_space(d.cp);
}

std::string map_chars(std::string_view s, char32_t (*f)(char32_t)) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto d = decode(s, i);
    const char32_t mapped = f(d.cp);
    if (mapped == d.cp) {
      out.append(s.substr(i, d.len));
    } else {
      unicode::append_utf8(out, mapped);
    }
    i += d.len;
  }
  return out;
}

}  // namespace

std::string strip(std::string_view s, const std::string* chars, bool left, bool right) {
  const auto strippable = [&](char32_t cp) {
    return chars == nullptr ? unicode::is_space(cp) : contains_cp(*chars, cp);
  };
  size_t begin = 0, end = s.size();
  while (left && begin < end) {
    const auto d = decode(s, begin);
    if (!strippable(d.cp)) break;
    begin += d.len;
  }
  while (right && end > begin) {
    const size_t start = last_cp_start(s, end);
    if (!strippable(decode(s, start).cp)) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep != nullptr) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      const size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  size_t i = 0, len = 0;
  while (true) {
    while (i < s.size() && is_space_at(s, i, &len))
      i += len;
    if (i >= s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.emplace_back(s.substr(i));  // the rest keeps its trailing whitespace, as in Python
      break;
    }
    const size_t start = i;
    while (i < s.size() && !is_space_at(s, i, &len))
      i += len;
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep != nullptr) {
    size_t end = s.size();
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    out.emplace_back(s.substr(0, end));
    return {out.rbegin(), out.rend()};
  }
  size_t end = s.size();
  while (true) {
    while (end > 0 && unicode::is_space(decode(s, last_cp_start(s, end)).cp)) {
      end = last_cp_start(s, end);
    }
    if (end == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.emplace_back(s.substr(0, end));
      break;
    }
    size_t start = end;
    while (start > 0 && !unicode::is_space(decode(s, last_cp_start(s, start)).cp)) {
      start = last_cp_start(s, start);
    }
    out.emplace_back(s.substr(start, end - start));
    end = start;
  }
  return {out.rbegin(), out.rend()};
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    const auto d = decode(s, i);
    if (!unicode::is_linebreak(d.cp)) {
      i += d.len;
      continue;
    }
    size_t after = i + d.len;
    if (d.cp == '\r' && after < s.size() && s[after] == '\n') ++after;
    out.emplace_back(s.substr(start, (keepends ? after : i) - start));
    start = i = after;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with,
                    int64_t count) {
  std::string out;
  int64_t done = 0;
  if (old.empty()) {  // Python inserts `with` around every code point
    for (size_t i = 0; i < s.size();) {
      if (count < 0 || done++ < count) out.append(with);
      const size_t len = decode(s, i).len;
      out.append(s.substr(i, len));
      i += len;
    }
    if (count < 0 || done < count) out.append(with);
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start)).append(with);
    start = at + old.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

int64_t find(std::string_view s, std::string_view sub, bool reverse) {
  const size_t at = reverse ? s.rfind(sub) : s.find(sub);
  if (at == std::string_view::npos) return -1;
  return static_cast<int64_t>(unicode::length(s.substr(0, at)));
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(unicode::length(s)) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string_view::npos; at = s.find(sub, at + sub.size())) {
    ++n;
  }
  return n;
}

std::string upper(std::string_view s) {
  // ß is the one common letter whose upper case is two letters.
  return replace(map_chars(s, unicode::to_upper), "\u00df", "SS", -1);
}
std::string lower(std::string_view s) {
  return map_chars(s, unicode::to_lower);
}

std::string swapcase(std::string_view s) {
  return map_chars(s, [](char32_t cp) {
    return unicode::is_upper(cp) ? unicode::to_lower(cp) : unicode::to_upper(cp);
  });
}

std::string capitalize(std::string_view s) {
  if (s.empty()) return "";
  const auto first = decode(s, 0);
  return upper(s.substr(0, first.len)) + lower(s.substr(first.len));
}

std::string title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (size_t i = 0; i < s.size();) {
    const auto d = decode(s, i);
    const bool cased = unicode::is_upper(d.cp) || unicode::is_lower(d.cp);
    const std::string_view ch = s.substr(i, d.len);
    out += !cased ? std::string(ch) : previous_cased ? lower(ch) : upper(ch);
    previous_cased = cased;
    i += d.len;
  }
  return out;
}

std::string pad(std::string_view s, int64_t width, std::string_view fill, int align) {
  const int64_t len = static_cast<int64_t>(unicode::length(s));
  if (width <= len) return std::string(s);
  const int64_t margin = width - len;
  // str.center puts the odd extra column on the left only when the width is odd.
  const int64_t left = align < 0 ? 0 : align > 0 ? margin : margin / 2 + (margin & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i)
    out.append(fill);
  out.append(s);
  for (int64_t i = left; i < margin; ++i)
    out.append(fill);
  return out;
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // The shortest digits that round-trip, as Python's repr, laid out by Python's rule:
  // positional notation for exponents from -4 to 15, scientific otherwise.
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  const std::string_view sci(buf, result.ptr - buf);
  const size_t e = sci.find('e');
  const bool negative = sci[0] == '-';
  std::string digits;
  for (const char c : sci.substr(negative ? 1 : 0, e - (negative ? 1 : 0))) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    } else {
      const size_t int_len = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

std::string repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const char quote = has_single && s.find('"') == std::string_view::npos ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    const auto d = decode(s, i);
    const char32_t cp = d.cp;
    if (cp == '\\' || cp == static_cast<char32_t>(quote)) {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (unicode::is_printable(cp)) {
      out.append(s.substr(i, d.len));
    } else {
      char buf[16];
      const char* format = cp <= 0xFF ? "\\x%02x" : cp <= 0xFFFF ? "\\u%04x" : "\\U%08x";
      std::snprintf(buf, sizeof buf, format, static_cast<unsigned>(cp));
      out += buf;
    }
    i += d.len;
  }
  out += quote;
  return out;
}

}  // namespace flywheel::jinja::pystr
