// Python methods of str, list and dict that chat templates call: "x".startswith(...),
// content.split('</think>'), message.get('content', ''), tool.items(), ...
// Methods that would modify a value are absent: HF's sandbox refuses them too.
#include <string_view>

#include "trainer/text/jinja/access.h"
#include "trainer/text/jinja/builtins.h"
#include "trainer/text/jinja/params.h"
#include "trainer/text/jinja/pystr.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

using Kind = Value::Kind;

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts)
    items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

// ---- str ----

// startswith/endswith(prefix or tuple of prefixes, start=None, end=None).
Value affix_test(const Value& self, CallArgs& args, bool at_start) {
  Params p(args, at_start ? "startswith" : "endswith", {"prefix", "start", "end"});
  if (!p.has(0)) throw Error("startswith()/endswith() need an argument");
  const Value window = p.has(1) || p.has(2) ? get_slice(self, p.value(1, Value::none()),
                                                        p.value(2, Value::none()), Value::none())
                                            : self;
  const std::string_view s = window.as_string();
  const auto matches = [&](const Value& affix) {
    if (!affix.is_string())
      throw Error("startswith()/endswith() take a string or a tuple of strings");
    const std::string& a = affix.as_string();
    return a.size() <= s.size() && s.compare(at_start ? 0 : s.size() - a.size(), a.size(), a) == 0;
  };
  const Value& arg = *p.get(0);
  if (!arg.is_sequence()) return Value(matches(arg));
  for (const Value& affix : arg.as_list().items) {
    if (matches(affix)) return Value(true);
  }
  return Value(false);
}
Value startswith(const Value& self, CallArgs& args) {
  return affix_test(self, args, true);
}
Value endswith(const Value& self, CallArgs& args) {
  return affix_test(self, args, false);
}

Value strip_chars(const Value& self, CallArgs& args, bool left, bool right) {
  Params p(args, "strip", {"chars"});
  return Value(pystr::strip(self.as_string(), p.string(0), left, right));
}
Value strip(const Value& self, CallArgs& args) {
  return strip_chars(self, args, true, true);
}
Value lstrip(const Value& self, CallArgs& args) {
  return strip_chars(self, args, true, false);
}
Value rstrip(const Value& self, CallArgs& args) {
  return strip_chars(self, args, false, true);
}

Value split_on(const Value& self, CallArgs& args, bool from_right) {
  Params p(args, from_right ? "rsplit" : "split", {"sep", "maxsplit"});
  const std::string* sep = p.string(0);
  if (sep != nullptr && sep->empty()) throw Error("empty separator");
  const int64_t maxsplit = p.integer(1, -1);
  return string_list(from_right ? pystr::rsplit(self.as_string(), sep, maxsplit)
                                : pystr::split(self.as_string(), sep, maxsplit));
}
Value split(const Value& self, CallArgs& args) {
  return split_on(self, args, false);
}
Value rsplit(const Value& self, CallArgs& args) {
  return split_on(self, args, true);
}

Value splitlines(const Value& self, CallArgs& args) {
  Params p(args, "splitlines", {"keepends"});
  return string_list(pystr::splitlines(self.as_string(), p.flag(0, false)));
}

template <std::string (*Transform)(std::string_view)>
Value transform(const Value& self, CallArgs& args) {
  Params(args, "str method", {});
  return Value(Transform(self.as_string()));
}

Value replace(const Value& self, CallArgs& args) {
  Params p(args, "replace", {"old", "new", "count"});
  if (!p.string(0) || !p.string(1)) throw Error("replace() needs the old and new strings");
  return Value(pystr::replace(self.as_string(), *p.string(0), *p.string(1), p.integer(2, -1)));
}

const std::string& substring_argument(const Params& p, const char* fn) {
  if (!p.string(0)) throw Error(std::string(fn) + "() needs a string argument");
  return *p.string(0);
}

Value find(const Value& self, CallArgs& args) {
  Params p(args, "find", {"sub"});
  return Value(pystr::find(self.as_string(), substring_argument(p, "find"), false));
}
Value rfind(const Value& self, CallArgs& args) {
  Params p(args, "rfind", {"sub"});
  return Value(pystr::find(self.as_string(), substring_argument(p, "rfind"), true));
}
Value index_of(const Value& self, CallArgs& args, bool reverse) {
  Params p(args, reverse ? "rindex" : "index", {"sub"});
  const int64_t at = pystr::find(self.as_string(), substring_argument(p, "index"), reverse);
  if (at < 0) throw Error("substring not found");
  return Value(at);
}
Value index(const Value& self, CallArgs& args) {
  return index_of(self, args, false);
}
Value rindex(const Value& self, CallArgs& args) {
  return index_of(self, args, true);
}

Value count(const Value& self, CallArgs& args) {
  Params p(args, "count", {"sub"});
  return Value(pystr::count(self.as_string(), substring_argument(p, "count")));
}

Value join(const Value& self, CallArgs& args) {
  Params p(args, "join", {"iterable"});
  if (!p.has(0)) throw Error("join() needs an iterable");
  std::string out;
  size_t n = 0;
  for (const Value& item : iterate(*p.get(0))) {
    if (!item.is_string()) {
      throw Error("sequence item " + std::to_string(n) + ": expected str instance, " +
                  item.type_name() + " found");
    }
    if (n++ > 0) out += self.as_string();
    out += item.as_string();
    if (out.size() > kMaxStringBytes) throw Error("join() result too long");
  }
  return Value(std::move(out));
}

// isdigit, isalpha, ...: every character of a non-empty string is in the class.
template <bool (*Class)(char32_t)>
Value all_chars(const Value& self, CallArgs& args) {
  Params(args, "str method", {});
  const std::string& s = self.as_string();
  if (s.empty()) return Value(false);
  for (size_t i = 0; i < s.size();) {
    const auto d = unicode::decode(s, i);
    if (!Class(d.cp)) return Value(false);
    i += d.len;
  }
  return Value(true);
}
bool is_alnum(char32_t cp) {
  return unicode::is_alpha(cp) || unicode::is_digit(cp);
}

Value has_case(const Value& self, CallArgs& args, bool want_lower) {
  Params(args, want_lower ? "islower" : "isupper", {});
  bool cased = false;
  const std::string& s = self.as_string();
  for (size_t i = 0; i < s.size();) {
    const auto d = unicode::decode(s, i);
    if (want_lower ? unicode::is_upper(d.cp) : unicode::is_lower(d.cp)) return Value(false);
    cased = cased || unicode::is_upper(d.cp) || unicode::is_lower(d.cp);
    i += d.len;
  }
  return Value(cased);
}
Value islower(const Value& self, CallArgs& args) {
  return has_case(self, args, true);
}
Value isupper(const Value& self, CallArgs& args) {
  return has_case(self, args, false);
}

Value justify(const Value& self, CallArgs& args, int align) {
  Params p(args, align == 0 ? "center" : align < 0 ? "ljust" : "rjust", {"width", "fillchar"});
  const std::string fill = p.string(1) ? *p.string(1) : " ";
  if (unicode::length(fill) != 1)
    throw Error("the fill character must be exactly one character long");
  return Value(
      pystr::pad(self.as_string(), std::min<int64_t>(p.integer(0, 0), 1 << 20), fill, align));
}
Value center(const Value& self, CallArgs& args) {
  return justify(self, args, 0);
}
Value ljust(const Value& self, CallArgs& args) {
  return justify(self, args, -1);
}
Value rjust(const Value& self, CallArgs& args) {
  return justify(self, args, 1);
}

Value zfill(const Value& self, CallArgs& args) {
  Params p(args, "zfill", {"width"});
  const std::string& s = self.as_string();
  const int64_t width = std::min<int64_t>(p.integer(0, 0), 1 << 20);
  const auto len = static_cast<int64_t>(unicode::length(s));
  if (len >= width) return self;
  const size_t sign = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  return Value(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') +
               s.substr(sign));
}

Value remove_affix(const Value& self, CallArgs& args, bool prefix) {
  Params p(args, prefix ? "removeprefix" : "removesuffix", {"affix"});
  const std::string& s = self.as_string();
  if (!p.string(0)) throw Error("removeprefix()/removesuffix() need a string");
  const std::string& a = *p.string(0);
  if (a.size() > s.size() || s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) != 0) {
    return self;
  }
  return Value(prefix ? s.substr(a.size()) : s.substr(0, s.size() - a.size()));
}
Value removeprefix(const Value& self, CallArgs& args) {
  return remove_affix(self, args, true);
}
Value removesuffix(const Value& self, CallArgs& args) {
  return remove_affix(self, args, false);
}

// str.format with {}, {0}, {name} fields and {{ }} escapes; format specs are not supported.
Value format(const Value& self, CallArgs& args) {
  const std::string& s = self.as_string();
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((s[i] == '{' || s[i] == '}') && i + 1 < s.size() && s[i + 1] == s[i]) {
      out += s[i++];
      continue;
    }
    if (s[i] == '}') throw Error("single '}' encountered in format string");
    if (s[i] != '{') {
      out += s[i];
      continue;
    }
    const size_t close = s.find('}', i);
    if (close == std::string::npos) throw Error("single '{' encountered in format string");
    std::string field = s.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) {
      throw Error("format specs and conversions in str.format are not supported");
    }
    const Value* v = nullptr;
    if (field.empty() || (field.find_first_not_of("0123456789") == std::string::npos)) {
      const size_t k = field.empty() ? auto_index++ : std::stoul(field.substr(0, 9));
      if (k >= args.positional.size())
        throw Error("str.format: index " + std::to_string(k) + " out of range");
      v = &args.positional[k];
    } else {
      for (const auto& [key, value] : args.keyword) {
        if (key == field) v = &value;
      }
      if (v == nullptr) throw Error("KeyError: '" + field + "'");
    }
    out += v->str();
    i = close;
  }
  return Value(std::move(out));
}

// ---- list and tuple ----

Value list_index(const Value& self, CallArgs& args) {
  Params p(args, "index", {"value"});
  if (!p.has(0)) throw Error("index() needs a value");
  const auto& items = self.as_list().items;
  for (size_t i = 0; i < items.size(); ++i) {
    if (equal(items[i], *p.get(0))) return Value(static_cast<int64_t>(i));
  }
  throw Error(p.get(0)->repr() + " is not in list");
}

Value list_count(const Value& self, CallArgs& args) {
  Params p(args, "count", {"value"});
  if (!p.has(0)) throw Error("count() needs a value");
  int64_t n = 0;
  for (const Value& item : self.as_list().items)
    n += equal(item, *p.get(0)) ? 1 : 0;
  return Value(n);
}

Value list_copy(const Value& self, CallArgs& args) {
  Params(args, "copy", {});
  return Value::list(self.as_list().items);
}

// ---- dict ----

Value dict_items(const Value& self, CallArgs& args) {
  Params(args, "items", {});
  std::vector<Value> out;
  for (const auto& [key, value] : self.as_dict().entries)
    out.push_back(Value::tuple({key, value}));
  return Value::list(std::move(out));
}

Value dict_keys(const Value& self, CallArgs& args) {
  Params(args, "keys", {});
  return Value::list(iterate(self));
}

Value dict_values(const Value& self, CallArgs& args) {
  Params(args, "values", {});
  std::vector<Value> out;
  for (const auto& [key, value] : self.as_dict().entries)
    out.push_back(value);
  return Value::list(std::move(out));
}

// dict.get(key, default=None): None, not undefined, for a missing key.
Value dict_get(const Value& self, CallArgs& args) {
  Params p(args, "get", {"key", "default"});
  if (!p.has(0)) throw Error("get() needs a key");
  if (const Value* v = self.as_dict().find(*p.get(0))) return *v;
  return p.value(1, Value::none());
}

Value dict_copy(const Value& self, CallArgs& args) {
  Params(args, "copy", {});
  DictData d;
  d.entries = self.as_dict().entries;
  return Value::dict(std::move(d));
}

struct NamedMethod {
  std::string_view name;
  MethodFn fn;
};

constexpr NamedMethod kStringMethods[] = {
    {"capitalize", transform<pystr::capitalize>},
    {"casefold", transform<pystr::lower>},
    {"center", center},
    {"count", count},
    {"endswith", endswith},
    {"find", find},
    {"format", format},
    {"index", index},
    {"isalnum", all_chars<is_alnum>},
    {"isalpha", all_chars<unicode::is_alpha>},
    {"isdecimal", all_chars<unicode::is_digit>},
    {"isdigit", all_chars<unicode::is_digit>},
    {"islower", islower},
    {"isnumeric", all_chars<unicode::is_digit>},
    {"isspace", all_chars<unicode::is_space>},
    {"isupper", isupper},
    {"join", join},
    {"ljust", ljust},
    {"lower", transform<pystr::lower>},
    {"lstrip", lstrip},
    {"removeprefix", removeprefix},
    {"removesuffix", removesuffix},
    {"replace", replace},
    {"rfind", rfind},
    {"rindex", rindex},
    {"rjust", rjust},
    {"rsplit", rsplit},
    {"rstrip", rstrip},
    {"split", split},
    {"splitlines", splitlines},
    {"startswith", startswith},
    {"strip", strip},
    {"swapcase", transform<pystr::swapcase>},
    {"title", transform<pystr::title>},
    {"upper", transform<pystr::upper>},
    {"zfill", zfill},
};

constexpr NamedMethod kListMethods[] = {
    {"copy", list_copy},
    {"count", list_count},
    {"index", list_index},
};

constexpr NamedMethod kDictMethods[] = {
    {"copy", dict_copy}, {"get", dict_get},       {"items", dict_items},
    {"keys", dict_keys}, {"values", dict_values},
};

template <size_t N>
MethodFn lookup(const NamedMethod (&table)[N], std::string_view name) {
  for (const auto& m : table) {
    if (m.name == name) return m.fn;
  }
  return nullptr;
}

}  // namespace

MethodFn find_method(const Value& self, std::string_view name) {
  switch (self.kind()) {
    case Kind::String:
      return lookup(kStringMethods, name);
    case Kind::List: {
      const MethodFn m = lookup(kListMethods, name);
      return m == list_copy && self.as_list().is_tuple ? nullptr : m;  // tuples have no copy
    }
    case Kind::Dict:
      return lookup(kDictMethods, name);
    default:
      return nullptr;
  }
}

}  // namespace flywheel::jinja
