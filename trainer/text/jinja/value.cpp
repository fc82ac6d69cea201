#include "trainer/text/jinja/value.h"

#include <cmath>

#include "trainer/text/jinja/pystr.h"

namespace flywheel::jinja {

namespace {

// Elements of destroyed containers wait here while the outermost destructor releases them
// one by one; a nested container's destructor only appends to it.
thread_local std::vector<Value>* pending_release = nullptr;

void release(std::vector<Value>&& values) {
  if (pending_release != nullptr) {
    for (auto& v : values)
      pending_release->push_back(std::move(v));
    return;
  }
  std::vector<Value> pending = std::move(values);
  pending_release = &pending;
  while (!pending.empty()) {
    std::vector<Value> batch;
    batch.swap(pending);
    batch.clear();  // nested containers' elements land in `pending` for the next round
  }
  pending_release = nullptr;
}

void check_depth(int depth) {
  if (depth > kMaxNesting)
    throw Error("value nested more than " + std::to_string(kMaxNesting) + " levels deep");
}

// Python compares an int and a float exactly, not through a rounded double.
int compare_int_float(int64_t i, double d) {
  if (std::isnan(d)) return 2;                      // unordered
  constexpr double kTwo63 = 9223372036854775808.0;  // past every int64
  if (d >= kTwo63) return -1;
  if (d < -kTwo63) return 1;
  const double floor = std::floor(d);
  const auto whole = static_cast<int64_t>(floor);
  if (i != whole) return i < whole ? -1 : 1;
  return floor == d ? 0 : -1;
}

// -1, 0, 1, or 2 when either is NaN.
int compare_numbers(const Value& a, const Value& b) {
  if (a.is_int() && b.is_int()) {
    const int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_int()) return compare_int_float(a.as_int(), b.as_double());
  if (b.is_int()) {
    const int c = compare_int_float(b.as_int(), a.as_double());
    return c == 2 ? 2 : -c;
  }
  const double x = a.as_double(), y = b.as_double();
  if (std::isnan(x) || std::isnan(y)) return 2;
  return x < y ? -1 : x > y ? 1 : 0;
}

std::string join_repr(const std::vector<Value>& items, int depth) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i].repr(depth + 1);
  }
  return out;
}

std::string dict_repr(const std::vector<std::pair<Value, Value>>& entries, int depth) {
  std::string out = "{";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ", ";
    out += entries[i].first.repr(depth + 1) + ": " + entries[i].second.repr(depth + 1);
  }
  return out + "}";
}

}  // namespace

Value::Value(std::string s) : storage_(std::make_shared<const std::string>(std::move(s))) {}

Value Value::undefined(std::string hint) {
  return Value(Storage(UndefinedTag{std::make_shared<const std::string>(std::move(hint))}));
}

Value Value::list(std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  return Value(Storage(std::move(data)));
}

Value Value::tuple(std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  data->is_tuple = true;
  return Value(Storage(std::move(data)));
}

Value Value::dict(DictData d) {
  auto data = std::make_shared<DictData>();
  data->entries = std::move(d.entries);
  return Value(Storage(std::move(data)));
}

Value Value::function(std::string name, std::function<Value(CallArgs&)> call) {
  return Value(Storage(std::make_shared<Function>(Function{std::move(name), std::move(call)})));
}

Value Value::from_json(const nlohmann::ordered_json& j, int depth) {
  check_depth(depth);
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      DictData d;
      for (const auto& [key, item] : j.items()) {
        d.entries.emplace_back(Value(key), from_json(item, depth + 1));
      }
      return dict(std::move(d));
    }
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      for (const auto& item : j)
        items.push_back(from_json(item, depth + 1));
      return list(std::move(items));
    }
    case nlohmann::json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      // Python ints are unbounded; past int64 the nearest double is the closest we have.
      const auto u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value(j.get<double>());
    default:
      return none();
  }
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return as_bool();
    case Kind::Int:
      return as_int() != 0;
    case Kind::Float:
      return as_double() != 0.0;
    case Kind::String:
      return !as_string().empty();
    case Kind::List:
      return !as_list().items.empty();
    case Kind::Dict:
      return !as_dict().entries.empty();
    default:
      return true;
  }
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::List:
      return as_list().is_tuple ? "tuple" : "list";
    case Kind::Dict:
      return "dict";
    case Kind::Object:
      return as_object().type_name;
    case Kind::Function:
      return "function";
  }
  return "object";
}

int64_t Value::as_int() const {
  return is(Kind::Bool) ? int64_t{as_bool()} : std::get<int64_t>(storage_);
}

double Value::as_double() const {
  return is(Kind::Float) ? std::get<double>(storage_) : static_cast<double>(as_int());
}

const std::string& Value::undefined_hint() const {
  static const std::string kNoHint = "value is undefined";
  const auto& hint = std::get<UndefinedTag>(storage_).hint;
  return hint ? *hint : kNoHint;
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::String:
      return std::get<StringPtr>(storage_).get();
    case Kind::List:
      return &as_list();
    case Kind::Dict:
      return &as_dict();
    case Kind::Object:
      return &as_object();
    case Kind::Function:
      return &as_function();
    default:
      return nullptr;
  }
}

std::string Value::str(int depth) const {
  switch (kind()) {
    case Kind::Undefined:
      return "";
    case Kind::String:
      return as_string();
    default:
      return repr(depth);
  }
}

std::string Value::repr(int depth) const {
  check_depth(depth);
  switch (kind()) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "None";
    case Kind::Bool:
      return as_bool() ? "True" : "False";
    case Kind::Int:
      return std::to_string(as_int());
    case Kind::Float:
      return pystr::float_repr(as_double());
    case Kind::String:
      return pystr::repr(as_string());
    case Kind::List: {
      const ListData& l = as_list();
      if (!l.is_tuple) return "[" + join_repr(l.items, depth) + "]";
      return "(" + join_repr(l.items, depth) + (l.items.size() == 1 ? ",)" : ")");
    }
    case Kind::Dict:
      return dict_repr(as_dict().entries, depth);
    case Kind::Object: {
      const ObjectData& o = as_object();
      if (!o.assignable) return "<" + o.type_name + " object>";
      std::vector<std::pair<Value, Value>> entries;
      for (const auto& [name, v] : o.attrs)
        entries.emplace_back(Value(name), v);
      return "<" + o.type_name + " " + dict_repr(entries, depth) + ">";
    }
    case Kind::Function:
      return "<function " + as_function().name + ">";
  }
  return "";
}

bool equal(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  using Kind = Value::Kind;
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None:
      return true;
    case Kind::String:
      return a.as_string() == b.as_string();
    case Kind::List: {
      const ListData &x = a.as_list(), &y = b.as_list();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!equal(x.items[i], y.items[i], depth + 1)) return false;
      }
      return true;
    }
    case Kind::Dict: {
      const DictData &x = a.as_dict(), &y = b.as_dict();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [key, v] : x.entries) {
        const Value* other = y.find(key);
        if (other == nullptr || !equal(v, *other, depth + 1)) return false;
      }
      return true;
    }
    default:
      return a.identity() == b.identity();
  }
}

bool less(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == -1;
  // Byte order of UTF-8 is code point order, which is how Python orders strings.
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_sequence() && b.is_sequence() && a.as_list().is_tuple == b.as_list().is_tuple) {
    const auto &x = a.as_list().items, &y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i], depth + 1)) return less(x[i], y[i], depth + 1);
    }
    return x.size() < y.size();
  }
  throw Error("'<' not supported between instances of '" + a.type_name() + "' and '" +
              b.type_name() + "'");
}

ListData::~ListData() {
  release(std::move(items));
}

const Value* DictData::find(const Value& key) const {
  for (const auto& [k, v] : entries) {
    // Strings are by far the common key; compare them without the general dispatch.
    if (key.is_string() ? (k.is_string() && k.as_string() == key.as_string()) : equal(k, key)) {
      return &v;
    }
  }
  return nullptr;
}

void DictData::set(const Value& key, Value value) {
  for (auto& [k, v] : entries) {
    if (equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(key, std::move(value));
}

DictData::~DictData() {
  std::vector<Value> values;
  values.reserve(entries.size() * 2);
  for (auto& [k, v] : entries) {
    values.push_back(std::move(k));
    values.push_back(std::move(v));
  }
  release(std::move(values));
}

const Value* ObjectData::find(std::string_view name) const {
  for (const auto& [n, v] : attrs) {
    if (n == name) return &v;
  }
  return nullptr;
}

void ObjectData::set(const std::string& name, Value value) {
  for (auto& [n, v] : attrs) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  attrs.emplace_back(name, std::move(value));
}

ObjectData::~ObjectData() {
  std::vector<Value> values;
  values.reserve(attrs.size());
  for (auto& [n, v] : attrs)
    values.push_back(std::move(v));
  release(std::move(values));
}

}  // namespace flywheel::jinja
