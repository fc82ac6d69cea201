// The interpreter's runtime value: Python's object model cut down to what chat templates use.
//
// Lists, dicts and objects (namespaces, the loop variable) are shared by reference, as in
// Python, so `ns.x` seen through two names is one object; strings are immutable and shared.
// Only namespaces are mutable (HF renders with jinja2's ImmutableSandboxedEnvironment, where
// list.append and friends are refused), so reference cycles can only pass through a namespace.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace flywheel::jinja {

// A render failure without a location: the interpreter prefixes it with NAME:LINE of the
// innermost node being evaluated when it crosses that node.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bounds that keep any template, however hostile, from exhausting the stack or memory.
inline constexpr int kMaxNesting = 200;                      // depth of values walked recursively
inline constexpr size_t kMaxStringBytes = size_t{64} << 20;  // any one string, and the output
inline constexpr size_t kMaxItems = size_t{1} << 20;  // elements of a list built by a template

struct ListData;
struct DictData;
struct ObjectData;
struct Function;
struct CallArgs;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Object, Function };

  Value() = default;  // undefined
  Value(bool b) : storage_(b) {}
  Value(int i) : storage_(int64_t{i}) {}
  Value(int64_t i) : storage_(i) {}
  Value(double d) : storage_(d) {}
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}

  // `hint` is the message of the error raised when the undefined value is used, e.g.
  // "'foo' is undefined".
  static Value undefined(std::string hint);
  static Value none() { return Value(Storage(NoneTag{})); }
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value dict(DictData d);
  static Value object(std::shared_ptr<ObjectData> o) { return Value(Storage(std::move(o))); }
  static Value function(std::string name, std::function<Value(CallArgs&)> call);
  // Throws Error past kMaxNesting levels.
  static Value from_json(const nlohmann::ordered_json& j, int depth = 0);

  Kind kind() const { return static_cast<Kind>(storage_.index()); }
  bool is(Kind k) const { return kind() == k; }
  bool is_undefined() const { return is(Kind::Undefined); }
  bool is_none() const { return is(Kind::None); }
  bool is_string() const { return is(Kind::String); }
  bool is_int() const { return is(Kind::Int) || is(Kind::Bool); }  // Python's bool is an int
  bool is_number() const { return is_int() || is(Kind::Float); }
  bool is_sequence() const { return is(Kind::List); }  // a list or a tuple

  bool truthy() const;
  std::string type_name() const;  // Python's: "str", "int", "NoneType", "dict", ...

  bool as_bool() const { return std::get<bool>(storage_); }
  int64_t as_int() const;    // int or bool
  double as_double() const;  // any number
  const std::string& as_string() const { return *std::get<StringPtr>(storage_); }
  const ListData& as_list() const { return *std::get<std::shared_ptr<ListData>>(storage_); }
  const DictData& as_dict() const { return *std::get<std::shared_ptr<DictData>>(storage_); }
  ObjectData& as_object() const { return *std::get<std::shared_ptr<ObjectData>>(storage_); }
  const std::shared_ptr<ObjectData>& object_ptr() const {
    return std::get<std::shared_ptr<ObjectData>>(storage_);
  }
  const Function& as_function() const { return *std::get<std::shared_ptr<Function>>(storage_); }
  const std::string& undefined_hint() const;
  // The identity of a shared object, for `is sameas`; null for plain values.
  const void* identity() const;

  std::string str(int depth = 0) const;   // Python's str(): what {{ }} prints
  std::string repr(int depth = 0) const;  // Python's repr(): how containers print their items

 private:
  struct NoneTag {};
  struct UndefinedTag {
    std::shared_ptr<const std::string> hint;
  };
  using StringPtr = std::shared_ptr<const std::string>;
  using Storage = std::variant<UndefinedTag, NoneTag, bool, int64_t, double, StringPtr,
                               std::shared_ptr<ListData>, std::shared_ptr<DictData>,
                               std::shared_ptr<ObjectData>, std::shared_ptr<Function>>;
  explicit Value(Storage s) : storage_(std::move(s)) {}

  Storage storage_;
};

// Python's ==: numbers across int/float/bool, deep for containers, identity for objects.
bool equal(const Value& a, const Value& b, int depth = 0);
// Python's <: numbers, strings, lists of the same kind; Error otherwise ("'<' not supported").
bool less(const Value& a, const Value& b, int depth = 0);

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Function {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

// Container destructors hand their elements to an iterative release loop, so dropping a
// structure nested 100 000 deep does not recurse 100 000 times.
struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  ~ListData();
};

struct DictData {
  std::vector<std::pair<Value, Value>> entries;  // insertion order
  const Value* find(const Value& key) const;
  void set(const Value& key, Value value);
  ~DictData();
};

// An object with named attributes: a namespace (assignable), the loop variable, a joiner.
struct ObjectData {
  std::string type_name;
  std::vector<std::pair<std::string, Value>> attrs;
  bool assignable = false;
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);
  ~ObjectData();
};

}  // namespace flywheel::jinja
