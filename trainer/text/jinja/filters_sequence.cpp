// Filters on lists and dicts: join, map, select, sort, unique, items, dictsort, ...
#include <unordered_set>

#include "trainer/text/jinja/access.h"
#include "trainer/text/jinja/filters.h"
#include "trainer/text/jinja/operators.h"
#include "trainer/text/jinja/params.h"
#include "trainer/text/jinja/pystr.h"
#include "trainer/text/jinja/sort.h"
#include "trainer/text/jinja/unicode.h"

namespace flywheel::jinja {

namespace {

// What sort, min, max and unique compare: the attribute= path(s) of an item, strings lower
// cased unless case_sensitive. "a,b" compares by a, then b.
class KeyOf {
 public:
  KeyOf(const std::string* attribute, bool case_sensitive) : case_sensitive_(case_sensitive) {
    if (attribute != nullptr) {
      const std::string comma = ",";
      for (const auto& part : pystr::split(*attribute, &comma, -1)) {
        paths_.push_back(pystr::strip(part, nullptr, true, true));
      }
    }
  }

  Value operator()(const Value& item) const {
    if (paths_.empty()) return fold(item);
    if (paths_.size() == 1) return fold(get_path(item, paths_[0]));
    std::vector<Value> parts;
    for (const auto& path : paths_)
      parts.push_back(fold(get_path(item, path)));
    return Value::list(std::move(parts));
  }

 private:
  Value fold(Value v) const {
    if (!case_sensitive_ && v.is_string()) return Value(pystr::lower(v.as_string()));
    return v;
  }

  bool case_sensitive_;
  std::vector<std::string> paths_;
};

// Python's sorted(items, key=..., reverse=...), stable either way.
void sort_by_key(std::vector<Value>& items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  merge_sort(order, [&](size_t a, size_t b) {
    return reverse ? less(keys[b], keys[a]) : less(keys[a], keys[b]);
  });
  std::vector<Value> sorted;
  sorted.reserve(items.size());
  for (const size_t i : order)
    sorted.push_back(std::move(items[i]));
  items = std::move(sorted);
}

Value items(const Value& v, CallArgs& args) {
  Params(args, "items", {});
  if (v.is_undefined()) return Value::list({});
  if (!v.is(Value::Kind::Dict))
    throw Error("items(): can only be used on a mapping, not " + v.type_name());
  std::vector<Value> out;
  for (const auto& [key, value] : v.as_dict().entries)
    out.push_back(Value::tuple({key, value}));
  return Value::list(std::move(out));
}

Value join(const Value& v, CallArgs& args) {
  Params p(args, "join", {"d", "attribute"});
  const std::string separator = p.has(0) ? p.get(0)->str() : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    out += p.string(1) ? get_path(item, *p.string(1)).str() : item.str();
    if (out.size() > kMaxStringBytes) throw Error("join(): result too long");
  }
  return Value(std::move(out));
}

Value first(const Value& v, CallArgs& args) {
  Params(args, "first", {});
  std::vector<Value> all = iterate(v);
  return all.empty() ? Value::undefined("No first item, sequence was empty.") : all.front();
}

Value last(const Value& v, CallArgs& args) {
  Params(args, "last", {});
  std::vector<Value> all = iterate(v);
  return all.empty() ? Value::undefined("No last item, sequence was empty.") : all.back();
}

Value list(const Value& v, CallArgs& args) {
  Params(args, "list", {});
  return Value::list(iterate(v));
}

// Jinja2's map, select and friends produce nothing for a falsy input (None, False, 0),
// rather than failing to iterate it.
std::vector<Value> items_of_truthy(const Value& v) {
  return v.truthy() ? iterate(v) : std::vector<Value>{};
}

// map(attribute="x", default=d) or map("filter", args...).
Value map(const Value& v, CallArgs& args) {
  std::vector<Value> out;
  if (args.positional.empty()) {
    Params p(args, "map", {"attribute", "default"});
    if (!p.string(0)) throw Error("map() needs a filter name or attribute=");
    for (const Value& item : items_of_truthy(v)) {
      Value got = get_path(item, *p.string(0));
      if (got.is_undefined() && p.has(1) && !p.get(1)->is_none()) got = *p.get(1);
      out.push_back(std::move(got));
    }
    return Value::list(std::move(out));
  }
  if (!args.positional[0].is_string()) throw Error("map(): the filter name must be a string");
  const std::string name = args.positional[0].as_string();
  const FilterFn filter = find_filter(name);
  if (filter == nullptr) throw Error("map(): unknown filter '" + name + "'");
  for (const Value& item : items_of_truthy(v)) {
    CallArgs rest{{args.positional.begin() + 1, args.positional.end()}, args.keyword};
    out.push_back(filter(item, rest));
  }
  return Value::list(std::move(out));
}

// select/reject(test, args...) and selectattr/rejectattr(attribute, test, args...); with no
// test, an item's truthiness decides.
Value select_items(const Value& v, CallArgs& args, bool by_attribute, bool keep, const char* fn) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      throw Error(std::string(fn) + "() needs an attribute name");
    }
    attribute = args.positional[next++].as_string();
  }
  TestFn test = nullptr;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string())
      throw Error(std::string(fn) + "(): the test name must be a string");
    test = find_test(args.positional[next].as_string());
    if (test == nullptr) {
      throw Error(std::string(fn) + "(): unknown test '" + args.positional[next].as_string() + "'");
    }
    ++next;
  }
  std::vector<Value> out;
  for (const Value& item : items_of_truthy(v)) {
    const Value subject = by_attribute ? get_path(item, attribute) : item;
    bool passes = subject.truthy();
    if (test != nullptr) {
      CallArgs rest{
          {args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end()},
          args.keyword};
      passes = test(subject, rest);
    }
    if (passes == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value select(const Value& v, CallArgs& args) {
  return select_items(v, args, false, true, "select");
}
Value reject(const Value& v, CallArgs& args) {
  return select_items(v, args, false, false, "reject");
}
Value selectattr(const Value& v, CallArgs& args) {
  return select_items(v, args, true, true, "selectattr");
}
Value rejectattr(const Value& v, CallArgs& args) {
  return select_items(v, args, true, false, "rejectattr");
}

Value sum(const Value& v, CallArgs& args) {
  Params p(args, "sum", {"attribute", "start"});
  Value total = p.value(1, Value(0));
  for (const Value& item : iterate(v)) {
    total = binary_op(BinaryOp::Add, total, p.string(0) ? get_path(item, *p.string(0)) : item);
  }
  return total;
}

Value min_or_max(const Value& v, CallArgs& args, bool want_max) {
  Params p(args, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  const KeyOf key_of(p.string(1), p.flag(0, false));
  const std::vector<Value> all = iterate(v);
  if (all.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = key_of(all[0]);
  for (size_t i = 1; i < all.size(); ++i) {
    Value key = key_of(all[i]);
    if (want_max ? less(best_key, key) : less(key, best_key)) best = i, best_key = std::move(key);
  }
  return all[best];
}

Value min(const Value& v, CallArgs& args) {
  return min_or_max(v, args, false);
}
Value max(const Value& v, CallArgs& args) {
  return min_or_max(v, args, true);
}

Value unique(const Value& v, CallArgs& args) {
  Params p(args, "unique", {"case_sensitive", "attribute"});
  const KeyOf key_of(p.string(1), p.flag(0, false));
  std::vector<Value> out, seen_other;
  std::unordered_set<std::string> seen_strings;  // the common case, without a quadratic scan
  for (const Value& item : iterate(v)) {
    Value key = key_of(item);
    if (key.is_string()) {
      if (!seen_strings.insert(key.as_string()).second) continue;
    } else {
      bool known = false;
      for (const Value& s : seen_other)
        known = known || equal(s, key);
      if (known) continue;
      seen_other.push_back(std::move(key));
    }
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value sort(const Value& v, CallArgs& args) {
  Params p(args, "sort", {"reverse", "case_sensitive", "attribute"});
  const KeyOf key_of(p.string(2), p.flag(1, false));
  std::vector<Value> all = iterate(v);
  std::vector<Value> keys;
  keys.reserve(all.size());
  for (const Value& item : all)
    keys.push_back(key_of(item));
  sort_by_key(all, keys, p.flag(0, false));
  return Value::list(std::move(all));
}

Value reverse(const Value& v, CallArgs& args) {
  Params(args, "reverse", {});
  if (v.is_string()) return get_slice(v, Value::none(), Value::none(), Value(-1));
  std::vector<Value> all = iterate(v);
  return Value::list({all.rbegin(), all.rend()});
}

Value dictsort(const Value& v, CallArgs& args) {
  Params p(args, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is(Value::Kind::Dict))
    throw Error("dictsort(): can only sort a mapping, not " + v.type_name());
  const std::string by = p.string(1) ? *p.string(1) : "key";
  if (by != "key" && by != "value") throw Error("dictsort(): can only sort by 'key' or 'value'");
  const KeyOf key_of(nullptr, p.flag(0, false));
  std::vector<Value> pairs, keys;
  for (const auto& [key, value] : v.as_dict().entries) {
    pairs.push_back(Value::tuple({key, value}));
    keys.push_back(key_of(by == "key" ? key : value));
  }
  sort_by_key(pairs, keys, p.flag(2, false));
  return Value::list(std::move(pairs));
}

Value batch(const Value& v, CallArgs& args) {
  Params p(args, "batch", {"linecount", "fill_with"});
  const int64_t size = p.integer(0, 0);
  if (size < 1) throw Error("batch(): linecount must be at least 1");
  std::vector<Value> out, row;
  for (const Value& item : iterate(v)) {
    row.push_back(item);
    if (static_cast<int64_t>(row.size()) == size)
      out.push_back(Value::list(std::move(row))), row = {};
  }
  if (!row.empty()) {
    if (p.has(1) && !p.get(1)->is_none()) {
      while (static_cast<int64_t>(row.size()) < size)
        row.push_back(*p.get(1));
    }
    out.push_back(Value::list(std::move(row)));
  }
  return Value::list(std::move(out));
}

struct NamedFilter {
  std::string_view name;
  FilterFn fn;
};

constexpr NamedFilter kFilters[] = {
    {"batch", batch},     {"dictsort", dictsort}, {"first", first},
    {"items", items},     {"join", join},         {"last", last},
    {"list", list},       {"map", map},           {"max", max},
    {"min", min},         {"reject", reject},     {"rejectattr", rejectattr},
    {"reverse", reverse}, {"select", select},     {"selectattr", selectattr},
    {"sort", sort},       {"sum", sum},           {"unique", unique},
};

}  // namespace

FilterFn find_sequence_filter(std::string_view name) {
  for (const auto& f : kFilters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

FilterFn find_filter(std::string_view name) {
  if (const FilterFn f = find_text_filter(name)) return f;
  return find_sequence_filter(name);
}

}  // namespace flywheel::jinja
