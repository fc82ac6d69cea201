#include "trainer/text/jinja/access.h"

#include <algorithm>
#include <charconv>

#include "trainer/text/jinja/builtins.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

// How Jinja2 names an object in "has no attribute" messages.
std::string describe(const Value& obj) {
  return obj.is_none() ? "None" : obj.type_name() + " object";
}

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined("'" + describe(obj) + "' has no attribute '" + name + "'");
}

// Python methods that mutate their object: the immutable sandbox HF renders in refuses them
// (and a dict key of that name is hidden behind the method, as in Python).
bool is_mutating_method(const Value& obj, std::string_view name) {
  static constexpr std::string_view kList[] = {"append", "extend",  "insert", "pop",
                                               "remove", "reverse", "sort",   "clear"};
  static constexpr std::string_view kDict[] = {"pop", "popitem", "update", "clear", "setdefault"};
  if (obj.is(Value::Kind::List) && !obj.as_list().is_tuple) {
    return std::find(std::begin(kList), std::end(kList), name) != std::end(kList);
  }
  if (obj.is(Value::Kind::Dict)) {
    return std::find(std::begin(kDict), std::end(kDict), name) != std::end(kDict);
  }
  return false;
}

// Python's PySlice_AdjustIndices: clamps start and stop into [0, len] (or [-1, len - 1]
// walking backwards) and counts the elements.
struct SliceRange {
  int64_t start, step, count;
};

bool slice_bound(const Value& v, int64_t* out) {
  if (v.is_none()) return false;
  *out = v.as_int();
  return true;
}

SliceRange adjust_slice(int64_t len, const Value& start_v, const Value& stop_v,
                        const Value& step_v) {
  int64_t step = 1;
  if (slice_bound(step_v, &step) && step == 0) throw Error("slice step cannot be zero");
  step = std::max<int64_t>(step, -INT64_MAX);
  const auto adjust = [&](const Value& v, int64_t fallback) {
    int64_t i = 0;
    if (!slice_bound(v, &i)) return fallback;
    if (i < 0) {
      i = i < -len ? (step < 0 ? -1 : 0) : i + len;
    } else if (i >= len) {
      i = step < 0 ? len - 1 : len;
    }
    return i;
  };
  const int64_t start = adjust(start_v, step < 0 ? len - 1 : 0);
  const int64_t stop = adjust(stop_v, step < 0 ? -1 : len);
  int64_t count = 0;
  if (step > 0 && start < stop) count = (stop - start - 1) / step + 1;
  if (step < 0 && stop < start) count = (start - stop - 1) / (-step) + 1;
  return {start, step, count};
}

}  // namespace

Value get_attribute(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::Undefined:
      throw Error(obj.undefined_hint());
    case Value::Kind::String:
    case Value::Kind::List:
    case Value::Kind::Dict: {
      if (const MethodFn method = find_method(obj, name)) {
        return Value::function(name, [obj, method](CallArgs& args) { return method(obj, args); });
      }
      if (is_mutating_method(obj, name)) {
        return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() +
                                "' object is unsafe: chat templates cannot modify values");
      }
      if (obj.is(Value::Kind::Dict)) {
        if (const Value* v = obj.as_dict().find(Value(name))) return *v;
      }
      return missing_attribute(obj, name);
    }
    case Value::Kind::Object: {
      if (const Value* v = obj.as_object().find(name)) return *v;
      return missing_attribute(obj, name);
    }
    default:
      return missing_attribute(obj, name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw Error(obj.undefined_hint());
  if (obj.is(Value::Kind::Dict)) {
    if (const Value* v = obj.as_dict().find(key)) return *v;
  } else if ((obj.is_sequence() || obj.is_string()) && key.is_int()) {
    const int64_t len = obj.is_string() ? static_cast<int64_t>(unicode::length(obj.as_string()))
                                        : static_cast<int64_t>(obj.as_list().items.size());
    int64_t i = key.as_int();
    if (i < 0) i += len;
    if (i >= 0 && i < len) {
      if (obj.is_sequence()) return obj.as_list().items[static_cast<size_t>(i)];
      return get_slice(obj, Value(i), Value(i + 1), Value::none());
    }
    return Value::undefined("'" + describe(obj) + "' has no element " + key.repr());
  }
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value::undefined("'" + describe(obj) + "' has no element " + key.repr());
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) throw Error(obj.undefined_hint());
  for (const Value* bound : {&start, &stop, &step}) {
    if (!bound->is_none() && !bound->is_int()) {
      throw Error("slice indices must be integers or None, not " + bound->type_name());
    }
  }
  if (obj.is_sequence()) {
    const auto& items = obj.as_list().items;
    const SliceRange r = adjust_slice(static_cast<int64_t>(items.size()), start, stop, step);
    std::vector<Value> out;
    out.reserve(static_cast<size_t>(r.count));
    for (int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) {
      out.push_back(items[static_cast<size_t>(i)]);
    }
    return obj.as_list().is_tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  if (obj.is_string()) {
    const std::string& s = obj.as_string();
    const bool ascii = unicode::is_ascii(s);
    const std::vector<size_t> offsets = ascii ? std::vector<size_t>{} : unicode::offsets(s);
    const int64_t len =
        ascii ? static_cast<int64_t>(s.size()) : static_cast<int64_t>(offsets.size()) - 1;
    const SliceRange r = adjust_slice(len, start, stop, step);
    if (r.step == 1) {  // one contiguous run of bytes
      if (r.count == 0) return Value(std::string());
      const auto at = [&](int64_t i) { return ascii ? static_cast<size_t>(i) : offsets[i]; };
      return Value(s.substr(at(r.start), at(r.start + r.count) - at(r.start)));
    }
    std::string out;
    for (int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) {
      if (ascii) {
        out += s[static_cast<size_t>(i)];
      } else {
        out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
      }
    }
    return Value(std::move(out));
  }
  if (obj.is(Value::Kind::Dict)) throw Error("unhashable type: 'slice'");
  throw Error("'" + obj.type_name() + "' object is not subscriptable");
}

Value get_path(const Value& obj, std::string_view path) {
  Value v = obj;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string_view part =
        path.substr(start, dot == std::string_view::npos ? dot : dot - start);
    int64_t index = 0;
    const auto r = std::from_chars(part.data(), part.data() + part.size(), index);
    const bool numeric = !part.empty() && r.ec == std::errc() && r.ptr == part.data() + part.size();
    v = get_item(v, numeric ? Value(index) : Value(std::string(part)));
    if (dot == std::string_view::npos) return v;
    start = dot + 1;
  }
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return {};
    case Value::Kind::List:
      return v.as_list().items;
    case Value::Kind::Dict: {
      std::vector<Value> keys;
      keys.reserve(v.as_dict().entries.size());
      for (const auto& [key, value] : v.as_dict().entries)
        keys.push_back(key);
      return keys;
    }
    case Value::Kind::String: {
      const std::string& s = v.as_string();
      std::vector<Value> chars;
      for (size_t i = 0; i < s.size();) {
        const size_t len = unicode::decode(s, i).len;
        chars.emplace_back(s.substr(i, len));
        i += len;
      }
      return chars;
    }
    default:
      throw Error("'" + v.type_name() + "' object is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return 0;
    case Value::Kind::String:
      return static_cast<int64_t>(unicode::length(v.as_string()));
    case Value::Kind::List:
      return static_cast<int64_t>(v.as_list().items.size());
    case Value::Kind::Dict:
      return static_cast<int64_t>(v.as_dict().entries.size());
    default:
      throw Error("object of type '" + v.type_name() + "' has no len()");
  }
}

}  // namespace flywheel::jinja
