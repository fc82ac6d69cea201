// Python's printf-style formatting: "%s: %d" % (a, b), "%(name)s" % mapping, and the
// `format` filter. Flags - + space # 0, width and precision (or *), and the conversions
// s r a d i u o x X e E f F g G c %.
#include <cctype>
#include <charconv>
#include <cstdio>

#include "trainer/text/jinja/builtins.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

constexpr int64_t kMaxWidth = 1 << 20;

struct Spec {
  std::string flags;
  int64_t width = 0;
  int64_t precision = -1;  // -1: none
  char type = 's';
  bool has(char flag) const { return flags.find(flag) != std::string::npos; }
};

std::string pad(std::string body, const Spec& spec, size_t sign_prefix_len) {
  const auto len = static_cast<int64_t>(unicode::length(body));
  if (len >= spec.width) return body;
  const size_t fill = static_cast<size_t>(spec.width - len);
  if (spec.has('-')) return body + std::string(fill, ' ');
  if (spec.has('0') && spec.type != 's' && spec.type != 'r' && spec.type != 'a' &&
      spec.type != 'c') {
    return body.insert(sign_prefix_len, std::string(fill, '0'));
  }
  return std::string(fill, ' ') + body;
}

std::string format_integer(const Value& v, const Spec& spec) {
  const bool decimal = spec.type == 'd' || spec.type == 'i' || spec.type == 'u';
  if (!v.is_number() || (!decimal && !v.is_int())) {
    throw Error(std::string("%") + spec.type + " format: " +
                (decimal ? "a real number" : "an integer") + " is required, not " + v.type_name());
  }
  int64_t i = 0;
  if (v.is_int()) {
    i = v.as_int();
  } else {
    const double d = v.as_double();
    if (!(d > -9.2e18 && d < 9.2e18)) throw Error("cannot convert float to integer for %d");
    i = static_cast<int64_t>(d);
  }
  const int base = decimal ? 10 : spec.type == 'o' ? 8 : 16;
  const uint64_t magnitude = i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
  char buf[72];
  std::string digits(buf, std::to_chars(buf, buf + sizeof buf, magnitude, base).ptr);
  if (spec.type == 'X') {
    for (auto& c : digits)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (spec.precision > static_cast<int64_t>(digits.size())) {
    digits.insert(0, std::string(static_cast<size_t>(spec.precision) - digits.size(), '0'));
  }
  std::string prefix = i < 0 ? "-" : spec.has('+') ? "+" : spec.has(' ') ? " " : "";
  if (spec.has('#') && !decimal) prefix += spec.type == 'o' ? "0o" : spec.type == 'x' ? "0x" : "0X";
  return pad(prefix + digits, spec, prefix.size());
}

std::string format_float(const Value& v, const Spec& spec) {
  if (!v.is_number()) throw Error("must be real number, not " + v.type_name());
  std::string c_format = "%" + spec.flags;
  if (spec.width > 0) c_format += std::to_string(spec.width);
  c_format += "." + std::to_string(spec.precision < 0 ? 6 : std::min<int64_t>(spec.precision, 400));
  c_format += spec.type;
  const int n = std::snprintf(nullptr, 0, c_format.c_str(), v.as_double());
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), c_format.c_str(), v.as_double());
  out.pop_back();
  return out;
}

std::string format_one(const Value& v, const Spec& spec) {
  switch (spec.type) {
    case 's':
    case 'r':
    case 'a': {
      std::string text = spec.type == 's' ? v.str() : v.repr();
      if (spec.precision >= 0) {
        size_t end = 0;
        for (int64_t k = 0; k < spec.precision && end < text.size(); ++k) {
          end += unicode::decode(text, end).len;
        }
        text.resize(end);
      }
      return pad(std::move(text), spec, 0);
    }
    case 'd':
    case 'i':
    case 'u':
    case 'o':
    case 'x':
    case 'X':
      return format_integer(v, spec);
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      return format_float(v, spec);
    case 'c':
      if (v.is_int() && v.as_int() >= 0 && v.as_int() <= 0x10FFFF) {
        return pad(unicode::encode(static_cast<char32_t>(v.as_int())), spec, 0);
      }
      if (v.is_string() && unicode::length(v.as_string()) == 1) return pad(v.as_string(), spec, 0);
      throw Error("%c requires an int or a single character");
    default:
      throw Error(std::string("unsupported format character '") + spec.type + "'");
  }
}

}  // namespace

std::string percent_format(const std::string& format, const Value& args) {
  const bool is_mapping = args.is(Value::Kind::Dict);
  const std::vector<Value> positional = args.is_sequence() && args.as_list().is_tuple
                                            ? args.as_list().items
                                            : std::vector<Value>{args};
  size_t next = 0;
  const auto take = [&]() -> const Value& {
    if (next >= positional.size()) throw Error("not enough arguments for format string");
    return positional[next++];
  };
  const auto number = [&](size_t* i) {
    if (format[*i] == '*') {
      ++*i;
      const Value& v = take();
      if (!v.is_int()) throw Error("* wants int");
      return v.as_int();
    }
    int64_t n = 0;
    while (*i < format.size() && format[*i] >= '0' && format[*i] <= '9') {
      n = std::min<int64_t>(n * 10 + (format[(*i)++] - '0'), kMaxWidth + 1);
    }
    return n;
  };
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) throw Error("incomplete format");
    if (format[i] == '%') {
      out += '%';
      continue;
    }
    const Value* value = nullptr;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string::npos) throw Error("incomplete format key");
      if (!is_mapping) throw Error("format requires a mapping");
      const std::string key = format.substr(i + 1, close - i - 1);
      value = args.as_dict().find(Value(key));
      if (value == nullptr) throw Error("KeyError: '" + key + "'");
      i = close + 1;
    }
    Spec spec;
    while (i < format.size() &&
           std::string_view("-+ #0").find(format[i]) != std::string_view::npos) {
      spec.flags += format[i++];
    }
    if (i < format.size()) spec.width = number(&i);
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = i < format.size() ? number(&i) : 0;
    }
    if (spec.width > kMaxWidth || spec.precision > kMaxWidth) throw Error("format width too large");
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L'))
      ++i;
    if (i >= format.size()) throw Error("incomplete format");
    spec.type = format[i];
    out += format_one(value != nullptr ? *value : take(), spec);
    if (out.size() > kMaxStringBytes) throw Error("formatted string too long");
  }
  // Python skips this check for any argument with __getitem__ (a dict, but also a list).
  const bool subscriptable = is_mapping || (args.is_sequence() && !args.as_list().is_tuple);
  if (!subscriptable && next < positional.size()) {
    throw Error("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace flywheel::jinja
