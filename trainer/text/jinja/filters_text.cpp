// Filters on strings and numbers: trim, upper, replace, indent, tojson, int, round, ...
#include <charconv>
#include <cmath>

#include "trainer/text/jinja/access.h"
#include "trainer/text/jinja/filters.h"
#include "trainer/text/jinja/json_dumps.h"
#include "trainer/text/jinja/params.h"
#include "trainer/text/jinja/pystr.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

std::string prefix_code_points(const std::string& s, int64_t n) {
  if (n <= 0) return "";
  size_t i = 0;
  for (int64_t k = 0; k < n && i < s.size(); ++k)
    i += unicode::decode(s, i).len;
  return s.substr(0, i);
}

// Python's int(text, base): surrounding whitespace, a sign, underscores between digits, and
// a 0x/0o/0b prefix matching the base (any, for base 0).
bool parse_python_int(std::string text, int base, int64_t* out) {
  text = pystr::strip(text, nullptr, true, true);
  bool negative = false;
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  if (i + 1 < text.size() && text[i] == '0') {
    const char p = static_cast<char>(text[i + 1] | 0x20);
    const int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefixed != 0 && (base == 0 || base == prefixed)) {
      base = prefixed;
      i += 2;
      if (i < text.size() && text[i] == '_') ++i;
    }
  }
  if (base == 0) base = 10;
  std::string digits;
  for (; i < text.size(); ++i) {
    if (text[i] == '_' && !digits.empty() && i + 1 < text.size() && text[i + 1] != '_') continue;
    digits += text[i];
  }
  if (negative) digits.insert(0, "-");
  const char* end = digits.data() + digits.size();
  const auto r = std::from_chars(digits.data(), end, *out, base);
  return !digits.empty() && r.ec == std::errc() && r.ptr == end;
}

// Python's float(text): whitespace, a sign, underscores, "inf", "nan", "1e5", ".5".
bool parse_python_float(std::string text, double* out) {
  text = pystr::strip(text, nullptr, true, true);
  std::string clean;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_' && i > 0 && i + 1 < text.size()) continue;
    clean += text[i];
  }
  const size_t start = !clean.empty() && clean[0] == '+' ? 1 : 0;
  const char* end = clean.data() + clean.size();
  const auto r = std::from_chars(clean.data() + start, end, *out);
  if (r.ec == std::errc::result_out_of_range) {  // Python saturates to 0.0 or inf
    const size_t e = clean.find_first_of("eE");
    const bool tiny = e != std::string::npos && e + 1 < clean.size() && clean[e + 1] == '-';
    *out = std::copysign(tiny ? 0.0 : HUGE_VAL, clean[0] == '-' ? -1.0 : 1.0);
    return true;
  }
  return start < clean.size() && r.ec == std::errc() && r.ptr == end;
}

// The filters that call str methods on their input (indent, truncate) need a string;
// undefined fails as it would in Python.
const std::string& text_input(const Value& v, const char* filter) {
  if (v.is_undefined()) throw Error(v.undefined_hint());
  if (!v.is_string())
    throw Error(std::string(filter) + "(): expected a string, not " + v.type_name());
  return v.as_string();
}

Value trim(const Value& v, CallArgs& args) {
  Params p(args, "trim", {"chars"});
  return Value(pystr::strip(v.str(), p.string(0), true, true));
}

Value upper(const Value& v, CallArgs& args) {
  Params(args, "upper", {});
  return Value(pystr::upper(v.str()));
}

Value lower(const Value& v, CallArgs& args) {
  Params(args, "lower", {});
  return Value(pystr::lower(v.str()));
}

Value capitalize(const Value& v, CallArgs& args) {
  Params(args, "capitalize", {});
  return Value(pystr::capitalize(v.str()));
}

// Jinja2's title filter (not str.title): words start after whitespace, "-", "(", "{", "[",
// "<", and only their first letter is made upper case.
Value title(const Value& v, CallArgs& args) {
  Params(args, "title", {});
  const std::string s = v.str();
  std::string out;
  bool word_start = true;
  for (size_t i = 0; i < s.size();) {
    const auto d = unicode::decode(s, i);
    const std::string ch = s.substr(i, d.len);
    const bool separator = unicode::is_space(d.cp) ||
                           (d.cp < 0x80 && std::string_view("-({[<").find(
                                               static_cast<char>(d.cp)) != std::string_view::npos);
    if (separator) {
      out += ch;
    } else {
      out += word_start ? pystr::upper(ch) : pystr::lower(ch);
    }
    word_start = separator;
    i += d.len;
  }
  return Value(std::move(out));
}

Value replace(const Value& v, CallArgs& args) {
  Params p(args, "replace", {"old", "new", "count"});
  if (!p.has(0) || !p.has(1)) throw Error("replace() needs the old and new strings");
  const Value* count = p.get(2);
  const int64_t n = count == nullptr || count->is_none() ? -1 : p.integer(2, -1);
  return Value(pystr::replace(v.str(), p.get(0)->str(), p.get(1)->str(), n));
}

Value string(const Value& v, CallArgs& args) {
  Params(args, "string", {});
  return Value(v.str());
}

// HTML escaping as markupsafe does it; there is no autoescaping (Hugging Face has none).
Value escape(const Value& v, CallArgs& args) {
  Params(args, "escape", {});
  std::string out;
  for (const char c : v.str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value(std::move(out));
}

Value indent(const Value& v, CallArgs& args) {
  Params p(args, "indent", {"width", "first", "blank"});
  std::string indentation = "    ";
  if (p.has(0)) {
    indentation =
        p.get(0)->is_string()
            ? p.get(0)->as_string()
            : std::string(static_cast<size_t>(std::clamp<int64_t>(p.integer(0, 4), 0, 1 << 16)),
                          ' ');
  }
  // Jinja2 appends a newline before splitting, so a trailing newline yields no extra line.
  const std::vector<std::string> lines = pystr::splitlines(text_input(v, "indent") + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if (i > 0 && (p.flag(2, false) || !lines[i].empty())) out += indentation;
    out += lines[i];
  }
  if (p.flag(1, false)) out = indentation + out;
  return Value(std::move(out));
}

Value wordcount(const Value& v, CallArgs& args) {
  Params(args, "wordcount", {});
  const std::string s = v.str();
  int64_t words = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    const auto d = unicode::decode(s, i);
    const bool word = unicode::is_word(d.cp);
    if (word && !in_word) ++words;
    in_word = word;
    i += d.len;
  }
  return Value(words);
}

Value center(const Value& v, CallArgs& args) {
  Params p(args, "center", {"width"});
  return Value(pystr::pad(v.str(), std::min<int64_t>(p.integer(0, 80), 1 << 20), " ", 0));
}

Value truncate(const Value& v, CallArgs& args) {
  Params p(args, "truncate", {"length", "killwords", "end", "leeway"});
  const int64_t max_length = p.integer(0, 255);
  const std::string end = p.string(2) ? *p.string(2) : "...";
  const Value* leeway_arg = p.get(3);
  const int64_t leeway = leeway_arg == nullptr || leeway_arg->is_none() ? 5 : p.integer(3, 5);
  const auto end_length = static_cast<int64_t>(unicode::length(end));
  if (max_length < end_length) throw Error("truncate(): expected length >= len(end)");
  if (leeway < 0) throw Error("truncate(): expected leeway >= 0");
  // Anything short enough comes back as it is, as len() is all Jinja2 asks of it.
  if (length(v) <= max_length + leeway) return v;
  const std::string& s = text_input(v, "truncate");
  std::string kept = prefix_code_points(s, max_length - end_length);
  if (!p.flag(1, false)) {
    const std::string space = " ";
    kept = pystr::rsplit(kept, &space, 1).front();
  }
  return Value(kept + end);
}

Value format(const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty()) {
    throw Error("format(): cannot take positional and keyword arguments at the same time");
  }
  if (args.keyword.empty()) return Value(percent_format(v.str(), Value::tuple(args.positional)));
  DictData mapping;
  for (auto& [key, value] : args.keyword)
    mapping.set(Value(key), value);
  return Value(percent_format(v.str(), Value::dict(std::move(mapping))));
}

// Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), not Jinja2's HTML-safe one.
Value tojson(const Value& v, CallArgs& args) {
  Params p(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonStyle style;
  style.ensure_ascii = p.flag(0, false);
  if (const Value* indent = p.get(1); indent != nullptr && !indent->is_none()) {
    style.indent =
        indent->is_string()
            ? indent->as_string()
            : std::string(static_cast<size_t>(std::clamp<int64_t>(p.integer(1, 0), 0, 1 << 10)),
                          ' ');
  }
  if (const Value* separators = p.get(2); separators != nullptr && !separators->is_none()) {
    const bool pair = separators->is_sequence() && separators->as_list().items.size() == 2 &&
                      separators->as_list().items[0].is_string() &&
                      separators->as_list().items[1].is_string();
    if (!pair) throw Error("tojson(): separators must be an (item_separator, key_separator) pair");
    style.item_separator = separators->as_list().items[0].as_string();
    style.key_separator = separators->as_list().items[1].as_string();
  }
  style.sort_keys = p.flag(3, false);
  return Value(json_dumps(v, style));
}

Value to_int(const Value& v, CallArgs& args) {
  Params p(args, "int", {"default", "base"});
  const Value fallback = p.value(0, Value(0));
  int64_t i = 0;
  if (v.is_undefined()) throw Error(v.undefined_hint());
  if (v.is_int()) return Value(v.as_int());
  if (v.is(Value::Kind::Float)) {
    const double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value(static_cast<int64_t>(d));
  }
  if (!v.is_string()) return fallback;
  if (parse_python_int(v.as_string(),
                       static_cast<int>(std::clamp<int64_t>(p.integer(1, 10), 0, 36)), &i)) {
    return Value(i);
  }
  // "42.23" | int is 42: Jinja2 retries through float.
  double d = 0;
  if (parse_python_float(v.as_string(), &d) && std::isfinite(d) && std::fabs(d) < 9.2e18) {
    return Value(static_cast<int64_t>(d));
  }
  return fallback;
}

Value to_float(const Value& v, CallArgs& args) {
  Params p(args, "float", {"default"});
  if (v.is_undefined()) throw Error(v.undefined_hint());
  if (v.is_number()) return Value(v.as_double());
  double d = 0;
  if (v.is_string() && parse_python_float(v.as_string(), &d)) return Value(d);
  return p.value(0, Value(0.0));
}

Value abs_value(const Value& v, CallArgs& args) {
  Params(args, "abs", {});
  if (v.is_int()) {
    if (v.as_int() == INT64_MIN) throw Error("integer overflow in abs()");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is(Value::Kind::Float)) return Value(std::fabs(v.as_double()));
  throw Error("bad operand type for abs(): '" + v.type_name() + "'");
}

// Python's round(x, n): half to even on the exact binary value, which printf's correctly
// rounded decimal conversion reproduces.
double round_half_even(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits >= 0 && std::fabs(x) >= 4503599627370496.0) return x;  // 2^52: already whole
  if (digits < 0) {
    const double scale = std::pow(10.0, static_cast<double>(-digits));
    return std::nearbyint(x / scale) * scale;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::min<int64_t>(digits, 330)), x);
  return std::strtod(buf, nullptr);
}

Value round_number(const Value& v, CallArgs& args) {
  Params p(args, "round", {"precision", "method"});
  const int64_t precision = std::clamp<int64_t>(p.integer(0, 0), -400, 400);
  const std::string method = p.string(1) ? *p.string(1) : "common";
  if (!v.is_number()) throw Error("type " + v.type_name() + " doesn't define __round__ method");
  if (method == "ceil" || method == "floor") {
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double scaled = v.as_double() * scale;
    return Value((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
  }
  if (method != "common") throw Error("round(): method must be 'common', 'ceil' or 'floor'");
  if (!v.is_int()) return Value(round_half_even(v.as_double(), precision));
  const int64_t x = v.as_int();
  if (precision >= 0) return Value(x);
  if (precision < -18) return Value(0);
  int64_t scale = 1;
  for (int64_t k = 0; k < -precision; ++k)
    scale *= 10;
  int64_t q = x / scale, r = x % scale;
  if (r < 0) --q, r += scale;
  if (2 * r > scale || (2 * r == scale && q % 2 != 0)) ++q;
  int64_t result = 0;
  if (__builtin_mul_overflow(q, scale, &result)) throw Error("integer overflow in round()");
  return Value(result);
}

Value default_value(const Value& v, CallArgs& args) {
  Params p(args, "default", {"default_value", "boolean"});
  const bool use_default = p.flag(1, false) ? !v.truthy() : v.is_undefined();
  return use_default ? p.value(0, Value(std::string())) : v;
}

Value length_of(const Value& v, CallArgs& args) {
  Params(args, "length", {});
  return Value(length(v));
}

Value attr(const Value& v, CallArgs& args) {
  Params p(args, "attr", {"name"});
  if (!p.string(0)) throw Error("attr() needs an attribute name");
  return get_attribute(v, *p.string(0));
}

struct NamedFilter {
  std::string_view name;
  FilterFn fn;
};

constexpr NamedFilter kFilters[] = {
    {"abs", abs_value},
    {"attr", attr},
    {"capitalize", capitalize},
    {"center", center},
    {"count", length_of},
    {"d", default_value},
    {"default", default_value},
    {"e", escape},
    {"escape", escape},
    {"float", to_float},
    {"forceescape", escape},
    {"format", format},
    {"indent", indent},
    {"int", to_int},
    {"length", length_of},
    {"lower", lower},
    {"replace", replace},
    {"round", round_number},
    {"safe", string},
    {"string", string},
    {"title", title},
    {"tojson", tojson},
    {"trim", trim},
    {"truncate", truncate},
    {"upper", upper},
    {"wordcount", wordcount},
};

}  // namespace

FilterFn find_text_filter(std::string_view name) {
  for (const auto& f : kFilters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

}  // namespace flywheel::jinja
