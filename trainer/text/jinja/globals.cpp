// The global functions a chat template can call: Jinja2's range, namespace, dict, joiner and
// cycler, and Hugging Face's raise_exception and strftime_now.
#include <ctime>

#include "trainer/text/jinja/builtins.h"
#include "trainer/text/jinja/params.h"

namespace flywheel::jinja {

namespace {

// Jinja2's sandbox refuses larger ranges (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

Value range(CallArgs& args) {
  if (!args.keyword.empty()) throw Error("range() takes no keyword arguments");
  const auto& a = args.positional;
  if (a.empty() || a.size() > 3) throw Error("range() takes 1 to 3 arguments");
  for (const Value& v : a) {
    if (!v.is_int())
      throw Error("'" + v.type_name() + "' object cannot be interpreted as an integer");
  }
  const int64_t start = a.size() == 1 ? 0 : a[0].as_int();
  const int64_t stop = a.size() == 1 ? a[0].as_int() : a[1].as_int();
  const int64_t step = a.size() == 3 ? a[2].as_int() : 1;
  if (step == 0) throw Error("range() arg 3 must not be zero");
  const __int128 span = step > 0 ? __int128{stop} - start : __int128{start} - stop;
  const __int128 count = span <= 0 ? 0 : (span - 1) / (step > 0 ? step : -__int128{step}) + 1;
  if (count > kMaxRange) {
    throw Error("range too big: the sandbox blocks ranges larger than " +
                std::to_string(kMaxRange));
  }
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(count));
  for (__int128 i = 0, v = start; i < count; ++i, v += step)
    items.emplace_back(static_cast<int64_t>(v));
  return Value::list(std::move(items));
}

// dict(mapping or (key, value) pairs, **kwargs), as Python's dict() builds it.
DictData build_dict(const CallArgs& args, const char* fn) {
  if (args.positional.size() > 1) {
    throw Error(std::string(fn) + "() takes at most one positional argument");
  }
  DictData d;
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is(Value::Kind::Dict)) {
      d.entries = source.as_dict().entries;
    } else if (source.is_sequence()) {
      for (const Value& pair : source.as_list().items) {
        if (!pair.is_sequence() || pair.as_list().items.size() != 2) {
          throw Error(std::string(fn) + "(): each element must be a (key, value) pair");
        }
        d.set(pair.as_list().items[0], pair.as_list().items[1]);
      }
    } else {
      throw Error(std::string(fn) + "(): cannot build a dict from " + source.type_name());
    }
  }
  for (const auto& [key, value] : args.keyword)
    d.set(Value(key), value);
  return d;
}

Value dict(CallArgs& args) {
  return Value::dict(build_dict(args, "dict"));
}

Value make_namespace(CallArgs& args) {
  auto ns = std::make_shared<ObjectData>();
  ns->type_name = "Namespace";
  ns->assignable = true;
  for (auto& [key, value] : build_dict(args, "namespace").entries) {
    if (!key.is_string()) throw Error("namespace() attribute names must be strings");
    // Hugging Face refuses these, so that templates cannot reach Python internals.
    if (!key.as_string().empty() && key.as_string()[0] == '_') {
      throw Error(
          "chat templates cannot store underscore-prefixed attributes on a namespace, "
          "but got '" +
          key.as_string() + "'");
    }
    ns->set(key.as_string(), std::move(value));
  }
  return Value::object(std::move(ns));
}

Value raise_exception(CallArgs& args) {
  Params p(args, "raise_exception", {"message"});
  throw Error(p.has(0) ? p.get(0)->str() : "raise_exception() called");
}

// datetime.now().strftime(format): the local time.
Value strftime_now(CallArgs& args) {
  Params p(args, "strftime_now", {"format"});
  if (!p.string(0)) throw Error("strftime_now() needs a format string");
  const std::string& format = *p.string(0);
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  for (size_t size = 256; size <= (size_t{1} << 16); size *= 16) {
    std::string out(size, '\0');
    const size_t n = std::strftime(out.data(), out.size(), format.c_str(), &local);
    if (n > 0 || format.empty()) return Value(out.substr(0, n));
  }
  return Value(std::string());  // a format that expands to nothing, such as "%p" in some locales
}

// joiner(sep): a function returning "" the first time and sep after.
Value joiner(CallArgs& args) {
  Params p(args, "joiner", {"sep"});
  const std::string separator = p.has(0) ? p.get(0)->str() : ", ";
  auto used = std::make_shared<bool>(false);
  return Value::function("joiner", [separator, used](CallArgs& call) {
    Params(call, "joiner", {});
    if (!*used) {
      *used = true;
      return Value(std::string());
    }
    return Value(separator);
  });
}

// cycler(a, b, ...): .next() returns a, b, ..., a, ...; .current peeks; .reset() restarts.
Value cycler(CallArgs& args) {
  if (args.positional.empty()) throw Error("cycler() needs at least one item");
  if (!args.keyword.empty()) throw Error("cycler() takes no keyword arguments");
  auto items = std::make_shared<const std::vector<Value>>(std::move(args.positional));
  auto object = std::make_shared<ObjectData>();
  object->type_name = "Cycler";
  object->set("items", Value::list(*items));
  object->set("current", items->front());
  // The functions reach their object weakly: it holds them, and a strong reference would
  // be a cycle.
  std::weak_ptr<ObjectData> weak = object;
  auto position = std::make_shared<size_t>(0);
  object->set("next", Value::function("next", [items, weak, position](CallArgs& call) {
                Params(call, "next", {});
                const Value result = (*items)[*position];
                *position = (*position + 1) % items->size();
                if (auto o = weak.lock()) o->set("current", (*items)[*position]);
                return result;
              }));
  object->set("reset", Value::function("reset", [items, weak, position](CallArgs& call) {
                Params(call, "reset", {});
                *position = 0;
                if (auto o = weak.lock()) o->set("current", items->front());
                return Value::none();
              }));
  return Value::object(std::move(object));
}

}  // namespace

const Value* find_global(std::string_view name) {
  static const std::vector<std::pair<std::string_view, Value>> kGlobals = {
      {"cycler", Value::function("cycler", cycler)},
      {"dict", Value::function("dict", dict)},
      {"joiner", Value::function("joiner", joiner)},
      {"namespace", Value::function("namespace", make_namespace)},
      {"raise_exception", Value::function("raise_exception", raise_exception)},
      {"range", Value::function("range", range)},
      {"strftime_now", Value::function("strftime_now", strftime_now)},
  };
  for (const auto& [n, v] : kGlobals) {
    if (n == name) return &v;
  }
  return nullptr;
}

}  // namespace flywheel::jinja
